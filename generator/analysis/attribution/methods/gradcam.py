"""Grad-CAM (Selvaraju et al. 2017), as tf-keras-vis' ``Gradcam``:

    w_k = mean_{i,j} d f / d A_{i,j,k},    cam = ReLU(sum_k w_k A_k)

at a conv layer with maps A (:meth:`Scorer.gradcam_layer` picks it), then upsampled to the image's
size bilinearly with corners aligned (as ``scipy.ndimage.zoom(order=1)``): output pixel i of m
samples the cam at i (n - 1) / (m - 1) of its n rows, linearly between the two nearest.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
from keras import ops

from generator.analysis import backend, graph
from generator.analysis.attribution.batches import batched
from generator.analysis.attribution.methods.pairs import MethodMaps, Pairs
from generator.analysis.attribution.scorer import Scorer
from generator.analysis.attribution.settings import AttributionSettings


def maps(scorer: Scorer, pairs: Pairs, settings: AttributionSettings) -> MethodMaps:
    return cam_maps(scorer, pairs, settings, _mean_gradient)


def cam_maps(scorer: Scorer, pairs: Pairs, settings: AttributionSettings, weights: Callable) -> MethodMaps:
    """ReLU(sum_k w_k A_k) at the Grad-CAM layer, upsampled, ``weights(a, g) -> w (B, 1, 1, K)`` from the
    maps A and the score's gradient g with respect to them."""
    layer = scorer.gradcam_layer(settings)
    step = scorer.step(("cam", layer, weights), lambda: _cam_step(scorer, layer, weights))
    scores, cams = batched(step, pairs.images, pairs.selector, settings.batch_size)
    return MethodMaps(scores, upsample(cams, pairs.x.shape[1:3]), layer=layer)


def _mean_gradient(a, g):
    return ops.mean(g, axis=(1, 2), keepdims=True)


def _cam_step(scorer: Scorer, layer: str, weighting: Callable) -> Callable:
    """``(images, selectors) -> (scores, cams (B, h, w))`` at ``layer``."""
    net = scorer.net
    tensor = graph.layer_output(net, layer, "attribution")
    # What the rest of the network reads besides the maps (HED's side outputs) comes from the same one pass.
    others = [t for t in graph.crossing(net, tensor) if t is not net.input]
    maps = keras.Model(net.input, [tensor, *others])
    rest = (lambda inputs, training: inputs[1]) if tensor is net.output else keras.Model([net.input, tensor, *others],
                                                                                          net.output)

    def score_of_maps(a, inputs, read, selectors):
        return scorer.pick(rest([inputs, a, *read], training=False), selectors)

    value_and_grad = backend.value_and_grad(score_of_maps)

    def step(images, selectors):
        inputs = scorer.model_input(images)
        a, *read = keras.tree.flatten(maps(inputs, training=False))  # one tensor or a list
        a = ops.cast(a, "float32")
        values, g = value_and_grad(a, inputs, read, selectors)
        return values, ops.relu(ops.sum(a * weighting(a, g), axis=-1))

    return step


def upsample(cams: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear with corners aligned (scipy.ndimage.zoom order 1): (B, h, w) -> (B, H, W)."""
    rows, cols = (_interpolation(n, m) for n, m in zip(cams.shape[1:], size))
    # Rows, then columns: two small products (one three-way einsum loops over every (i, j, h, w): seconds).
    by_rows = np.einsum("ih,bhw->biw", rows, cams.astype(np.float64))
    return np.einsum("biw,jw->bij", by_rows, cols).astype(np.float32)


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
