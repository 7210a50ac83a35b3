"""What each stage hands on: frozen dataclasses of numbers and arrays, no Keras, no files.

The analyses return these, the cache stores and rebuilds them (:mod:`generator.codec`), the
figures and the pages read them. A unit is ``(layer, channel)``: :class:`Unit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np

from generator.geometry import ReceptiveField


@dataclass(frozen=True, order=True)
class Unit:
    """One channel of one layer; its URL, cache key and file names all derive from this pair."""

    layer: str
    channel: int

    def __str__(self) -> str:
        return f"{self.layer}:{self.channel}"


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the model, as ``model.summary()`` shows it."""

    name: str
    type: str
    output_shape: tuple[int | None, ...] | None
    params: int
    channels: int  # 0 unless the output is image-shaped (N, H, W, C)
    inputs: tuple[str, ...] = ()  # the layers whose outputs it reads
    calls: int = 1  # how many times the model calls it (a shared activation, pooling or conv block: more)

    @property
    def shape_text(self) -> str:
        """The output shape as ``[?, ?, ?, 64]`` (``?`` where the size varies)."""
        if self.output_shape is None:
            return "?"
        return "[" + ", ".join("?" if d is None else str(d) for d in self.output_shape) + "]"


# --- what the model says about an image ------------------------------------------------------


@dataclass(frozen=True)
class ClassScore:
    rank: int
    id: int
    name: str
    probability: float
    logit: float | None = None  # the class's logit where the head gives logits


@dataclass(frozen=True)
class Prediction:
    """A classifier's top-5 classes, or the map a model draws (an edge map): one of the two."""

    top5: tuple[ClassScore, ...] = ()
    output_map: np.ndarray | None = None  # (H', W') float32
    note: str = ""  # how the probabilities were read from the head (softmax or sigmoid applied, ...)


@dataclass(frozen=True)
class InputImage:
    slug: str  # file stem, used in URLs: images/<slug>/
    file: str  # file name as configured
    pixels: np.ndarray  # (size, size, 3) uint8
    digest: str  # hash of the file's bytes


@dataclass(frozen=True)
class ImageViews:
    """Microscope's views of one photo at one layer: images made from it, each an :class:`Exciter` whose
    activation is the view's measure after, and start_activation before."""

    deepdream: Exciter  # measure: the layer's mean squared activation
    caricature: Exciter  # measure: cosine similarity with the photo's activations


@dataclass(frozen=True)
class ActivationGroups:
    """One image's activations at a layer factorised into groups (NMF): ``maps`` (k, h, w) where each group
    lies on the image, ``directions`` (k, C) its weights over the channels, strongest group first; the
    reconstruction error relative to the activations' norm, and a random factorisation's with the same k."""

    maps: np.ndarray
    directions: np.ndarray
    error: float
    random_error: float
    exciters: tuple[Exciter, ...] = ()  # of each group's direction, filled in by the build

    def strongest(self, group: int, count: int) -> tuple[tuple[int, float], ...]:
        """The ``count`` channels that weigh most in ``group``, with their weights."""
        d = self.directions[group]
        return tuple((int(c), float(d[c])) for c in np.argsort(-d, kind="stable")[:count] if d[c] > 0)


@dataclass(frozen=True)
class ImageResult:
    image: InputImage
    prediction: Prediction
    activations: dict[str, np.ndarray]  # layer -> (h, w, C): feature-map layers and every unit's layer
    views: dict[str, ImageViews] = field(default_factory=dict)  # views.layers -> DeepDream and Caricature
    groups: dict[str, ActivationGroups] = field(default_factory=dict)  # groups.layers -> its activation groups


# --- units ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exciter:
    """An image made to drive one unit up (or down), and the objective before and after."""

    image: np.ndarray  # (S, S, 3) uint8
    activation: float
    start_activation: float
    alpha: np.ndarray | None = None  # (S, S) uint8: maco's transparency (summed |input gradient|), else None


@dataclass(frozen=True)
class RecipeQuality:
    """How well an exciter stands for its unit (see :mod:`generator.analysis.exciters.quality`)."""

    ratio: float  # the unit's value on the exciter over that on its best example; NaN where undefined
    plausibility: float  # cosine similarity at the unit's layer with its top examples' mean; NaN where undefined


def quality_summary(found: list[RecipeQuality]) -> dict[str, float]:
    """Units' qualities in two medians (over the units where each number is defined) and how many units."""
    def median(values: list[float]) -> float:
        values = [v for v in values if np.isfinite(v)]
        return float(np.median(values)) if values else float("nan")

    return {"units": len(found), "median_ratio": median([q.ratio for q in found]),
            "median_plausibility": median([q.plausibility for q in found])}


@dataclass(frozen=True)
class DirectionExciter:
    """The exciter of a direction: a vector over a layer's channels, as the config names it."""

    text: str  # as configured, "block3_conv2: 0.5*8 + 0.5*12"
    layer: str
    weights: np.ndarray  # (C,) float32
    exciter: Exciter

    def strongest(self, count: int) -> tuple[tuple[Unit, float], ...]:
        """The ``count`` channels of largest absolute weight, with their weights."""
        order = np.argsort(-np.abs(self.weights), kind="stable")[:count]
        return tuple((Unit(self.layer, int(c)), float(self.weights[c])) for c in order if self.weights[c] != 0)


@dataclass(frozen=True)
class Link:
    """A unit on the other side of a kernel, and the kernel's Frobenius norm."""

    unit: Unit
    norm: float


@dataclass(frozen=True)
class LayerLinks:
    """Direct-weight norms between a conv layer and the conv layers just before and after it
    (BatchNormalization scales folded in).

    ``incoming`` is (C_before, C_layer): column c ranks the inputs of unit c;
    ``outgoing`` is (C_layer, C_after): row c ranks the units that unit c feeds.
    A side is empty where more than one conv layer is on that side (a merge), or where the path
    cannot be made linear. A zero norm is no link (a depthwise channel reads one input channel).
    """

    incoming_layer: str = ""
    incoming: np.ndarray | None = None
    outgoing_layer: str = ""
    outgoing: np.ndarray | None = None

    def incoming_of(self, channel: int, top_k: int) -> tuple[Link, ...]:
        if self.incoming is None:
            return ()
        return _strongest(self.incoming_layer, self.incoming[:, channel], top_k)

    def outgoing_of(self, channel: int, top_k: int) -> tuple[Link, ...]:
        if self.outgoing is None:
            return ()
        return _strongest(self.outgoing_layer, self.outgoing[channel], top_k)


def _strongest(layer: str, norms: np.ndarray, top_k: int) -> tuple[Link, ...]:
    order = [c for c in np.argsort(-norms, kind="stable") if norms[c] > 0][:top_k]
    return tuple(Link(Unit(layer, int(c)), float(norms[c])) for c in order)


@dataclass(frozen=True)
class DatasetExamples:
    """The top images of the examples folder for every channel of a layer.

    ``image`` (C, N) indexes the example files, ``score`` (C, N) is the channel's maximum on
    that image at position ``y``/``x`` (C, N) of the activation grid, ``maps`` (C, N, h, w) the
    channel's map on it. ``receptive_field`` is None where it is unknown (a model that is not a
    plain chain): examples are then shown whole.
    """

    image: np.ndarray
    score: np.ndarray
    y: np.ndarray
    x: np.ndarray
    maps: np.ndarray
    receptive_field: ReceptiveField | None
    distributions: tuple[UnitDistribution, ...] = ()  # per channel, where the pass kept them


@dataclass(frozen=True)
class BandExample:
    """An image sampled from a quantile band: its maximum activation and where that sits in the grid."""

    image: int  # index into the example files
    score: float
    y: int
    x: int


@dataclass(frozen=True)
class QuantileBand:
    """The images whose maximum lies in ``[low, high)``: the share ``top_from``..``top_to`` of all images
    counted from the strongest (whole histogram bins around the band asked for), and a sample of them."""

    name: str  # "top 1%", "10-20%", "40-60%", "just above 0"
    low: float
    high: float
    top_from: float
    top_to: float
    examples: tuple[BandExample, ...]


@dataclass(frozen=True)
class UnitDistribution:
    """A unit's per-image maximum and mean activation over the examples folder.

    ``max_counts`` and ``mean_counts`` are histograms over the bins ``edges`` (fixed, log-spaced above 0);
    ``density`` is the share of images where it fires (maximum > 0); quantiles are (q, value) of the maxima,
    read from the histogram. Dead: it fires on no image; always on: it is above 0 at every position of
    every image.
    """

    count: int
    edges: np.ndarray
    max_counts: np.ndarray
    mean_counts: np.ndarray
    density: float
    mean_max: float
    mean_mean: float
    max: float
    always_on: bool
    quantiles: tuple[tuple[float, float], ...]
    bands: tuple[QuantileBand, ...]

    @property
    def dead(self) -> bool:
        return self.count > 0 and self.density == 0


@dataclass(frozen=True)
class ClassEffect:
    name: str
    effect: float  # the change of the class's logit, to first order, if the unit were switched off, negated


@dataclass(frozen=True)
class ClassEffects:
    """How each unit of a layer moves a classifier's logits: ``effects`` (classes, channels), gradient x
    activation of each logit summed over the channel, the mean over ``images`` images; or why not."""

    SHOWN: ClassVar[int] = 5  # classes a unit page lists as raised, and as lowered

    supported: bool
    reason: str = ""  # why not, when not supported
    classes: tuple[str, ...] = ()
    effects: np.ndarray | None = None
    images: int = 0

    def raised(self, channel: int, count: int) -> tuple[ClassEffect, ...]:
        """The ``count`` classes the unit raises most (positive effects only), strongest first."""
        return self._strongest(self.effects[:, channel], count)

    def lowered(self, channel: int, count: int) -> tuple[ClassEffect, ...]:
        """The ``count`` classes the unit lowers most (negative effects only), strongest first."""
        return tuple(ClassEffect(e.name, -e.effect) for e in self._strongest(-self.effects[:, channel], count))

    def _strongest(self, values: np.ndarray, count: int) -> tuple[ClassEffect, ...]:
        order = np.argsort(-values, kind="stable")[:count]
        return tuple(ClassEffect(self.classes[k], float(values[k])) for k in order if values[k] > 0)


@dataclass(frozen=True)
class UnitLabel:
    """A unit's short label and where it comes from: "examples" (the class folder most of its top examples
    lie in; ``purity`` the share of them there), "class effect" (the class it raises most) or "config"."""

    text: str  # "cats (7 of 10)", "raises tabby", or the author's
    source: str
    name: str = ""  # the class, where the label names one
    purity: float | None = None


@dataclass(frozen=True)
class UnitExample:
    """One of a unit's dataset examples."""

    rank: int
    file: str  # its path inside the examples folder
    image: int  # index into the example files
    score: float
    y: int  # the peak's position in the activation grid
    x: int
    map: np.ndarray  # (h, w) the unit's activation map on this image


@dataclass(frozen=True)
class CircuitInput:
    """One input unit of a circuit and how strongly it feeds the target.

    norm: Frobenius norm of its (kh, kw) weights; excitatory: sum of the positive weights;
    inhibitory: sum of the negative ones (<= 0).
    """

    unit: Unit
    rank: int
    norm: float
    excitatory: float
    inhibitory: float

    @property
    def net(self) -> float:
        return self.excitatory + self.inhibitory


@dataclass(frozen=True)
class CircuitWeights:
    """The weights of earlier units on a unit: direct (the kernel, routed back to the conv layers
    just before it; several where a merge is on the way) or expanded (from one earlier layer)."""

    layers: tuple[str, ...]  # the layers of the inputs, in graph order
    supported: bool
    reason: str = ""  # why not, when not supported
    inputs: tuple[CircuitInput, ...] = ()  # every input channel, strongest first
    top_kernels: np.ndarray | None = None  # (kh, kw, top_k): the weights of the top inputs
    note: str = ""  # what the weights include beyond a kernel (folded scales, merges), when anything

    @property
    def top(self) -> tuple[CircuitInput, ...]:
        return self.inputs[: 0 if self.top_kernels is None else self.top_kernels.shape[-1]]


@dataclass(frozen=True)
class CircuitEdge:
    """Summed weight between two units of a circuit diagram, and its norm."""

    source: Unit
    target: Unit
    norm: float
    net: float


@dataclass(frozen=True)
class Circuit:
    """Which units feed ``unit``: directly from the conv layers before it, and (when configured)
    through expanded weights from an earlier layer, with the edges between the two for the diagram."""

    unit: Unit
    direct: CircuitWeights
    expanded: CircuitWeights | None = None
    edges: tuple[CircuitEdge, ...] = ()  # earlier top inputs -> direct top inputs

    @property
    def supported(self) -> bool:
        return self.direct.supported

    @property
    def expanded_supported(self) -> bool:
        return self.expanded is not None and self.expanded.supported


@dataclass(frozen=True)
class Attribution:
    """One attribution method's maps of one target on a set of images, and its sanity check.

    ``target`` says what the maps explain: ``top-1 class``, a unit (``block3_conv2:8``) or
    ``output mean``. ``sanity`` is Adebayo et al.'s check: per image, the Spearman rank correlation
    between the map and the same method's map on a copy of the model whose ``randomised`` layers
    were re-initialised (near 1: the map barely depends on what the model learned).
    """

    method: str
    target: str
    maps: np.ndarray  # (N, H, W) float32 over the images; signed for integrated_gradients
    scores: np.ndarray  # (N,) the target's score on each image
    unit: Unit | None = None  # for a unit target
    classes: tuple[int, ...] = ()  # for a class target: the class explained on each image
    layer: str = ""  # Grad-CAM's layer
    settings: str = ""  # the method's settings, in words
    sanity: np.ndarray | None = None  # (N,)
    randomised: tuple[str, ...] = ()
    baseline_scores: np.ndarray | None = None  # integrated_gradients: the score at the baseline; maps sum to about the difference

    @property
    def title(self) -> str:
        """The method's name, for figure panels: ``Grad-CAM at block5_conv3``, ``SmoothGrad``."""
        name = {"gradcam": "Grad-CAM", "saliency": "Saliency", "smoothgrad": "SmoothGrad",
                "integrated_gradients": "Integrated Gradients", "gradcam_plus_plus": "Grad-CAM++",
                "occlusion": "Occlusion"}.get(self.method, self.method)
        return f"{name} at {self.layer}" if self.layer else name

    @property
    def checked(self) -> bool:
        """Whether the sanity check ran on these maps."""
        return self.sanity is not None

    @property
    def slug(self) -> str:
        """The target in file names: ``top1``, ``block3_conv2-8``, ``output``."""
        if self.unit is not None:
            return f"{self.unit.layer}-{self.unit.channel}"
        return self.target.split()[0].replace("-", "")


FAITHFULNESS_MEASURES = ("deletion_auc", "insertion_auc", "mu_fidelity")


@dataclass(frozen=True)
class FaithfulnessScores:
    """How faithful one ranking of the pixels (a method's map, or a random one) is, on every image.

    ``deletion`` and ``insertion`` are the score after each step (the first ``k / steps`` of the
    pixels, highest first, removed or put back) divided by the score on the photo; NaN where that
    score is not positive. ``mu_fidelity`` is NaN where the drops or the map's sums do not vary.
    """

    method: str  # an attribution method, or "random": a seeded random ranking, the floor
    deletion: np.ndarray  # (N, steps + 1); lower area: more faithful
    insertion: np.ndarray  # (N, steps + 1); higher area: more faithful
    deletion_auc: np.ndarray  # (N,)
    insertion_auc: np.ndarray  # (N,)
    mu_fidelity: np.ndarray  # (N,) Pearson correlation; near 1: faithful


@dataclass(frozen=True)
class Faithfulness:
    """The faithfulness of every method's maps of one target, beside a random ranking's."""

    target: str  # as :attr:`Attribution.target`
    methods: tuple[FaithfulnessScores, ...]  # in the attribution's method order
    random: FaithfulnessScores
    baseline: str  # what removed pixels become: "black" or "blurred"
    samples: int  # µ-Fidelity's random subsets

    @property
    def steps(self) -> int:
        return self.random.deletion.shape[1] - 1

    @property
    def rankings(self) -> tuple[FaithfulnessScores, ...]:
        """The methods' scores, then the random order's."""
        return (*self.methods, self.random)

    def of(self, method: str) -> FaithfulnessScores | None:
        return next((s for s in self.methods if s.method == method), None)

    def defined(self, index: int) -> bool:
        """Whether the curves on image ``index`` are defined (its score on the photo is positive)."""
        return bool(np.isfinite(self.random.deletion[index]).all())

    def mean(self, scores: FaithfulnessScores, measure: str) -> float:
        """``measure`` (deletion_auc, insertion_auc, mu_fidelity) of ``scores`` averaged over the images
        where it is defined; NaN where it is nowhere."""
        values = getattr(scores, measure)
        values = values[np.isfinite(values)]
        return float(values.mean()) if values.size else float("nan")

    def beats_random(self, scores: FaithfulnessScores, measure: str) -> bool:
        """Whether ``scores``' mean ``measure`` is more faithful than the random order's."""
        ours, floor = self.mean(scores, measure), self.mean(self.random, measure)
        return bool(ours < floor if measure == "deletion_auc" else ours > floor)

    def best(self, measure: str) -> FaithfulnessScores | None:
        """The method whose mean ``measure`` is most faithful (the lowest deletion area, else the highest);
        None where no method has it defined."""
        sign = 1 if measure == "deletion_auc" else -1
        defined = [s for s in self.methods if np.isfinite(self.mean(s, measure))]
        return min(defined, key=lambda s: sign * self.mean(s, measure)) if defined else None


NEAR_ZERO = 0.05  # a target whose value on an image is under this fraction of its top image's barely fires there


@dataclass(frozen=True)
class Faint:
    """A target that barely fires on an image: its ``measure`` there, against its top image's."""

    measure: str  # "max activation" (a unit) or "score"
    value: float
    top: float
    top_image: str  # the file of the image where it is largest


@dataclass(frozen=True)
class MapStats:
    mean: float
    max: float


@dataclass(frozen=True)
class UnitStats:
    """Mean and maximum activation over the image set; dead when it never fires."""

    mean: float
    max: float
    dead: bool


@dataclass(frozen=True)
class UnitResult:
    """Everything computed for one unit that has a page."""

    unit: Unit
    exciter: Exciter
    maps: dict[str, np.ndarray]  # image slug -> (h, w) activation map, on the first images (browse.unit_maps)
    map_stats: dict[str, MapStats]  # image slug -> mean and max of that map
    stats: UnitStats
    incoming: tuple[Link, ...] = ()  # top-k of the conv layer before
    outgoing: tuple[Link, ...] = ()  # top-k of the conv layer after
    examples: tuple[UnitExample, ...] = ()  # top images of the examples folder
    receptive_field: ReceptiveField | None = None  # of its layer; None where unknown (not a plain chain)
    example_gradcam: Attribution | None = None  # its Grad-CAM on its dataset examples (featured units)
    featured: bool = False  # a configured unit or one of its circuit's top inputs: full-size figures
    exciter_map: np.ndarray | None = None  # its map on its own exciter (featured units)
    circuit: Circuit | None = None  # for the configured units
    note: str = ""
    diverse: tuple[Exciter, ...] = ()  # exciters.diversity exciters that differ (configured units)
    recipes: dict[str, Exciter] = field(default_factory=dict)  # configured units: method -> exciter, every recipe
    recipe_quality: dict[str, RecipeQuality] = field(default_factory=dict)  # method -> its exciter's quality
    distribution: UnitDistribution | None = None  # over the examples folder, where the dataset pass kept it
    class_effects: ClassEffects | None = None  # its layer's, shared by the layer's units
    label: UnitLabel | None = None


@dataclass(frozen=True)
class ExciterGrid:
    """The lab's grid: exciters of the first channels of one layer."""

    layer: str
    units: tuple[Unit, ...]
    exciters: tuple[Exciter, ...]


# --- classes: CRAFT concepts ----------------------------------------------------------------


@dataclass(frozen=True)
class ConceptCrop:
    """One of a concept's top crops."""

    image: int  # index into ClassConcepts.images
    box: tuple[int, int, int, int]  # (top, left, height, width) in the image's pixels as the build reads it (square, images.size)
    value: float  # the concept's coefficient on this crop (its activations averaged over positions)


@dataclass(frozen=True)
class Concept:
    """One CRAFT concept of a class: a non-negative direction over the layer's channels (its row of the NMF
    basis, scaled to unit norm, so that coefficients compare across concepts)."""

    index: int  # place in ClassConcepts.concepts: most important first
    vector: np.ndarray  # (channels,) float32, unit norm, >= 0: the basis row over ClassConcepts.layer's channels
    importance: float  # share of the class score: Sobol total index over the sum of all concepts' (sums to 1)
    deletion_drop: float  # mean drop of the class score over the class images when this concept's coefficients are zeroed
    # (negative where removing it raises the score)
    channels: tuple[Unit, ...]  # the strongest channels of vector (top 5, weight > 0), strongest first
    crops: tuple[ConceptCrop, ...]  # top crops (<= classes.top_crops), strongest first
    maps: np.ndarray  # (images, h, w) float32: the concept's coefficient on each class image, per position of the layer
    sobol: float = 0.0  # the raw Sobol total index (mean over the images), before the share
    exciter: Exciter | None = None  # its MACO picture (an exciter of vector at layer), filled in by the build


@dataclass(frozen=True)
class ClassConcepts:
    """A class's CRAFT concepts (:mod:`generator.analysis.concepts`), or why there are none (``reason``)."""

    name: str  # the class name; "output" for a model without classes
    class_id: int | None  # None for "output"
    layer: str
    source: str  # "folder" (its ImageFolder subfolder of browse.examples_dir) or "predicted" (the images predicted as it)
    images: tuple[Path, ...]  # the class's images, in the order of every per-image array below
    concepts: tuple[Concept, ...] = ()  # most important first
    importance_method: str = ""  # e.g. "Sobol total index (Jansen), Halton design of 32 x (10 + 2) masks"
    score: str = ""  # what the class score is, in words ("the model's output for class 3", "the mean of the output map")
    head: str = ""  # how the score is re-computed from the layer, in words (a chain head, or other paths held fixed)
    mean_score: float = 0.0  # the class score on the images' reconstructed activations, mean over the images
    deletion_correlation: float = float("nan")  # Spearman of importance vs |deletion_drop| over the concepts; NaN if undefined
    random_floor: float = 0.0  # mean drop when random concept-sized directions are removed instead
    embedding: np.ndarray | None = None  # (images, 2) 2-D map of the images by their mean concept coefficients (PCA)
    dominant: np.ndarray | None = None  # (images,) int: each image's dominant concept (index into concepts)
    reason: str = ""  # why no concepts, in one line (no images, the layer does not reach the score, ...)

    @property
    def supported(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class Site:
    """Everything the figures and the pages are made from."""

    model: str  # the model's URL name
    description: str  # the model, in a sentence or two
    layers: tuple[LayerInfo, ...]  # every layer of the model
    images: tuple[ImageResult, ...]
    composite: ImageResult  # the image the report shows maps on
    featured: tuple[Unit, ...]  # the configured units
    units: dict[Unit, UnitResult]  # every unit with a page
    example_files: tuple[Path, ...] = ()
    example_names: tuple[str, ...] = ()  # each example file's path inside the examples folder
    grid: ExciterGrid | None = None
    directions: tuple[DirectionExciter, ...] = ()  # exciters.directions, in config order
    notes: dict[str, str] = field(default_factory=dict)  # report part -> the author's Markdown
    attributions: tuple[Attribution, ...] = ()  # on the images, by target then method
    faithfulness: tuple[Faithfulness, ...] = ()  # of each target's maps, in the targets' order
    classes: tuple[ClassConcepts, ...] = ()  # classes.names / classes.top, or the output of a model without classes

    @property
    def grey(self) -> bool:
        """The model takes grayscale (1-channel) images: its exciters are grey."""
        shape = self.layers[0].output_shape if self.layers else None
        return bool(shape) and shape[-1] == 1

    def attribution_targets(self) -> dict[str, list[Attribution]]:
        """The attributions grouped by target, in order."""
        groups: dict[str, list[Attribution]] = {}
        for a in self.attributions:
            groups.setdefault(a.target, []).append(a)
        return groups

    def faint(self, a: Attribution, index: int) -> Faint | None:
        """Whether ``a``'s target barely fires on image ``index`` (under :data:`NEAR_ZERO` of its top image): a
        unit by its largest activation there, any other target by its score; None where it fires."""
        stats = self.units[a.unit].map_stats if a.unit in self.units else {}
        slugs = [r.image.slug for r in self.images]
        if a.unit is not None and all(slug in stats for slug in slugs):
            measure, values = "max activation", np.array([stats[slug].max for slug in slugs])
        else:
            measure, values = "score", np.asarray(a.scores)
        top = int(np.argmax(values))
        if not values[top] > 0 or values[index] >= NEAR_ZERO * values[top]:
            return None
        return Faint(measure, float(values[index]), float(values[top]), self.images[top].image.file)

    def recipe_quality_of(self, layer: str) -> dict[str, dict[str, float]]:
        """Per recipe, :func:`quality_summary` of the layer's units that have one (the configured units)."""
        found: dict[str, list[RecipeQuality]] = {}
        for unit, result in self.units.items():
            for method, quality in result.recipe_quality.items() if unit.layer == layer else ():
                found.setdefault(method, []).append(quality)
        return {method: quality_summary(qualities) for method, qualities in found.items()}

    def faithfulness_of(self, target: str) -> Faithfulness | None:
        return next((f for f in self.faithfulness if f.target == target), None)

    def image_index(self, slug: str) -> int:
        """The place of image ``slug`` among the images (and so in every result's per-image arrays)."""
        return next(i for i, r in enumerate(self.images) if r.image.slug == slug)

    def most_faithful(self) -> tuple[str, int, int] | None:
        """The method most often most faithful over every target and measure (deletion, insertion,
        µ-Fidelity) while beating the random order there: (method, those wins, contests); None if no method
        wins anything."""
        wins: dict[str, int] = {}
        contests = 0
        for f in self.faithfulness:
            for measure in FAITHFULNESS_MEASURES:
                contests += 1
                best = f.best(measure)
                if best is not None and f.beats_random(best, measure):
                    wins[best.method] = wins.get(best.method, 0) + 1
        if not wins:
            return None
        method = max(wins, key=lambda m: wins[m])  # the first in order among equals
        return method, wins[method], contests

    @property
    def analysed_layers(self) -> tuple[LayerInfo, ...]:
        """The layers whose units have pages, in model order."""
        names = {u.layer for u in self.units}
        return tuple(r for r in self.layers if r.name in names)

    @cached_property
    def labelled(self) -> bool:
        """Whether any unit has a label: the tables of units then have a label column."""
        return any(r.label for r in self.units.values())

    def layer_units(self, layer: str) -> list[Unit]:
        return sorted(u for u in self.units if u.layer == layer)
