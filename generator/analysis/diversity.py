"""Diverse exciters: several images per unit that each raise it and differ from one another.

Lucid's diversity objective: each image of a unit climbs the unit's activation minus ``weight`` times
its mean cosine similarity with the other images of the unit, the similarity taken between the
flattened Gram matrices (channels x channels, over positions) of the images' activations at the
unit's layer, which compares their styles rather than their layouts. Rendered with Lucid's recipe;
image 0 of a unit starts where the unit's ordinary exciter starts, image k from its own seed.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import keras
import numpy as np
from keras import ops

from generator.analysis import graph
from generator.analysis.exciters import (
    ExciterResult, Items, every_channel_maps, map_objective, own_channel, render_items, unit_objective,
)
from generator.config import ExciterParams


def render_diverse(
    model: keras.Model,
    layer: str,
    channels: Sequence[int],
    count: int,
    weight: float,
    params: ExciterParams,
    preprocess: Callable,
    progress: Callable[[int], None] | None = None,
) -> ExciterResult:
    """``count`` exciters of each of ``channels`` (unit-major: unit 0's images first), Lucid's recipe.

    ``weight`` 0 renders the same starts without the diversity term.
    """
    channels = [int(c) for c in channels]
    target = graph.model_channels(model, layer, channels, "diversity")
    params = dataclasses.replace(params, method="lucid")
    items = Items([(c, k) if k else (c,) for c in channels for k in range(count)],
                  np.repeat(np.array(channels, "int32"), count), group=count)

    def objective(model: keras.Model, target: keras.layers.Layer, width: int, redirect_relu: bool | str) -> Callable:
        return unit_objective(model, target, width, preprocess, params.objective, redirect_relu)

    def penalised(model: keras.Model, target: keras.layers.Layer, width: int, redirect_relu: bool | str) -> Callable:
        """The unit's objective less the diversity term, both from one pass to every channel of the layer."""
        maps = every_channel_maps(model, target, redirect_relu)
        sign = -1.0 if params.negative else 1.0  # the recipe climbs sign * objective

        def climb_apart(images, channels, *redirect):
            y = maps(preprocess(images), *redirect)
            penalty = sign * weight * mean_other_similarity(gram_vectors(y), count)
            return map_objective(own_channel(y, channels), params.objective) - penalty

        return climb_apart

    return render_items(model, target, items, params, objective, progress, make_penalised=penalised)


def gram_vectors(activations):
    """(B, H, W, C) -> (B, C*C) float32: each image's Gram matrix over positions, flattened to unit length.

    The products take the activations' dtype where it is bfloat16 (mixed precision: the matrix product sums them in
    float32 and rounds its result, moving the diversity term by some 1e-5) or float32; others are cast to float32
    first (a float16 Gram matrix overflows at 65504); the rest is float32.
    """
    if keras.backend.standardize_dtype(activations.dtype) not in ("bfloat16", "float32"):
        activations = ops.cast(activations, "float32")
    shape = ops.shape(activations)
    grams = ops.reshape(gram_matrices(ops.reshape(activations, (shape[0], -1, shape[3]))), (shape[0], -1))
    return grams / (ops.sqrt(ops.sum(ops.square(grams), axis=1, keepdims=True)) + 1e-10)


@ops.custom_gradient
def gram_matrices(flat):
    """(B, P, C) -> (B, C, C) float32: each item's ``flat^T flat / P``, the product in ``flat``'s dtype.

    Its gradient is one matrix product, ``flat (d + d^T)`` for the upstream ``d`` (over P, in ``flat``'s dtype), where
    autodiff takes two (one for each factor) and adds them: a third of the Gram's cost in a step of Lucid's diversity
    objective. The upstream of a symmetric Gram matrix is symmetric, and the two products then agree, so this is
    autodiff's gradient to float32 rounding, to the bit where the matrix product sums a transposed operand in the same
    order (AVX-512's kernels; AVX2's differ in the last bits) (tests/test_diversity_gram.py).
    """
    positions = ops.cast(ops.shape(flat)[1], "float32")
    grams = ops.cast(ops.matmul(ops.transpose(flat, (0, 2, 1)), flat), "float32") / positions

    def gradient(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        d = ops.cast(upstream / positions, flat.dtype)
        return ops.matmul(flat, d + ops.transpose(d, (0, 2, 1)))

    return grams, gradient


def mean_other_similarity(vectors, count: int):
    """(B, D) unit vectors in groups of ``count`` consecutive rows -> (B,): each row's mean cosine
    similarity with the other rows of its group (0 for a group of one)."""
    grouped = ops.reshape(vectors, (-1, count, ops.shape(vectors)[1]))
    cosines = ops.einsum("gid,gjd->gij", grouped, grouped)
    others = ops.sum(cosines, axis=2) - ops.sum(grouped * grouped, axis=2)  # less each row's own
    return ops.reshape(others, (-1,)) / max(count - 1, 1)


def pairwise_gram_similarity(activations: np.ndarray) -> float:
    """The mean cosine similarity of the Gram matrices of (N, H, W, C) activations over distinct pairs."""
    grams = ops.convert_to_numpy(gram_vectors(ops.convert_to_tensor(np.asarray(activations, np.float32))))
    n = len(grams)
    cosines = grams @ grams.T
    return float((cosines.sum() - np.trace(cosines)) / max(n * (n - 1), 1))
