"""Microscope's per-layer views of an image: DeepDream and Caricature.

DeepDream
    Start from the image and climb the mean squared activation of the whole layer (its squared L2
    norm over positions and channels, averaged): the lab's normalised gradient step on the 0..255
    image, clipped to 0..255. What the layer sees in the image, exaggerated.

Caricature (Lucid's feature inversion)
    Start from noise (Lucid's Fourier image with decorrelated colour) and climb, with Adam,
    ``dot(act(x), act(image)) * cossim(act(x), act(image)) ** power`` at the layer: an image that
    the layer reads like the photo, showing what the layer keeps of it.

Both run a batch of images in one compiled step (in bfloat16 where ``precision`` says so, as exciters); each image's value depends only on itself. Results are
``ExciterResult`` objects whose activation is the view's measure.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import keras
import numpy as np
from keras import ops

from generator.analysis import backend, graph
from generator.analysis.exciters import ExciterResult, adam_ascent, as_rgb, spectrum_scale, spectrum_to_rgb
from generator.analysis.precision import resolve_precision
from generator.pixels import grey_as_rgb, luminance

CARICATURE_POWER = 1.0  # Lucid's cossim_pow


@dataclass(frozen=True)
class Batches:
    """How a view runs: ``size`` images a compiled step, in ``precision`` (``auto`` resolved as for exciters),
    ``progress(1)`` after each step of each batch."""

    size: int
    precision: str = "float32"
    progress: Callable[[int], None] | None = None


def deepdream(model: keras.Model, layer: str, images: np.ndarray, preprocess: Callable, steps: int,
              step_size: float, batches: Batches) -> ExciterResult:
    """DeepDream of each uint8 image (N, S, S, 3) at ``layer``; the measure is the mean squared activation.
    ``batches.progress(1)`` is called after each step of each batch."""
    cut = _cut(model, layer, batches.precision)
    grey = model.input.shape[-1] == 1  # a grayscale model's dream changes the grey image it sees
    activations = _activations(cut, preprocess)
    value_and_grad = backend.value_and_grad(lambda x: _mean_square(activations(x)))

    def step(x):
        values, g = value_and_grad(x)
        rms = ops.sqrt(ops.mean(ops.square(g), axis=(1, 2, 3), keepdims=True))
        return ops.clip(x + step_size * g / (rms + 1e-5), 0.0, 255.0), values

    step, compiled = backend.compile_step(step), _compiled_activations(cut, preprocess)

    def run(batch: np.ndarray) -> ExciterResult:
        x, start = ops.convert_to_tensor(luminance(batch) if grey else batch.astype("float32")), None
        for _ in range(steps):
            x, values = step(x)
            start = values if start is None else start  # the energy before the first step, from the step's own pass
            _tick(batches.progress)
        start = _mean_square(compiled(x)) if start is None else start  # no step: the same forward's bits
        out = grey_as_rgb(np.clip(np.round(_numpy(x)), 0, 255).astype(np.uint8))
        return ExciterResult(out, _numpy(_mean_square(compiled(ops.convert_to_tensor(out.astype("float32"))))),
                             _numpy(start))

    return _batched(run, images, batches.size)


def caricature(model: keras.Model, layer: str, images: np.ndarray, preprocess: Callable, steps: int, seed: int,
               batches: Batches) -> ExciterResult:
    """Caricature of each uint8 image (N, S, S, 3) at ``layer``; the measure is the cosine similarity of the
    layer's activations on the result with those on the image. An image's noise derives from the seed and
    its pixels. ``batches.progress(1)`` is called after each step of each batch."""
    cut = _cut(model, layer, batches.precision)
    size = images.shape[1]
    scale = spectrum_scale(size)

    acts = _compiled_activations(cut, preprocess)

    def similarity(x, target, target_norm):
        """(dot, cosine) of each image's activations with its target's (whose norm is given: once, not a step)."""
        a = acts(x)
        dot = ops.sum(a * target, axis=(1, 2, 3))
        return dot, dot / (_norm(a) * target_norm + 1e-6)

    def objective(spectrum, target, target_norm):
        dot, cosine = similarity(spectrum_to_rgb(spectrum, scale, size) * 255.0, target, target_norm)
        return dot * cosine**CARICATURE_POWER

    value_and_grad = backend.value_and_grad(objective)

    def step(spectrum, m, v, t, target, target_norm):
        _, g = value_and_grad(spectrum, target, target_norm)
        return adam_ascent(spectrum, g, m, v, t)

    step, render = backend.compile_step(step), _compiled_render(size)

    def run(batch: np.ndarray) -> ExciterResult:
        target = acts(ops.convert_to_tensor(batch.astype("float32")))
        target_norm = _norm(target)
        shape = (2, model.input.shape[-1], size, size // 2 + 1)
        noise = [np.random.default_rng([seed, _image_key(image)]).normal(0, 0.01, shape) for image in batch]
        spectrum = ops.convert_to_tensor(np.stack(noise).astype("float32"))
        start = similarity(render(spectrum), target, target_norm)[1]
        m = v = ops.zeros_like(spectrum)
        for i in range(steps):
            spectrum, m, v = step(spectrum, m, v, ops.convert_to_tensor(np.float32(i + 1)), target, target_norm)
            _tick(batches.progress)
        image = render(spectrum)
        reached = similarity(image, target, target_norm)[1]
        return ExciterResult(np.clip(np.round(_numpy(image)), 0, 255).astype(np.uint8), _numpy(reached), _numpy(start))

    return _batched(run, images, batches.size)


def _cut(model: keras.Model, layer: str, precision: str) -> keras.Model:
    """The model up to ``layer``, computing in ``precision`` (``auto`` resolved as for exciters)."""
    graph.model_layer(model, layer, "views")
    return backend.cut_at_precision(model, layer, resolve_precision(precision))


def _activations(cut: keras.Model, preprocess: Callable) -> Callable:
    """0..255 images -> the layer's activations, float32."""
    def activations(x):
        return ops.cast(cut(preprocess(as_rgb(x)), training=False), "float32")

    return activations


@lru_cache(maxsize=4)
def _compiled_activations(cut: keras.Model, preprocess: Callable) -> Callable:
    """``_activations`` compiled once for every view of a layer: each compiled function traces and optimises the network's
    graph on its first call, a tenth of a second or more on a CPU. Kept for the last four cuts, which it keeps alive
    with it (the same four as :func:`generator.analysis.backend.cut_at_precision` keeps while the views run)."""
    return backend.compile_step(_activations(cut, preprocess))


@lru_cache(maxsize=4)
def _compiled_render(size: int) -> Callable:
    """A Caricature's spectrum -> its 0..255 image (the measure's input before and after): compiled once for every
    layer of that size."""
    scale = spectrum_scale(size)
    return backend.compile_step(lambda spectrum: spectrum_to_rgb(spectrum, scale, size) * 255.0)


def _norm(a):
    """Each image's L2 norm of its activations."""
    return ops.sqrt(ops.sum(ops.square(a), axis=(1, 2, 3)))


def _mean_square(a):
    """DeepDream's measure: each image's mean squared activation."""
    return ops.mean(ops.square(a), axis=(1, 2, 3))


def batch_count(count: int, batch_size: int) -> int:
    """How many batches ``count`` images take (what a view's steps are repeated for)."""
    return -(-count // batch_size)


def _tick(progress: Callable[[int], None] | None) -> None:
    if progress is not None:
        progress(1)


def _image_key(image: np.ndarray) -> int:
    """A number from the image's pixels: its noise does not depend on the batch it lands in."""
    return int.from_bytes(hashlib.blake2b(image.tobytes(), digest_size=8).digest(), "little")


def _batched(run: Callable[[np.ndarray], ExciterResult], images: np.ndarray, batch_size: int) -> ExciterResult:
    """``run`` over equal batches (the last padded by repeating an image), so each step is traced once."""
    n = len(images)
    width = -(-n // -(-n // batch_size))
    parts = []
    for first in range(0, n, width):
        k = min(width, n - first)
        pick = [first + min(i, k - 1) for i in range(width)]
        result = run(images[pick])
        parts.append(ExciterResult(result.images[:k], result.activation[:k], result.start_activation[:k]))
    return ExciterResult(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("images", "activation", "start_activation")))


def _numpy(x) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float32)
