"""The site's attributions: a method's maps as the typed results (:class:`generator.results.Attribution`)
the build caches and the pages show, each with its settings in words for the caption; and how
faithful the maps of one target are (:class:`generator.results.Faithfulness`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from generator.analysis.attribution.batches import batched
from generator.analysis.attribution.blur import baselines
from generator.analysis.attribution.checks import checked
from generator.analysis.attribution.faithfulness import FaithfulnessSettings, faithfulness
from generator.analysis.attribution.maps import AttributionMaps, attribute
from generator.analysis.attribution.methods.occlusion import PATCH
from generator.analysis.attribution.sanity import SanityCheck, sanity_check
from generator.analysis.attribution.scorer import network_key, scorer_for, selectors
from generator.analysis.attribution.settings import AttributionSettings
from generator.analysis.attribution.targets import Target, UnitTarget
from generator.results import Attribution, Faithfulness, Unit


def settings_text(method: str, settings: AttributionSettings, layer: str = "") -> str:
    """A method's settings in words, for captions."""
    if method == "gradcam":
        return f"Grad-CAM at {layer}"
    if method == "gradcam_plus_plus":
        return f"Grad-CAM++ at {layer}"
    if method == "occlusion":
        return f"Occlusion: square patches 1/{round(1 / PATCH)} of the image's side, every half patch, set to a {settings.baseline} baseline"
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
    check = None
    if sanity:  # the first target's maps made above, against the randomised copy's
        check = sanity_check(model, images, targets[0], [method], settings, seed=settings.seed, made=found[:1])[0]
    return tuple(_as_result(a, check if i == 0 else None) for i, a in enumerate(found))


def site_faithfulness(model, images: np.ndarray, target: Target, found: Sequence[Attribution],
                      settings: AttributionSettings, measure: FaithfulnessSettings) -> Faithfulness:
    """How faithful the maps ``found`` (every method's, of ``target`` on ``images``) are: each image's
    pixels removed to (or put back from) ``settings.baseline``, scored by the same network at the same
    precision as the maps, in batches of ``settings.batch_size``."""
    parts, images = checked(model, [], settings, images)
    scorer = scorer_for(parts, network_key(parts, target), settings.precision)
    x = images.astype(np.float32)
    picks = np.array(found[0].classes, np.int32) if found[0].classes else selectors(scorer, x, [target], 1)[0][:, 0]
    forward = scorer.forward_step()

    def score(inputs, chosen):
        return batched(forward, inputs, chosen, settings.batch_size)[0]

    maps = {a.method: a.maps for a in found}
    scores = faithfulness(score, x, baselines(x, settings.baseline), maps, picks, measure)
    return Faithfulness(target.label, scores[:-1], scores[-1], settings.baseline, measure.samples)


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
