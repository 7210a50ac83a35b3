"""Attribution: where in a photo the evidence for a prediction, a unit or an output comes from.

Four methods, each a map (N, H, W) float32 over the photos' pixels, gradients taken with respect to
the 0..255 RGB input (the model's own ``preprocess`` is applied inside):

``gradcam`` (Selvaraju et al. 2017)
    At a conv layer with maps A: weights w_k = spatial mean of d score / d A_k; map =
    ReLU(sum_k w_k A_k), upsampled bilinearly with corners aligned to the input size (as tf-keras-vis'
    ``Gradcam`` does with ``scipy.ndimage.zoom(order=1)``).
``saliency`` (Simonyan et al. 2014)
    max over colour channels of |d score / d x|, as tf-keras-vis' ``Saliency``.
``smoothgrad`` (Smilkov et al. 2017)
    max over colour channels of the mean of |d score / d x| over ``samples`` noisy copies, the noise
    Gaussian with std ``noise`` x (max - min) of the image, seeded per (seed, sample): as tf-keras-vis.
``integrated_gradients`` (Sundararajan et al. 2017)
    (x - x0) * the mean gradient at ``steps`` points x0 + a (x - x0), a = (k + 1/2) / steps (the
    Riemann midpoint rule), summed over colour channels: signed, and the map sums to about
    f(x) - f(x0) (completeness). x0 is black or the photo blurred (Gaussian, std 1/20 of its side).

A target is one score per image: the image's top-k class of a classifier (:class:`ClassTarget`;
the model's output as it is, probabilities for keras.applications), a unit's mean activation
(:class:`UnitTarget`) or the mean of a model's output map (:class:`OutputTarget`). Targets that
share a network (all classes; the units of one layer) run together: every (image, target, sample)
item of a method goes through one compiled step, in batches of ``batch_size``. A unit's network is
the model cut at the unit's layer, and its Grad-CAM layer is the last Conv2D before it.
``precision="bfloat16"`` runs the network in Keras' mixed_bfloat16 (about twice as fast on CPUs with
AVX512-BF16; the input, the gradients' accumulation and the scores stay float32).

:func:`sanity_check` is Adebayo et al.'s (2018) model randomisation test: the Spearman rank
correlation between each method's map on the model and on a copy whose top layers are re-initialised.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

import keras
import numpy as np
from keras import ops

from generator.analysis import backend, graph
from generator.errors import GeneratorError
from generator.results import Attribution, Unit

METHODS = ("gradcam", "saliency", "smoothgrad", "integrated_gradients")
BASELINES = ("black", "blurred")
PRECISIONS = ("float32", "bfloat16")
MAX_STEPS = 1024  # for steps and samples
BLUR_SIGMA = 1 / 20  # the blurred baseline's Gaussian std, as a fraction of the image's shorter side


# --- the typed API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassTarget:
    """A classifier's output for a class: the image's ``rank``-th most probable one, or ``index``."""

    rank: int = 1
    index: int | None = None  # a fixed class for every image instead of a rank

    @property
    def label(self) -> str:
        return f"class {self.index}" if self.index is not None else f"top-{self.rank} class"


@dataclass(frozen=True)
class UnitTarget:
    """A unit's mean activation over positions."""

    layer: str
    channel: int

    @property
    def label(self) -> str:
        return f"{self.layer}:{self.channel}"


@dataclass(frozen=True)
class OutputTarget:
    """The mean of the model's output map (models whose output is a map, like vgg16-hed's edges)."""

    @property
    def label(self) -> str:
        return "output mean"


Target = Union[ClassTarget, UnitTarget, OutputTarget]


@dataclass(frozen=True)
class AttributionSettings:
    layer: str | None = None  # Grad-CAM's layer for class and output targets; None: the trunk's last Conv2D
    samples: int = 16  # SmoothGrad's noisy copies
    noise: float = 0.15  # SmoothGrad's noise std, a fraction of the image's value range
    steps: int = 32  # Integrated Gradients' points on the path
    baseline: str = "black"  # Integrated Gradients' start: black or blurred
    seed: int = 0
    batch_size: int = 8  # items (image x target x sample) per compiled call
    precision: str = "float32"  # or "bfloat16": the network in mixed bfloat16, about 2x faster where the CPU has it


@dataclass(frozen=True)
class AttributionMaps:
    """One method's maps of one target on every image."""

    method: str
    target: Target
    maps: np.ndarray  # (N, H, W) float32 at the images' size; signed for integrated_gradients
    scores: np.ndarray  # (N,) the target's score f(x) on each image
    settings: AttributionSettings
    classes: tuple[int, ...] | None = None  # ClassTarget: the class each image's map explains
    layer: str | None = None  # gradcam: the layer its maps come from
    baseline_scores: np.ndarray | None = None  # integrated_gradients: f(x0); maps sum to about scores - this


@dataclass(frozen=True)
class SanityCheck:
    """Adebayo et al.'s model randomisation test of one method on one target."""

    method: str
    target: Target
    randomised: tuple[str, ...]  # the layers re-initialised, from the top down
    spearman: np.ndarray  # (N,) rank correlation of |map| on the model and on the copy, per image


def attribute(
    model,
    images: np.ndarray,
    targets: Sequence[Target],
    method: str,
    settings: AttributionSettings = AttributionSettings(),
) -> list[AttributionMaps]:
    """``method``'s maps of each target on uint8 ``images`` (N, H, W, 3), in the order of ``targets``.

    ``model`` is a :class:`generator.models.LoadedModel` or a keras.Model taking 0..255 RGB.
    """
    parts, images = _checked(model, [method], settings, images)
    scorers = {}
    for target in targets:
        key = _network_key(parts, target)
        if key not in scorers:
            scorers[key] = _scorer(parts, key, settings.precision)
    results = {}
    for key, scorer in scorers.items():
        group = [t for t in targets if _network_key(parts, t) == key]
        for result in _run(method, scorer, images, group, settings):
            results[result.target] = result
    return [results[t] for t in targets]


def grad_cam(model, images, targets, settings=AttributionSettings()) -> list[AttributionMaps]:
    return attribute(model, images, targets, "gradcam", settings)


def saliency(model, images, targets, settings=AttributionSettings()) -> list[AttributionMaps]:
    return attribute(model, images, targets, "saliency", settings)


def smooth_grad(model, images, targets, settings=AttributionSettings()) -> list[AttributionMaps]:
    return attribute(model, images, targets, "smoothgrad", settings)


def integrated_gradients(model, images, targets, settings=AttributionSettings()) -> list[AttributionMaps]:
    return attribute(model, images, targets, "integrated_gradients", settings)


def sanity_check(
    model,
    images: np.ndarray,
    target: Target,
    methods: Sequence[str] = METHODS,
    settings: AttributionSettings = AttributionSettings(),
    layers: int | None = None,
    seed: int = 0,
) -> list[SanityCheck]:
    """Each method's maps on the model against a copy whose top ``layers`` weighted layers (all when
    None, none when 0) of the target's network are re-initialised (cascading from the top; seeded).

    A correlation near 1 says the map barely depends on what those layers learned.
    """
    parts, images = _checked(model, methods, settings, images)
    scorer = _scorer(parts, _network_key(parts, target), settings.precision)
    copy, randomised = randomised_copy(scorer.net, layers, seed)
    copied = dataclasses.replace(scorer, net=copy)
    checks = []
    for method in methods:
        (trained,) = _run(method, scorer, images, [target], settings)
        fixed = None if trained.classes is None else np.array(trained.classes)[:, None]  # the model's classes
        (random,) = _run(method, copied, images, [target], settings, fixed)
        rho = [spearman(np.abs(a), np.abs(b)) for a, b in zip(trained.maps, random.maps)]
        checks.append(SanityCheck(method, target, randomised, np.array(rho, np.float32)))
    return checks


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
    keras.utils.set_random_seed(int(stream.integers(2**31)))
    copy = keras.models.clone_model(net)
    names = {layer.name for layer in top}
    for layer in weighted:
        if layer.name not in names:
            copy.get_layer(layer.name).set_weights(layer.get_weights())
            continue
        for variable in copy.get_layer(layer.name).weights:
            if len(variable.shape) >= 2:
                glorot = keras.initializers.GlorotUniform(seed=int(stream.integers(2**31)))
                variable.assign(glorot(variable.shape, variable.dtype))
    return copy, tuple(layer.name for layer in top)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two arrays (ties get their average rank); NaN if one is constant."""
    ra, rb = _ranks(np.ravel(a)), _ranks(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(group, weights=ranks) / counts)[group]


# --- checks ---------------------------------------------------------------------------------------


def _checked(model, methods: Sequence[str], settings: AttributionSettings, images) -> tuple["_Parts", np.ndarray]:
    """The model's parts and the images, once every argument is known to be usable."""
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise GeneratorError(f"attribution: unknown method {bad[0]!r}; allowed: {', '.join(METHODS)}")
    _check_settings(settings)
    parts = _Parts.of(model)
    if settings.layer is not None:
        _conv_layer(parts.features, settings.layer)
    return parts, _check_images(images)


def _check_settings(settings: AttributionSettings) -> None:
    for name in ("steps", "samples", "batch_size"):
        value = getattr(settings, name)
        if not 1 <= value <= MAX_STEPS:
            raise GeneratorError(f"attribution: {name} must be 1 to {MAX_STEPS}, got {value}")
    if not 0 < settings.noise <= 1:
        raise GeneratorError(f"attribution: noise must be above 0 and at most 1 (a fraction of the value range), got {settings.noise}")
    if settings.precision not in PRECISIONS:
        raise GeneratorError(f"attribution: unknown precision {settings.precision!r}; allowed: {', '.join(PRECISIONS)}")
    if settings.baseline not in BASELINES:
        raise GeneratorError(f"attribution: unknown baseline {settings.baseline!r}; allowed: {', '.join(BASELINES)}")


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or not len(images):
        raise GeneratorError(f"attribution: images must be uint8 (N, H, W, 3) with N >= 1, got {images.dtype} {images.shape}")
    return images


def _conv_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    layer = graph.model_layer(model, name, "attribution")
    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
        raise GeneratorError(f"attribution: Grad-CAM needs a conv layer; {name!r} is a {type(layer).__name__}")
    return layer


# --- networks and scores --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parts:
    features: keras.Model  # the conv trunk, layers by name
    network: keras.Model  # model input -> the model's output
    preprocess: Callable
    output_kind: str  # "classes" or "map"

    @staticmethod
    def of(model) -> "_Parts":
        if isinstance(model, keras.Model):
            kind = "classes" if len(model.output.shape) == 2 else "map"
            return _Parts(model, model, _identity, kind)
        return _Parts(model.features, model.network, model.preprocess, model.output_kind)


@dataclass(frozen=True)
class _Scorer:
    """A network and how each item's score is read from its output."""

    net: keras.Model
    pick: Callable  # (output, selector (B,)) -> (B,)
    parts: _Parts
    key: tuple  # ("classes",), ("output",) or ("unit", layer)
    compiled: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # a copy starts empty

    def step(self, name: tuple, make: Callable[[], Callable]) -> Callable:
        """The compiled function ``name`` of this network, ``make()`` compiled on first use: every call
        (every batch, every ``attribute``) reuses it, traced once per input shape."""
        if name not in self.compiled:
            self.compiled[name] = backend.compile_step(make())
        return self.compiled[name]

    def model_input(self, x):
        """0..255 RGB (B, H, W, 3) -> the network's input (resized first where its size is fixed)."""
        fixed = tuple(self.net.input.shape[1:3])
        if None not in fixed and tuple(x.shape[1:3]) != fixed:
            x = ops.image.resize(x, fixed)
        return self.parts.preprocess(x)

    def score(self, x, selector):
        return self.pick(self.net(self.model_input(x)), selector)

    def gradcam_layer(self, settings: AttributionSettings) -> str:
        """The layer Grad-CAM uses: ``settings.layer`` for class and output targets, else the trunk's
        last Conv2D before the network's output layer (for a unit: before the unit's own layer)."""
        names = {layer.name for layer in self.net.layers}
        convs = [l.name for l in self.parts.features.layers if type(l) is keras.layers.Conv2D and l.name in names]
        if self.key[0] != "unit" and settings.layer is not None:
            if settings.layer not in names:
                raise GeneratorError(f"attribution: Grad-CAM layer {settings.layer!r} does not feed the model's output")
            return settings.layer
        inner = [name for name in convs if self.net.get_layer(name).output is not self.net.output]
        candidates = inner or convs
        if not candidates:
            raise GeneratorError(f"attribution: model {self.net.name!r} has no Conv2D layer for Grad-CAM")
        return candidates[-1]


def _network_key(parts: _Parts, target: Target) -> tuple:
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


def _scorer(parts: _Parts, key: tuple, precision: str) -> _Scorer:
    """The scorer of ``key``'s network, made once for a model and kept (its weights are read then: a
    loaded model is not changed), so repeated calls reuse its compiled functions."""
    cache_key = (id(parts.features), id(parts.network), id(parts.preprocess), key, precision)
    if cache_key not in _SCORERS:
        _SCORERS[cache_key] = _new_scorer(parts, key, precision)  # holds the model: its id is not reused meanwhile
        while len(_SCORERS) > _KEPT_SCORERS:
            _SCORERS.popitem(last=False)
    _SCORERS.move_to_end(cache_key)
    return _SCORERS[cache_key]


def _identity(x):
    return x


def _new_scorer(parts: _Parts, key: tuple, precision: str) -> _Scorer:
    if key[0] == "unit":
        net = keras.Model(parts.features.input, parts.features.get_layer(key[1]).output)
        pick = _unit_mean
    elif key[0] == "classes":
        net, pick = parts.network, _class_value
    else:
        net, pick = parts.network, _output_mean
    return _Scorer(backend.at_precision(net, precision), pick, parts, key)


def _unit_mean(output, channels):
    own = ops.take_along_axis(output, ops.reshape(channels, (-1, 1, 1, 1)), axis=-1)
    return ops.mean(ops.cast(own, "float32"), axis=(1, 2, 3))


def _class_value(output, classes):
    return ops.cast(ops.take_along_axis(output, ops.reshape(classes, (-1, 1)), axis=1)[:, 0], "float32")


def _output_mean(output, unused):
    return ops.mean(ops.cast(output, "float32"), axis=tuple(range(1, len(output.shape))))


# --- running a method -----------------------------------------------------------------------------


def _run(
    method: str, scorer: _Scorer, images: np.ndarray, targets: list[Target], settings, selectors: np.ndarray | None = None
) -> list[AttributionMaps]:
    """Maps of ``targets`` (all on ``scorer``'s network) on every image; ``selectors`` (N, T) fixes
    what each score picks (else: the targets' channels, or the classes the model ranks)."""
    x = images.astype(np.float32)
    n, t = len(images), len(targets)
    classes = None
    if selectors is None:
        selectors, classes = _selectors(scorer, x, targets, settings.batch_size)
    elif scorer.key[0] == "classes":
        classes = selectors
    pair_image = np.repeat(np.arange(n), t)  # pairs (image, target), image-major
    pair_selector = np.asarray(selectors, np.int32).reshape(-1)
    images_of_pairs = lambda rows: x[pair_image[rows]]  # noqa: E731
    extra = {}
    if method == "gradcam":
        layer = scorer.gradcam_layer(settings)
        step = scorer.step(("gradcam", layer), lambda: _gradcam_step(scorer, layer))
        scores, cams = _batched(step, images_of_pairs, pair_selector, settings.batch_size)
        maps = _upsample(cams, x.shape[1:3])
        extra["layer"] = layer
    else:
        step = scorer.step(("gradient",), lambda: backend.value_and_grad(scorer.score))
        if method == "saliency":
            scores, grads = _batched(step, images_of_pairs, pair_selector, settings.batch_size)
            maps = np.abs(grads).max(axis=-1)
        else:
            forward = scorer.step(("score",), lambda: scorer.score)
            (scores,) = _batched(forward, images_of_pairs, pair_selector, settings.batch_size)
            if method == "smoothgrad":
                maps = _smoothgrad(step, x, pair_image, pair_selector, settings)
            else:
                baselines = _baselines(x, settings.baseline)
                maps = _integrated(step, x, baselines, pair_image, pair_selector, settings)
                (at_baseline,) = _batched(forward, lambda rows: baselines[pair_image[rows]], pair_selector, settings.batch_size)
                extra["baseline_scores"] = _per_target(at_baseline, n, t)
    maps = maps.reshape(n, t, *x.shape[1:3])
    scores = _per_target(scores, n, t)
    return [
        AttributionMaps(
            method=method,
            target=target,
            maps=np.ascontiguousarray(maps[:, j], dtype=np.float32),
            scores=scores[j],
            settings=settings,
            classes=tuple(int(c) for c in classes[:, j]) if classes is not None else None,
            layer=extra.get("layer"),
            baseline_scores=extra["baseline_scores"][j] if "baseline_scores" in extra else None,
        )
        for j, target in enumerate(targets)
    ]


def _per_target(values: np.ndarray, n: int, t: int) -> list[np.ndarray]:
    values = np.asarray(values, np.float32).reshape(n, t)
    return [values[:, j].copy() for j in range(t)]


def _selectors(scorer: _Scorer, x: np.ndarray, targets: list[Target], batch_size: int):
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
    predict = scorer.step(("predict",), lambda: lambda images, unused: scorer.net(scorer.model_input(images)))
    (probabilities,) = _batched(predict, lambda rows: x[rows], np.zeros(n, np.int32), batch_size)
    order = np.argsort(-probabilities, axis=1, kind="stable")
    classes = np.stack(
        [np.full(n, t.index) if t.index is not None else order[:, t.rank - 1] for t in targets], axis=1
    ).astype(np.int32)
    return classes, classes


def _batched(
    step: Callable, inputs: Callable, selectors: np.ndarray, batch_size: int, keep: Callable | None = None
) -> tuple[np.ndarray, ...]:
    """``step`` over items ``0..len(selectors)-1`` in equal batches (the last padded), outputs stacked.

    ``inputs(rows)`` gives the items' 0..255 images; equal batches keep the compiled step to one trace.
    ``keep(rows, outputs)``, if given, reduces each batch's numpy outputs before they are kept.
    """
    count = len(selectors)
    width = min(batch_size, count)
    kept = []
    for first in range(0, count, width):
        rows = np.arange(first, first + width).clip(max=count - 1)
        result = step(ops.convert_to_tensor(inputs(rows)), ops.convert_to_tensor(selectors[rows]))
        result = result if isinstance(result, tuple) else (result,)
        real = min(width, count - first)
        outputs = tuple(ops.convert_to_numpy(r)[:real] for r in result)
        kept.append(keep(rows[:real], outputs) if keep else outputs)
    return tuple(np.concatenate(parts) for parts in zip(*kept))


def _gradcam_step(scorer: _Scorer, layer: str) -> Callable:
    """``(images, selectors) -> (scores, cams (B, h, w))`` at ``layer``."""
    net = scorer.net
    tensor = net.get_layer(layer).output
    maps = keras.Model(net.input, tensor)
    rest = (lambda pair: pair[1]) if tensor is net.output else keras.Model([net.input, tensor], net.output)

    def score_of_maps(a, inputs, selectors):
        return scorer.pick(rest([inputs, a]), selectors)

    value_and_grad = backend.value_and_grad(score_of_maps)

    def step(images, selectors):
        inputs = scorer.model_input(images)
        a = ops.cast(maps(inputs), "float32")
        values, g = value_and_grad(a, inputs, selectors)
        weights = ops.mean(g, axis=(1, 2), keepdims=True)
        return values, ops.relu(ops.sum(a * weights, axis=-1))

    return step


def _upsample(cams: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear with corners aligned (scipy.ndimage.zoom order 1): (B, h, w) -> (B, H, W)."""
    rows, cols = (_interpolation(n, m) for n, m in zip(cams.shape[1:], size))
    return np.einsum("ih,bhw,jw->bij", rows, cams.astype(np.float64), cols).astype(np.float32)


def _interpolation(n: int, m: int) -> np.ndarray:
    """(m, n) matrix sampling n points at m positions spread from the first to the last, linearly."""
    position = np.arange(m) * ((n - 1) / (m - 1)) if m > 1 else np.zeros(1)
    low = np.minimum(np.floor(position).astype(int), n - 1)
    high = np.minimum(low + 1, n - 1)
    weight = position - low
    matrix = np.zeros((m, n))
    np.add.at(matrix, (np.arange(m), low), 1 - weight)
    np.add.at(matrix, (np.arange(m), high), weight)
    return matrix


def _smoothgrad(step, x, pair_image, pair_selector, settings) -> np.ndarray:
    samples = settings.samples
    spread = settings.noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))  # per image
    noise = [np.random.default_rng([settings.seed, k]).standard_normal(x.shape[1:], np.float32) for k in range(samples)]
    item_pair, item_sample = np.divmod(np.arange(len(pair_image) * samples), samples)

    def inputs(rows):
        images = pair_image[item_pair[rows]]
        return x[images] + spread[images, None, None, None] * np.stack([noise[k] for k in item_sample[rows]])

    _, grads = _batched(step, inputs, pair_selector[item_pair], settings.batch_size)
    return np.abs(grads).reshape(len(pair_image), samples, *grads.shape[1:]).mean(axis=1).max(axis=-1)


def _integrated(step, x, baselines, pair_image, pair_selector, settings) -> np.ndarray:
    steps = settings.steps
    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)
    item_pair, item_step = np.divmod(np.arange(len(pair_image) * steps), steps)

    def inputs(rows):
        images = pair_image[item_pair[rows]]
        a = alphas[item_step[rows], None, None, None]
        return baselines[images] + a * (x[images] - baselines[images])

    def attributions(rows, outputs):  # each point's share (x - x0) . g / steps, colour channels summed
        images = pair_image[item_pair[rows]]
        return (((x[images] - baselines[images]) * outputs[1]).sum(axis=-1) / steps,)

    (shares,) = _batched(step, inputs, pair_selector[item_pair], settings.batch_size, attributions)
    return shares.reshape(len(pair_image), steps, *shares.shape[1:]).sum(axis=1)


def _baselines(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "black":
        return np.zeros_like(x)
    return gaussian_blur(x, BLUR_SIGMA * min(x.shape[1:3]))


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """(N, H, W, C) blurred along H and W by a Gaussian of std ``sigma`` pixels (edges reflected)."""
    radius = max(1, int(3 * sigma))
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (1, 2):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(x, pad, mode="reflect")
        x = sum(w * np.take(padded, np.arange(i, i + x.shape[axis]), axis=axis) for i, w in enumerate(kernel))
    return x.astype(np.float32)


# --- the site's attributions: typed results for the pages -------------------------------------------


def settings_text(method: str, settings: AttributionSettings, layer: str = "") -> str:
    """A method's settings in words, for captions."""
    if method == "gradcam":
        return f"Grad-CAM at {layer}"
    if method == "saliency":
        return "saliency: the gradient's largest magnitude over the colour channels"
    if method == "smoothgrad":
        return f"SmoothGrad: {settings.samples} noisy copies, noise {settings.noise:g} of the value range, seed {settings.seed}"
    return f"Integrated Gradients: {settings.steps} steps from a {settings.baseline} baseline"


def site_attributions(model, images: np.ndarray, targets: Sequence[Target], method: str,
                      settings: AttributionSettings, sanity: bool) -> tuple[Attribution, ...]:
    """``method``'s maps of every target on ``images`` as the site's results; with ``sanity``, the first
    target also gets Adebayo's check (every weighted layer re-initialised)."""
    found = attribute(model, images, targets, method, settings)
    check = sanity_check(model, images, targets[0], [method], settings, seed=settings.seed)[0] if sanity else None
    return tuple(_as_result(a, check if i == 0 else None) for i, a in enumerate(found))


def _as_result(a: AttributionMaps, check: SanityCheck | None) -> Attribution:
    return Attribution(
        method=a.method,
        target=a.target.label,
        maps=a.maps,
        scores=np.asarray(a.scores, np.float32),
        unit=Unit(a.target.layer, a.target.channel) if isinstance(a.target, UnitTarget) else None,
        classes=a.classes or (),
        layer=a.layer or "",
        settings=settings_text(a.method, a.settings, a.layer or ""),
        sanity=None if check is None else check.spearman,
        randomised=() if check is None else check.randomised,
        baseline_scores=None if a.baseline_scores is None else np.asarray(a.baseline_scores, np.float32),
    )
