"""The lab's exciter recipe, ``gradient_ascent``.

Start from grey + uniform noise in [128, 148); ``steps`` times do ``x += step_size * g / (rms(g) + 1e-5)``
on the 0..255 RGB image, where ``g`` is the gradient of the unit's objective and ``rms`` is taken per
image; deprocess for display (centre, std 0.1, +0.5).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from keras import ops

from generator.analysis import backend
from generator.analysis.exciters.batch import ExciterResult, finite_numpy, unit_rng
from generator.analysis.exciters.objectives import as_rgb
from generator.config import ExciterParams
from generator.pixels import deprocess, grey_as_rgb


def start_image(params: ExciterParams, key: tuple[int, ...], channels: int = 3) -> np.ndarray:
    """Grey + uniform noise in [128, 148), (S, S, channels) float32."""
    return (128.0 + 20.0 * unit_rng(params, key, 0).random((params.size, params.size, channels))).astype("float32")


def gradient_ascent(make_objective: Callable, params: ExciterParams, canvas: int, channels: int) -> Callable:
    climb = make_objective()

    def objective(x, targets):
        return climb(as_rgb(x), targets)

    value_and_grad = backend.value_and_grad(objective)
    rate = -params.step_size if params.negative else params.step_size

    def step(x, channels):
        values, g = value_and_grad(x, channels)
        rms = ops.sqrt(ops.mean(ops.square(g), axis=(1, 2, 3), keepdims=True))
        return x + rate * g / (rms + 1e-5), values

    # One compiled function: the value on the final image is read from one more step (the same graph's value,
    # equal to a separate forward's bit for bit on VGG16) rather than from a second function traced per layer.
    step = backend.compile_step(step)

    def run_batch(keys: list[tuple[int, ...]], targets: np.ndarray) -> ExciterResult:
        units = ops.convert_to_tensor(targets)
        x = ops.convert_to_tensor(np.stack([start_image(params, k, channels) for k in keys]))
        start = None
        for _ in range(params.steps):
            x, values = step(x, units)
            start = values if start is None else start  # the value before the first step
        reached = finite_numpy(step(x, units)[1])
        start = reached if start is None else finite_numpy(start)
        return ExciterResult(grey_as_rgb(deprocess(finite_numpy(x))), reached, start)

    return run_batch