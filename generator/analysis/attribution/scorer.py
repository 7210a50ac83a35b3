"""The network a target needs, and how each item's score is read from its output.

Targets that share a network run together: all classes of a classifier and its output map use the
whole model; the units of one layer use the model cut at that layer. A score is

- a class: ``f(x)_c``, the model's output for class c (probabilities for keras.applications);
- a unit: ``mean_{i,j} A_{i,j,c}(x)``, the channel's mean over positions at the unit's layer;
- the output map: the mean of the model's output over every position and channel,

always in float32, whatever precision the network computes in. The selector of an item is the class
or channel its score picks; a class target's class is the image's ``rank``-th most probable one
(ties broken by the lower index) unless the target fixes it.
"""

from __future__ import annotations

from collections import OrderedDict
import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
from keras import ops

from generator.analysis import backend, graph
from generator.analysis.attribution.batches import batched
from generator.analysis.attribution.settings import AttributionSettings
from generator.analysis.attribution.targets import ClassTarget, OutputTarget, Target, UnitTarget
from generator.errors import GeneratorError


@dataclass(frozen=True)
class Parts:
    features: keras.Model  # the conv trunk, layers by name
    network: keras.Model  # model input -> the model's output
    preprocess: Callable
    output_kind: str  # "classes" or "map"

    @staticmethod
    def of(model) -> "Parts":
        if isinstance(model, keras.Model):
            kind = "classes" if len(model.output.shape) == 2 else "map"
            return Parts(model, model, _identity, kind)
        return Parts(model.features, model.network, model.preprocess, model.output_kind)


@dataclass(frozen=True)
class Scorer:
    """A network and how each item's score is read from its output.

    ``weights``: values of ``net.weights`` to compute with instead of its own (a randomised copy's, see
    :meth:`with_weights`); the compiled functions take the weights as an argument.
    """

    net: keras.Model
    pick: Callable  # (output, selector (B,)) -> (B,)
    parts: Parts
    key: tuple  # ("classes",), ("output",) or ("unit", layer)
    weights: tuple | None = field(default=None, repr=False, compare=False)
    compiled: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # a copy starts empty

    def with_weights(self, values: tuple) -> Scorer:
        """This scorer computing with ``values`` in place of ``net.weights`` (one a weight, in their order and
        shapes), sharing its compiled functions (traced once for both)."""
        own = self.net.weights
        if len(values) != len(own) or any(tuple(v.shape) != tuple(w.shape) for v, w in zip(values, own)):
            raise ValueError(f"with_weights: {len(values)} values for the {len(own)} weights of {self.net.name!r}")
        copied = dataclasses.replace(self, weights=tuple(values))
        object.__setattr__(copied, "compiled", self.compiled)
        return copied

    def step(self, name: tuple, make: Callable[[], Callable]) -> Callable:
        """The compiled function ``name`` of this network, ``make()`` compiled on first use: every call
        (every batch, every run of a method, every scorer sharing these functions) reuses it, traced once
        for any batch size."""
        if name not in self.compiled:
            self.compiled[name] = backend.AnyBatch(_with_weights(self.net.weights, make()))
        compiled = self.compiled[name]
        return lambda *args: compiled(self.weight_values(), *args)

    def weight_values(self) -> tuple:
        return self.weights if self.weights is not None else tuple(v.value for v in self.net.weights)

    def model_input(self, x):
        """0..255 RGB (B, H, W, 3) -> the network's input (resized first where its size is fixed)."""
        return backend.network_input(self.net, self.parts.preprocess, x)

    def score(self, x, selector):
        return self.pick(self.net(self.model_input(x), training=False), selector)

    def forward_step(self) -> Callable:
        """Compiled ``(images, selectors) -> scores``."""
        return self.step(("score",), lambda: self.score)

    def gradient_step(self) -> Callable:
        """Compiled ``(images, selectors) -> (scores, d score / d images)``."""
        return self.step(("gradient",), lambda: backend.value_and_grad(self.score))

    def gradcam_layer(self, settings: AttributionSettings) -> str:
        """The layer Grad-CAM uses: ``settings.layer`` for class and output targets, else the trunk's
        last Conv2D before the network's output layer (for a unit: before the unit's own layer)."""
        names = {layer.name for layer in self.net.layers}
        convs = [l.name for l in self.parts.features.layers if type(l) is keras.layers.Conv2D and l.name in names]
        if self.key[0] != "unit" and settings.layer is not None:
            if settings.layer not in names:
                raise GeneratorError(f"attribution: Grad-CAM layer {settings.layer!r} does not feed the model's output")
            return settings.layer
        every = graph.calls(self.net)
        once = graph.calls_by_layer(every)
        inner = [name for name in convs if len(once[name]) == 1 and every[name].outputs[0] is not self.net.output]
        candidates = inner or convs
        if not candidates:
            raise GeneratorError(f"attribution: model {self.net.name!r} has no Conv2D layer for Grad-CAM")
        return candidates[-1]


def network_key(parts: Parts, target: Target) -> tuple:
    """Which network ``target``'s score needs: targets with equal keys run together."""
    if isinstance(target, ClassTarget):
        if parts.output_kind != "classes":
            raise GeneratorError("attribution: class targets need a classifier; this model's output is a map")
        return ("classes",)
    if isinstance(target, OutputTarget):
        if parts.output_kind != "map":
            raise GeneratorError("attribution: the output-mean target needs a model whose output is a map")
        return ("output",)
    if isinstance(target, UnitTarget):
        graph.model_channels(parts.features, target.layer, [target.channel], "attribution")
        return ("unit", target.layer)
    raise GeneratorError(f"attribution: unknown target {target!r}")


_SCORERS: OrderedDict = OrderedDict()  # the last few scorers made, with their compiled functions
_KEPT_SCORERS = 8


def scorer_for(parts: Parts, key: tuple, precision: str) -> Scorer:
    """The network of targets with ``key`` at ``precision``, and its score: made once for a model and kept
    (its weights are read then: a loaded model is not changed), so later runs reuse its compiled functions."""
    cache_key = (id(parts.features), id(parts.network), id(parts.preprocess), key, precision)
    return kept(_SCORERS, cache_key, lambda: _new_scorer(parts, key, precision))  # holds the model: its id is not reused


def kept(cache: OrderedDict, key: tuple, make: Callable):
    """``cache[key]``, made by ``make()`` on first use; the cache keeps the last few used."""
    if key not in cache:
        cache[key] = make()
        while len(cache) > _KEPT_SCORERS:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]


def _identity(x):
    return x


def _with_weights(variables: list, fn: Callable) -> Callable:
    """``fn(*args)`` becomes ``(values, *args) -> fn(*args)`` computed with ``values`` in place of ``variables``."""
    def with_weights(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(*args)

    return with_weights


def _new_scorer(parts: Parts, key: tuple, precision: str) -> Scorer:
    if key[0] == "unit":  # the copy the exciters of the layer ran (network_key checked the layer)
        return Scorer(backend.cut_at_precision(parts.features, key[1], precision), _unit_mean, parts, key)
    pick = _class_value if key[0] == "classes" else _output_mean
    return Scorer(backend.at_precision(parts.network, precision), pick, parts, key)


def _unit_mean(output, channels):
    own = ops.take_along_axis(output, ops.reshape(channels, (-1, 1, 1, 1)), axis=-1)
    return ops.mean(ops.cast(own, "float32"), axis=(1, 2, 3))


def _class_value(output, classes):
    return ops.cast(ops.take_along_axis(output, ops.reshape(classes, (-1, 1)), axis=1)[:, 0], "float32")


def _output_mean(output, unused):
    return ops.mean(ops.cast(output, "float32"), axis=tuple(range(1, len(output.shape))))


def selectors(scorer: Scorer, x: np.ndarray, targets: list[Target], batch_size: int):
    """(N, T) int32: what each item's score picks (class, channel, or nothing); and the classes."""
    n = len(x)
    if scorer.key[0] == "unit":
        return np.tile(np.array([t.channel for t in targets], np.int32), (n, 1)), None
    if scorer.key[0] == "output":
        return np.zeros((n, len(targets)), np.int32), None
    count = scorer.net.output.shape[-1]
    for target in targets:
        if target.index is not None and not 0 <= target.index < count:
            raise GeneratorError(f"attribution: class {target.index} is out of range; the model has classes 0 to {count - 1}")
        if target.index is None and not 1 <= target.rank <= count:
            raise GeneratorError(f"attribution: class rank must be 1 to {count}, got {target.rank}")
    predict = scorer.step(("predict",), lambda: lambda images, unused: scorer.net(scorer.model_input(images), training=False))
    (probabilities,) = batched(predict, lambda rows: x[rows], np.zeros(n, np.int32), batch_size)
    order = np.argsort(-probabilities, axis=1, kind="stable")
    classes = np.stack(
        [np.full(n, t.index) if t.index is not None else order[:, t.rank - 1] for t in targets], axis=1
    ).astype(np.int32)
    return classes, classes
