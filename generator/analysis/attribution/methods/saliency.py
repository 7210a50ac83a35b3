"""Saliency (Simonyan et al. 2014), as tf-keras-vis' ``Saliency``:

    map(x)_{i,j} = max_c |d f(x) / d x_{i,j,c}|

the gradient's largest magnitude over the colour channels, x the 0..255 RGB input.
"""

from __future__ import annotations

import numpy as np

from generator.analysis.attribution.batches import batched
from generator.analysis.attribution.methods.pairs import MethodMaps, Pairs
from generator.analysis.attribution.scorer import Scorer
from generator.analysis.attribution.settings import AttributionSettings


def maps(scorer: Scorer, pairs: Pairs, settings: AttributionSettings) -> MethodMaps:
    scores, grads = batched(scorer.gradient_step(), pairs.images, pairs.selector, settings.batch_size)
    return MethodMaps(scores, np.abs(grads).max(axis=-1))
