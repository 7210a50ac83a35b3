"""SmoothGrad (Smilkov et al. 2017), as tf-keras-vis' ``SmoothGrad``:

    map(x)_{i,j} = max_c (1/S) sum_{k<S} |d f(x + s eps_k) / d x_{i,j,c}|

over S = ``samples`` noisy copies, eps_k standard normal noise of the image's shape drawn from the
seed (``seed``, k) (the same noise for every image), s = ``noise`` x (max(x) - min(x)) per image.
"""

from __future__ import annotations

import numpy as np

from generator.analysis.attribution.batches import batched
from generator.analysis.attribution.methods.pairs import MethodMaps, Pairs
from generator.analysis.attribution.scorer import Scorer
from generator.analysis.attribution.settings import AttributionSettings


def maps(scorer: Scorer, pairs: Pairs, settings: AttributionSettings) -> MethodMaps:
    step = scorer.gradient_step()
    (scores,) = batched(scorer.forward_step(), pairs.images, pairs.selector, settings.batch_size)
    return MethodMaps(scores, _smoothgrad(step, pairs, settings))


def _smoothgrad(step, pairs: Pairs, settings: AttributionSettings) -> np.ndarray:
    x, samples = pairs.x, settings.samples
    spread = settings.noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))  # per image
    noise = [np.random.default_rng([settings.seed, k]).standard_normal(x.shape[1:], np.float32) for k in range(samples)]
    item_pair, item_sample = np.divmod(np.arange(len(pairs.image) * samples), samples)

    def inputs(rows):
        images = pairs.image[item_pair[rows]]
        return x[images] + spread[images, None, None, None] * np.stack([noise[k] for k in item_sample[rows]])

    _, grads = batched(step, inputs, pairs.selector[item_pair], settings.batch_size)
    return np.abs(grads).reshape(len(pairs.image), samples, *grads.shape[1:]).mean(axis=1).max(axis=-1)
