"""A method's maps of many targets on many images: :func:`attribute`.

Targets that share a network (all classes; the units of one layer) run together: every
(image, target) pair of a method goes through one compiled step (:mod:`.batches`). A unit's network
is the model cut at the unit's layer, and its Grad-CAM layer is the last Conv2D before it. Maps are
(N, H, W) float32 at the images' size, gradients taken with respect to the 0..255 RGB input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from generator.analysis.attribution.batches import per_target
from generator.analysis.attribution.checks import checked
from generator.analysis.attribution.methods import MAPS
from generator.analysis.attribution.methods.pairs import Pairs
from generator.analysis.attribution.scorer import Scorer, network_key, scorer_for, selectors
from generator.analysis.attribution.settings import AttributionSettings
from generator.analysis.attribution.targets import Target


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
    parts, images = checked(model, [method], settings, images)
    scorers = {}
    for target in targets:
        key = network_key(parts, target)
        if key not in scorers:
            scorers[key] = scorer_for(parts, key, settings.precision)
    results = {}
    for key, scorer in scorers.items():
        group = [t for t in targets if network_key(parts, t) == key]
        for result in run(method, scorer, images, group, settings):
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


def run(
    method: str, scorer: Scorer, images: np.ndarray, targets: list[Target], settings, fixed: np.ndarray | None = None
) -> list[AttributionMaps]:
    """Maps of ``targets`` (all on ``scorer``'s network) on every image; ``fixed`` (N, T) fixes
    what each score picks (else: the targets' channels, or the classes the model ranks)."""
    x = images.astype(np.float32)
    n, t = len(images), len(targets)
    classes = None
    if fixed is None:
        fixed, classes = selectors(scorer, x, targets, settings.batch_size)
    elif scorer.key[0] == "classes":
        classes = fixed
    pairs = Pairs(x, np.repeat(np.arange(n), t), np.asarray(fixed, np.int32).reshape(-1))
    found = MAPS[method](scorer, pairs, settings)
    maps = found.maps.reshape(n, t, *x.shape[1:3])
    scores = per_target(found.scores, n, t)
    baseline = None if found.baseline_scores is None else per_target(found.baseline_scores, n, t)
    return [
        AttributionMaps(
            method=method,
            target=target,
            maps=np.ascontiguousarray(maps[:, j], dtype=np.float32),
            scores=scores[j],
            settings=settings,
            classes=tuple(int(c) for c in classes[:, j]) if classes is not None else None,
            layer=found.layer,
            baseline_scores=None if baseline is None else baseline[j],
        )
        for j, target in enumerate(targets)
    ]
