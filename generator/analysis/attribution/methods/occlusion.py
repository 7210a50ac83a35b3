"""Occlusion (Zeiler and Fergus 2014), as Xplique's ``Occlusion``:

    map(x)_{i,j} = sum over the patches P that cover (i, j) of  f(x) - f(x with P at the baseline)

square patches of side p = max(1, round(``PATCH`` x the shorter side)) every s = max(1, p // 2) pixels
(in rows and columns), each inside the image: anchors 0, s, 2s, ... below H - p + 1 (pixels past the
last patch get 0). The baseline is black or the photo blurred, as Integrated Gradients' (:mod:`..blur`).
Signed: a patch whose removal raises the score counts against its pixels. Every (pair, patch) image goes
through one compiled forward step, in batches.
"""

from __future__ import annotations

import math

import numpy as np

from generator.analysis.attribution.batches import batched
from generator.analysis.attribution.blur import baselines
from generator.analysis.attribution.methods.pairs import MethodMaps, Pairs
from generator.analysis.attribution.scorer import Scorer
from generator.analysis.attribution.settings import AttributionSettings

PATCH = 1 / 8  # the patch's side, as a fraction of the image's shorter side


def patch_size(size: tuple[int, int]) -> tuple[int, int]:
    """(side, stride) of the patches on an image of ``size``."""
    side = max(1, round(PATCH * min(size)))
    return side, max(1, side // 2)


def patches(size: tuple[int, int], side: int, stride: int) -> np.ndarray:
    """(K, H, W) bool: every patch, row-major by its top-left corner."""
    h, w = size
    rows = [r * stride for r in range(math.ceil((h - side + 1) / stride))]
    cols = [c * stride for c in range(math.ceil((w - side + 1) / stride))]
    masks = np.zeros((len(rows) * len(cols), h, w), bool)
    for k, (r, c) in enumerate((r, c) for r in rows for c in cols):
        masks[k, r:r + side, c:c + side] = True
    return masks


def maps(scorer: Scorer, pairs: Pairs, settings: AttributionSettings) -> MethodMaps:
    x = pairs.x
    forward = scorer.forward_step()
    (scores,) = batched(forward, pairs.images, pairs.selector, settings.batch_size)
    masks = patches(x.shape[1:3], *patch_size(x.shape[1:3]))
    x0 = baselines(x, settings.baseline)
    item_pair, item_patch = np.divmod(np.arange(len(pairs.image) * len(masks)), len(masks))

    def inputs(rows):
        images = pairs.image[item_pair[rows]]
        return np.where(masks[item_patch[rows], ..., None], x0[images], x[images])

    (occluded,) = batched(forward, inputs, pairs.selector[item_pair], settings.batch_size)
    drops = (scores[item_pair] - occluded).reshape(len(pairs.image), len(masks))
    return MethodMaps(scores, np.einsum("pk,khw->phw", drops.astype(np.float64), masks).astype(np.float32))
