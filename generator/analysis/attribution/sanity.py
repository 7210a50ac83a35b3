"""Adebayo et al.'s (2018) model randomisation test.

A method's maps on the model, M, against its maps on a copy whose top layers are re-initialised,
M': per image, rho = Spearman(|M|, |M'|) (:mod:`generator.analysis.correlation`). A correlation near 1 says the
map barely depends on what those layers learned. Class targets keep the classes the model ranked,
so both maps explain the same output.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import keras
import numpy as np

from generator.analysis import backend
from generator.analysis.attribution.checks import checked
from generator.analysis.attribution.maps import AttributionMaps, run
from generator.analysis.correlation import spearman
from generator.analysis.attribution.scorer import Scorer, kept, network_key, scorer_for
from generator.analysis.attribution.settings import METHODS, AttributionSettings
from generator.analysis.attribution.targets import Target
from generator.errors import GeneratorError
from generator.seeding import seed_weights


@dataclass(frozen=True)
class SanityCheck:
    """Adebayo et al.'s model randomisation test of one method on one target."""

    method: str
    target: Target
    randomised: tuple[str, ...]  # the layers re-initialised, from the top down
    spearman: np.ndarray  # (N,) rank correlation of |map| on the model and on the copy, per image


def sanity_check(
    model,
    images: np.ndarray,
    target: Target,
    methods: Sequence[str] = METHODS,
    settings: AttributionSettings = AttributionSettings(),
    layers: int | None = None,
    seed: int = 0,
    made: Sequence[AttributionMaps] = (),
) -> list[SanityCheck]:
    """Each method's maps on the model against a copy whose top ``layers`` weighted layers (all when
    None, none when 0) of the target's network are re-initialised (cascading from the top; seeded).
    ``made``: the target's maps on the model already made (by :func:`attribute`, same settings), one a
    method in order, else made here.

    A correlation near 1 says the map barely depends on what those layers learned.
    """
    parts, images = checked(model, methods, settings, images)
    scorer = scorer_for(parts, network_key(parts, target), settings.precision)
    copied, randomised = randomised_scorer(scorer, layers, seed)
    checks = []
    for i, method in enumerate(methods):
        (trained,) = made[i:i + 1] or run(method, scorer, images, [target], settings)
        fixed = None if trained.classes is None else np.array(trained.classes)[:, None]  # the model's classes
        (random,) = run(method, copied, images, [target], settings, fixed)
        rho = [spearman(np.abs(a), np.abs(b)) for a, b in zip(trained.maps, random.maps)]
        checks.append(SanityCheck(method, target, randomised, np.array(rho, np.float32)))
    return checks


# The config keys of the initialisers of kernels (rank >= 2), which the copy draws from Glorot uniform itself.
_MATRIX_INITIALISERS = {"kernel_initializer", "depthwise_initializer", "pointwise_initializer",
                        "embeddings_initializer", "recurrent_initializer"}

_COPIES: OrderedDict = OrderedDict()  # the last few randomised scorers, with their compiled functions


def randomised_scorer(scorer: Scorer, layers: int | None, seed: int) -> tuple[Scorer, tuple[str, ...]]:
    """``scorer`` with the weights of its network's :func:`randomised_copy`: made once for every method checked
    on it (the copy's weights are the same each time); it runs ``scorer``'s compiled functions (traced once for
    both)."""
    def make():
        copy, randomised = randomised_copy(scorer.net, layers, seed)
        # by position: clone_model keeps the weights' order, and paths need not be unique (two nested models'
        # conv/kernel); the entry holds the scorer, so its id is not reused
        return scorer, scorer.with_weights(tuple(v.value for v in copy.weights)), randomised

    _, copied, randomised = kept(_COPIES, (id(scorer), layers, seed), make)
    return copied, randomised


def randomised_copy(net: keras.Model, layers: int | None, seed: int = 0) -> tuple[keras.Model, tuple[str, ...]]:
    """A copy of ``net`` whose top ``layers`` weighted layers (all when None; in the order of
    ``net.layers`` from the output down) are re-initialised, seeded: kernels (rank >= 2) from Glorot
    uniform, since a model's own initialiser may be a constant (HED's side outputs start at zero),
    vectors (biases, normalisation) as the layer's own initialiser sets them. The other layers carry
    ``net``'s weights. Returns the copy and the re-initialised layers' names, top first."""
    weighted = [layer for layer in net.layers if layer.weights]
    count = len(weighted) if layers is None else layers
    if not 0 <= count <= len(weighted):
        raise GeneratorError(f"attribution: can randomise 0 to {len(weighted)} layers of {net.name!r}, got {layers}")
    top = weighted[len(weighted) - count :][::-1]
    # A stream of its own: a model built from random weights with this same seed still gets new ones.
    stream = np.random.default_rng([seed, 0xADE])
    seed_weights(int(stream.integers(2**31)))
    names = {layer.name for layer in top}
    # Only the vectors of the top layers keep their initialisers: every other weight is overwritten below.
    copy = backend.clone_zeroed(net, lambda layer, key: layer.name not in names or key in _MATRIX_INITIALISERS)
    for layer in weighted:
        if layer.name not in names:
            for mine, own in zip(copy.get_layer(layer.name).weights, layer.weights, strict=True):
                mine.assign(own.value)
            continue
        for variable in copy.get_layer(layer.name).weights:
            if len(variable.shape) >= 2:
                glorot = keras.initializers.GlorotUniform(seed=int(stream.integers(2**31)))
                variable.assign(glorot(variable.shape, variable.dtype))
    return copy, tuple(layer.name for layer in top)
