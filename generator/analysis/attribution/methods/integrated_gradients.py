"""Integrated Gradients (Sundararajan et al. 2017), by the Riemann midpoint rule:

    map(x)_{i,j} = sum_c (x - x0)_{i,j,c} (1/m) sum_{k<m} d f(x0 + a_k (x - x0)) / d x_{i,j,c},
    a_k = (k + 1/2) / m

over m = ``steps`` points, summed over colour channels: signed, and by completeness the map sums
to about f(x) - f(x0). The baseline x0 is black (zeros) or the photo blurred
(:func:`generator.analysis.attribution.blur.baselines`).
"""

from __future__ import annotations

import numpy as np

from generator.analysis.attribution.batches import batched
from generator.analysis.attribution.blur import baselines as baselines_of
from generator.analysis.attribution.methods.pairs import MethodMaps, Pairs
from generator.analysis.attribution.scorer import Scorer
from generator.analysis.attribution.settings import AttributionSettings

def maps(scorer: Scorer, pairs: Pairs, settings: AttributionSettings) -> MethodMaps:
    """The maps, f(x) and f(x0) of every pair."""
    step, forward = scorer.gradient_step(), scorer.forward_step()
    (scores,) = batched(forward, pairs.images, pairs.selector, settings.batch_size)
    baselines = baselines_of(pairs.x, settings.baseline)
    found = _integrated(step, baselines, pairs, settings)
    (at_baseline,) = batched(forward, lambda rows: baselines[pairs.image[rows]], pairs.selector, settings.batch_size)
    return MethodMaps(scores, found, baseline_scores=at_baseline)


def _integrated(step, baselines: np.ndarray, pairs: Pairs, settings: AttributionSettings) -> np.ndarray:
    x, steps = pairs.x, settings.steps
    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)
    item_pair, item_step = np.divmod(np.arange(len(pairs.image) * steps), steps)

    def inputs(rows):
        images = pairs.image[item_pair[rows]]
        a = alphas[item_step[rows], None, None, None]
        return baselines[images] + a * (x[images] - baselines[images])

    def attributions(rows, outputs):  # each point's share (x - x0) . g / steps, colour channels summed
        images = pairs.image[item_pair[rows]]
        return (((x[images] - baselines[images]) * outputs[1]).sum(axis=-1) / steps,)

    (shares,) = batched(step, inputs, pairs.selector[item_pair], settings.batch_size, attributions)
    return shares.reshape(len(pairs.image), steps, *shares.shape[1:]).sum(axis=1)
