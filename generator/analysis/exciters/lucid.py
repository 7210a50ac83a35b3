"""Lucid's exciter recipe, ``lucid``.

The image is a Fourier spectrum with 1/f scaling and decorrelated ImageNet colour, squashed by a sigmoid
into [0, 1]; each step it is seen through random transforms (pad 12, jitter 8, scale 0.9..1.1, rotate
-10..10 degrees, jitter 4) and Adam (lr 0.05) follows the gradient. For the first 16 steps the gradient
passes the target layer's ReLU where it would raise its input (Lucid's ReLU gradient override, which Lucid
applies to every ReLU; here to the target's, written as climbing its pre-activation so it runs on every
backend), so a unit that is 0 everywhere on the start image still moves.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from keras import ops

from generator.analysis import backend
from generator.analysis.exciters.batch import ExciterResult, finite_numpy, unit_rng
from generator.analysis.exciters.fourier import irfft2
from generator.analysis.exciters.objectives import SWITCH, as_rgb
from generator.config import ExciterParams

# Lucid's ImageNet colour correlation (square root of the RGB covariance), columns scaled to norm <= 1.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], "float32")
_COLOR = _COLOR_SQRT / np.max(np.linalg.norm(_COLOR_SQRT, axis=0))
_SCALES = [1 + (i - 5) / 50 for i in range(11)]  # 0.90 .. 1.10
_ANGLES = list(range(-10, 11)) + 5 * [0]  # degrees, 0 more likely
_LR, _BETA1, _BETA2, _EPS = 0.05, 0.9, 0.999, 1e-8
_REDIRECT_STEPS = 16  # Lucid's ReLU gradient override holds for the first 16 steps


def spectrum_scale(size: int, decay: float = 1.0) -> np.ndarray:
    """Lucid's 1/f amplitude of each rfft2 frequency of a size x size image, (S, S//2+1)."""
    freqs = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.rfftfreq(size)[None, :] ** 2)
    return (size / np.maximum(freqs, 1.0 / size) ** decay).astype("float32")


def spectrum_to_rgb(spectrum, scale, size: int):
    """(B, 2, C, S, S//2+1) real and imaginary parts -> (B, S, S, 3) RGB in [0, 1].

    C = 3: decorrelated colour; C = 1 (a grayscale model): the Fourier image alone, as three equal channels.
    """
    scale = ops.convert_to_tensor(scale)
    real, imag = ops.unstack(spectrum, 2, axis=1)  # not spectrum[:, 0]: a slice's gradient is a slow scatter
    x = irfft2(real * scale, imag * scale, size) / 4.0  # (B, C, S, S)
    x = ops.transpose(x, (0, 2, 3, 1))
    if x.shape[-1] == 3:
        x = ops.matmul(x, _COLOR.T)  # decorrelated -> RGB
    return ops.sigmoid(as_rgb(x))


def lucid_transforms(params: ExciterParams, key: tuple[int, ...], canvas: int) -> np.ndarray:
    """Per step, (steps, 8): the affine map of pad 12, jitter 8, scale, rotate, jitter 4, as one transform.

    In keras' form ``[a0, a1, a2, b0, b1, b2, 0, 0]``: output pixel (x, y) of the canvas samples the
    input (the image padded to the canvas) at (a0 x + a1 y + a2, b0 x + b1 y + b2).
    """
    rng, n, s = unit_rng(params, key, 1), params.steps, params.size
    jitter8 = rng.integers(0, 9, (n, 2))  # random crop offsets, as Lucid's jitter(8)
    scale = rng.choice(_SCALES, n)
    angle = np.deg2rad(rng.choice(_ANGLES, n))
    jitter4 = rng.integers(0, 5, (n, 2))
    centre = (s + 24 - 8 - 1) / 2  # of the padded, jittered view, in padded coordinates
    shift = (s + 12 - canvas) / 2  # canvas inside Lucid's (s + 12) final view
    pad = (canvas - s) // 2  # the image inside the canvas-sized input
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    a = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (n, 2, 2): rotate, then zoom
    d = shift + jitter4 - centre  # (n, 2) in (x, y)
    offset = centre + np.einsum("nij,nj->ni", a, d) + jitter8 - 12 + pad
    zeros = np.zeros(n)
    rows = [a[:, 0, 0], a[:, 0, 1], offset[:, 0], a[:, 1, 0], a[:, 1, 1], offset[:, 1], zeros, zeros]
    return np.stack(rows, -1).astype("float32")


def adam_ascent(x, g, m, v, t):
    """One step of Adam (Lucid's lr 0.05) up the gradient ``g`` at step ``t`` (from 1): ``(x, m, v)``."""
    m = _BETA1 * m + (1 - _BETA1) * g
    v = _BETA2 * v + (1 - _BETA2) * ops.square(g)
    m_hat, v_hat = m / (1 - _BETA1**t), v / (1 - _BETA2**t)
    return x + _LR * m_hat / (ops.sqrt(v_hat) + _EPS), m, v


def lucid_recipe(make_objective: Callable, params: ExciterParams, canvas: int, channels: int) -> Callable:
    size, scale = params.size, spectrum_scale(params.size)
    sign = -1.0 if params.negative else 1.0
    before, after = (canvas - size) // 2, canvas - size - (canvas - size) // 2
    pads = [[0, 0], [before, after], [before, after], [0, 0]]
    objective = make_objective()
    climbed = make_objective(redirect_relu=SWITCH, penalised=True)  # one compiled step, with and without the override

    def seen(spectrum, transforms, channels, redirect):
        """The signed objective of the image as seen through this step's transforms."""
        image = ops.pad(spectrum_to_rgb(spectrum, scale, size), pads, constant_values=0.5)  # to the canvas size
        image = ops.image.affine_transform(image, transforms, fill_mode="constant", fill_value=0.5)
        return sign * climbed(image * 255.0, channels, redirect)

    value_and_grad = backend.value_and_grad(seen)

    def adam_step(spectrum, m, v, t, transforms, channels, redirect):
        _, g = value_and_grad(spectrum, transforms, channels, redirect)
        return adam_ascent(spectrum, g, m, v, t)

    def image_and_objective(spectrum, channels):
        image = spectrum_to_rgb(spectrum, scale, size)
        return image, objective(image * 255.0, channels)

    step, image_and_objective = backend.compile_step(adam_step), backend.compile_step(image_and_objective)

    def run_batch(keys: list[tuple[int, ...]], targets: np.ndarray) -> ExciterResult:
        units = ops.convert_to_tensor(targets)
        shape = (2, channels, size, size // 2 + 1)
        spectrum = np.stack([unit_rng(params, k, 0).normal(0, 0.01, shape) for k in keys]).astype("float32")
        spectrum = ops.convert_to_tensor(spectrum)
        transforms = np.stack([lucid_transforms(params, k, canvas) for k in keys], 1)  # (steps, B, 8)
        _, start = image_and_objective(spectrum, units)
        m = v = ops.zeros_like(spectrum)
        for i in range(params.steps):
            t = ops.convert_to_tensor(np.float32(i + 1))
            # Lucid's ReLU gradient override: the first steps raise the target's input, not only where it is positive
            # (when lowering the unit, the gradient only passes where the ReLU is open anyway).
            redirect = ops.convert_to_tensor(i < _REDIRECT_STEPS and not params.negative)
            spectrum, m, v = step(spectrum, m, v, t, ops.convert_to_tensor(transforms[i]), units, redirect)
        image, reached = image_and_objective(spectrum, units)
        images = np.clip(np.round(finite_numpy(image) * 255.0), 0, 255).astype(np.uint8)
        return ExciterResult(images, finite_numpy(reached), finite_numpy(start))

    return run_batch