"""MACO, Fel et al. 2023 ("Unlocking Feature Visualization for Deeper Networks with MAgnitude Constrained
Optimization"): the exciter recipe that keeps the image's Fourier magnitude fixed and optimises its phase.

    image = sigmoid(recorrelate(standardise(irfft2(M * e^{i phi}))))

``M`` is a fixed average spectrum of natural images (:func:`imagenet_magnitude` for RGB, or
:func:`folder_magnitude` of the user's images, Xplique's rule for grayscale); ``phi`` is standardised
first. Each step the image is seen through ``maco_crops`` random crops per unit (Xplique's 32; centres
N(0.5, 0.15), side around a mean falling linearly from 50% to 5% of the image, sd 0.05, clipped to
5%..100%), or whole where it is 0, resized to the model's input, plus Gaussian noise (sd 0.08) and
uniform noise (width 0.08); Nadam at learning rate 1.0 climbs the views' mean objective. The sum over steps of |d objective / d image| is the transparency map.

Batched across units like the project's Lucid exciters: each unit has its own phase, crops and noise,
drawn from (seed, channel), so a unit's image does not depend on its batch. The reference is Xplique's
``features_visualizations/maco.py`` and ``preconditioning.py``, which optimises one objective per run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from keras import ops

from generator.analysis import backend
from generator.analysis.exciters.batch import ExciterResult, finite_numpy, unit_rng
from generator.analysis.exciters.fourier import irfft2
from generator.analysis.exciters.objectives import as_rgb
from generator.config import ExciterParams
from generator.errors import GeneratorError
from generator.images import read_square
from generator.pixels import luminance

NOISE = 0.08
_READ_BATCH = 64  # images read at a time for a folder's spectrum
_CENTRE_SD, _SIZE_SD, _SIZE_FROM, _SIZE_TO = 0.15, 0.05, 0.5, 0.05
_LR, _BETA1, _BETA2, _DECAY, _EPS = 1.0, 0.9, 0.999, 0.96, 1e-7  # Keras' Nadam, as Xplique uses it
# Xplique's ImageNet colour correlation (rows: decorrelated components, columns: R, G, B).
_RECORRELATE = np.array([[0.56282854, 0.58447580, 0.58447580],
                         [0.19482528, 0.00000000, -0.19482528],
                         [0.04329450, -0.10823626, 0.06494176]], "float32")


def imagenet_magnitude(size: int) -> np.ndarray:
    """ImageNet's average magnitude spectrum in decorrelated colour, (3, S, S//2+1), as Xplique ships it in
    its wheel (``spectrum_decorrelated.npy``, 512 x 257), resized bilinearly as Xplique does.

    Read from the installed package's files without importing it (``pip install --no-deps xplique==2.0.2``:
    the ``maco`` extra); computing it needs ImageNet, which is not offline here.
    """
    spec = importlib.util.find_spec("xplique")
    path = Path(next(iter(spec.submodule_search_locations or []), "")) if spec else None
    path = path / "features_visualizations" / "spectrum_decorrelated.npy" if path else None
    if path is None or not path.is_file():
        raise GeneratorError("exciters: method maco needs ImageNet's average spectrum from the xplique wheel; "
                             "install it with: pip install --no-deps xplique==2.0.2")
    return resized(np.load(path).astype("float32"), size)


def magnitude_sum(images: np.ndarray) -> np.ndarray:
    """The sum over ``images`` (N, H, W, C) of each one's |rfft2| per channel, (C, H, W//2+1) float64."""
    return np.abs(np.fft.rfft2(np.moveaxis(np.asarray(images, "float64"), -1, 1))).sum(axis=0)


def folder_magnitude(files: Sequence[Path], size: int, channels: int) -> np.ndarray:
    """The average magnitude spectrum (C, size, size//2+1) of the image ``files``, each read as the site reads
    images (a centre square of ``size``) and taken to MACO's channels (:func:`maco_channels`) in [0, 1]."""
    total = 0.0
    for first in range(0, len(files), _READ_BATCH):
        pixels = np.stack([read_square(p, size, "exciters.maco_spectrum") for p in files[first:first + _READ_BATCH]])
        total = total + magnitude_sum(maco_channels(pixels, channels))
    return (total / len(files)).astype("float32")


def maco_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """RGB pixels 0..255 (N, H, W, 3) as the channels MACO's magnitude describes, in [0, 1]: a grayscale model's
    luminance, or ImageNet's decorrelated colour, the basis of its shipped spectrum, which :func:`maco_image`
    recorrelates (Xplique's dataset rule takes the colour channels as they are, then recorrelates them too)."""
    x = np.asarray(pixels, "float32") / 255.0
    return luminance(x) if channels == 1 else x @ np.linalg.inv(_RECORRELATE)


def resized(magnitude: np.ndarray, size: int) -> np.ndarray:
    """(C, h, w) -> (C, S, S//2+1), bilinear without antialiasing (tf.image.resize's default)."""
    if magnitude.shape[1:] == (size, size // 2 + 1):
        return np.asarray(magnitude, "float32")
    image = ops.image.resize(np.moveaxis(magnitude, 0, -1)[None], (size, size // 2 + 1), "bilinear")
    return np.moveaxis(np.asarray(ops.convert_to_numpy(image))[0], -1, 0).astype("float32")


def maco_image(magnitude, phase, size: int):
    """(C, S, S//2+1) magnitude, (B, C, S, S//2+1) phases -> (B, S, S, C) images in [0, 1].

    Phase and image are standardised per item (mean 0, sd 1 over all their values); 3 channels are
    recorrelated with ImageNet's colour correlation.
    """

    phase = _standardised(phase)
    x = irfft2(ops.cos(phase) * magnitude, ops.sin(phase) * magnitude, size)  # (B, C, S, S)
    x = _standardised(ops.transpose(x, (0, 2, 3, 1)))
    if x.shape[-1] == 3:
        x = ops.matmul(x, _RECORRELATE)
    return ops.sigmoid(x)


def _standardised(x):
    axes = tuple(range(1, len(x.shape)))
    x = x - ops.mean(x, axis=axes, keepdims=True)
    return x / (ops.std(x, axis=axes, keepdims=True) + 1e-5)


def crop_boxes(params: ExciterParams, rng: np.random.Generator) -> np.ndarray:
    """Per step, (steps, maco_crops, 3): each crop's centre (y, x) and side, as fractions of the image."""
    n, crops = params.steps, params.maco_crops
    centres = 0.5 + _CENTRE_SD * rng.standard_normal((n, crops, 2))
    mean = np.linspace(_SIZE_FROM, _SIZE_TO, n)[:, None]
    sides = np.clip(mean + _SIZE_SD * rng.standard_normal((n, crops)), 0.05, 1.0)
    return np.concatenate([centres, sides[..., None]], -1).astype("float32")


def crops_of(images, boxes, canvas: int):
    """(B, S, S, C) images, (B, K, 3) boxes -> (B * K, canvas, canvas, C): tf.image.crop_and_resize's bilinear
    crops (corners on pixel centres, zero where a sample point falls outside the image).

    Written as two interpolation matrices per crop, so the gradient is the exact adjoint (keras'
    affine_transform, a projective warp, is differentiated by warping back, which is not).
    """
    size = images.shape[1]
    start = (boxes[..., :2] - boxes[..., 2:] / 2) * (size - 1)  # (B, K, 2): the first sample's y, x
    stride = boxes[..., 2:] * (size - 1) / max(canvas - 1, 1)  # (B, K, 1)
    points = start[..., None] + stride[..., None] * ops.arange(canvas, dtype="float32")  # (B, K, 2, canvas)
    inside = ops.cast((points >= 0) & (points <= size - 1), "float32")
    weights = ops.relu(1.0 - ops.abs(points[..., None] - ops.arange(size, dtype="float32"))) * inside[..., None]
    rows = ops.einsum("bkis,bstc->bkitc", weights[:, :, 0], images)
    crops = ops.einsum("bkitc,bkjt->bkijc", rows, weights[:, :, 1])
    return ops.reshape(crops, (-1, canvas, canvas, images.shape[-1]))


def whole(images, canvas: int):
    """(B, S, S, C) images as the model sees them whole: resized to ``canvas`` (bilinear) where it differs."""
    return images if images.shape[1] == canvas else ops.image.resize(images, (canvas, canvas), "bilinear")


def nadam_constants(steps: int) -> np.ndarray:
    """Per step, (steps, 5): Keras' Nadam ``u_t, u_{t+1}, prod u up to t, prod u up to t+1, beta2^t``."""
    t = np.arange(1, steps + 1, dtype="float64")
    u = _BETA1 * (1 - 0.5 * _DECAY ** t)
    u_next = _BETA1 * (1 - 0.5 * _DECAY ** (t + 1))
    product = np.cumprod(u)
    return np.stack([u, u_next, product, product * u_next, _BETA2**t], -1).astype("float32")


def nadam_descent(x, g, m, v, c):
    """One step of Keras' Nadam down ``g`` with the step's constants ``c`` (5,): ``(x, m, v)``."""
    m = m + (g - m) * (1 - _BETA1)
    v = v + (ops.square(g) - v) * (1 - _BETA2)
    m_hat = c[1] * m / (1 - c[3]) + (1 - c[0]) * g / (1 - c[2])
    v_hat = v / (1 - c[4])
    return x - _LR * m_hat / (ops.sqrt(v_hat) + _EPS), m, v


def maco_step(objective: Callable, magnitude, size: int, canvas: int, sign: float = 1.0) -> Callable:
    """``(phase, m, v, constants, boxes, noise, targets) -> (phase, m, v, |d objective / d image|)``.

    ``objective(images 0..255 (B * K, canvas, canvas, 3), targets repeated) -> (B * K,)``; each unit climbs
    the mean of ``sign`` * its K crops' objective (boxes (B, K, 3); K = 0: the whole image, one view, as
    Xplique's ``nb_crops=0``). ``noise`` (B * max(K, 1), canvas, canvas, C) is added to the views in [0, 1].
    """
    magnitude = ops.convert_to_tensor(magnitude)

    def crops_value(images, boxes, noise, targets):
        count = max(boxes.shape[1], 1)
        crops = (crops_of(images, boxes, canvas) if boxes.shape[1] else whole(images, canvas)) + noise
        values = objective(as_rgb(crops) * 255.0, ops.repeat(targets, count, axis=0))
        return sign * ops.mean(ops.reshape(values, (images.shape[0], count)), axis=1)

    def pulled(phase, weights):
        return ops.sum(maco_image(magnitude, phase, size) * weights, axis=(1, 2, 3))

    image_gradient = backend.value_and_grad(crops_value)
    phase_gradient = backend.value_and_grad(pulled)

    def step(phase, m, v, constants, boxes, noise, targets):
        _, g_image = image_gradient(maco_image(magnitude, phase, size), boxes, noise, targets)
        _, g_phase = phase_gradient(phase, g_image)  # the chain rule through the parametrisation
        phase, m, v = nadam_descent(phase, -g_phase, m, v, constants)
        return phase, m, v, ops.abs(g_image)

    return backend.compile_step(step)


def maco_recipe(make_objective: Callable, params: ExciterParams, canvas: int, magnitude: np.ndarray) -> Callable:
    """The batch runner of :func:`generator.analysis.exciters.render_items` for ``method: maco``."""

    size, channels = params.size, magnitude.shape[0]
    objective = make_objective()
    step = maco_step(objective, magnitude, size, canvas, -1.0 if params.negative else 1.0)
    constants = nadam_constants(params.steps)
    views = max(params.maco_crops, 1)

    def image_and_objective(phase, targets):
        image = maco_image(ops.convert_to_tensor(magnitude), phase, size)
        return image, objective(as_rgb(whole(image, canvas)) * 255.0, targets)

    image_and_objective = backend.compile_step(image_and_objective)

    def run_batch(keys: list[tuple[int, ...]], targets: np.ndarray) -> ExciterResult:
        units = ops.convert_to_tensor(targets)
        phase = np.stack([unit_rng(params, k, 0).standard_normal((channels, size, size // 2 + 1)) for k in keys])
        phase = ops.convert_to_tensor(phase.astype("float32"))
        boxes = np.stack([crop_boxes(params, unit_rng(params, k, 1)) for k in keys], 1)  # (steps, B, K, 3)
        noise_rngs = [unit_rng(params, k, 2) for k in keys]
        _, start = image_and_objective(phase, units)
        m = v = ops.zeros_like(phase)
        alpha = 0.0
        for i in range(params.steps):
            noise = np.concatenate([_noise(r, (views, canvas, canvas, channels)) for r in noise_rngs])
            phase, m, v, g = step(phase, m, v, constants[i], boxes[i], noise, units)
            alpha = alpha + g
        image, reached = image_and_objective(phase, units)
        image = finite_numpy(image)
        image = np.repeat(image, 3, axis=-1) if channels == 1 else image
        images = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
        alpha = transparency_map(alpha, len(keys), size)
        return ExciterResult(images, finite_numpy(reached), finite_numpy(start), alpha)

    return run_batch


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Xplique's noise: Gaussian (sd NOISE) plus uniform in [-NOISE/2, NOISE/2)."""
    return (NOISE * rng.standard_normal(shape, np.float32) + NOISE * (rng.random(shape, np.float32) - 0.5))


def transparency_map(alpha, count: int, size: int) -> np.ndarray:
    """Summed |gradients| (B, S, S, C) -> (B, S, S) in [0, 1]: the channels' sum over each map's maximum."""
    if isinstance(alpha, float):
        return np.zeros((count, size, size), np.float32)
    a = finite_numpy(alpha).sum(axis=-1)
    return a / np.maximum(a.max(axis=(1, 2), keepdims=True), 1e-12)
