"""Pixels for display, in numpy alone: map normalisation, exciter deprocessing, mosaics, resampling.

No matplotlib and no model code: the analyses (which deprocess exciters) and the figures both use it.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

def normalise_map(m: np.ndarray) -> np.ndarray:
    """Display-normalise one map: (m - mean) / std * 64 + 128, clipped to 0..255, uint8.

    A constant map, an empty one or one with non-finite values renders flat 128, without
    warnings. Constancy is tested exactly (max == min): a constant 0.1 map has a float
    rounding std of ~1e-17, which would otherwise be blown up to a flat 64 or 192.
    """
    m = np.asarray(m, dtype=np.float64)
    flat = np.full(m.shape, 128, dtype=np.uint8)
    if m.size == 0 or not np.isfinite(m).all() or m.max() == m.min():
        return flat
    with np.errstate(all="ignore"):  # std may overflow (huge values) or underflow (subnormal)
        scaled = (m - m.mean()) / m.std() * 64 + 128
    if not np.isfinite(scaled).all():
        return flat
    return np.clip(scaled, 0, 255).astype(np.uint8)


def deprocess(x: np.ndarray) -> np.ndarray:
    """Exciter deprocessing: centre, scale to std 0.1, shift to 0.5, clip to [0, 1], x255, uint8.

    Takes one image (H, W, 3) or a batch (N, H, W, 3); each image is normalised on its own.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (3, 4):
        raise ValueError(f"deprocess expects (H, W, 3) or (N, H, W, 3), got shape {x.shape}")
    axes = (-3, -2, -1)
    x = x - x.mean(axis=axes, keepdims=True)
    x = x / (x.std(axis=axes, keepdims=True) + 1e-5) * 0.1 + 0.5
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R 601-2, as Pillow's grey ("L") mode: the weights sum to 1


def luminance(images: np.ndarray) -> np.ndarray:
    """RGB images (..., 3) as grey ones (..., 1), float32: what a grayscale model sees of them."""
    return (np.asarray(images, np.float32) @ np.array(LUMINANCE, np.float32))[..., None]


def grey_as_rgb(images: np.ndarray) -> np.ndarray:
    """Images (..., C) as RGB: grey ones (C = 1) as three equal channels, RGB ones as they are."""
    return images if images.shape[-1] == 3 else np.repeat(images, 3, axis=-1)


def symmetric_limit(kernels: np.ndarray) -> float:
    """Half-width of a zero-centred colour scale: max |w| over finite weights, 1.0 if all zero."""
    w = np.abs(np.asarray(kernels, dtype=np.float64))
    w = w[np.isfinite(w)]
    limit = float(w.max()) if w.size else 0.0
    return limit if limit > 0 else 1.0


def tile_mosaic(tiles: np.ndarray, per_row: int, fill) -> np.ndarray:
    """Lay out tiles (N, h, w[, c]) row by row, per_row a row; empty slots get ``fill``."""
    n, h, w = tiles.shape[:3]
    rest = tiles.shape[3:]
    rows = math.ceil(n / per_row)
    canvas = np.full((rows * per_row, h, w, *rest), fill, dtype=tiles.dtype)
    canvas[:n] = tiles
    canvas = canvas.reshape(rows, per_row, h, w, *rest).swapaxes(1, 2)
    return canvas.reshape(rows * h, per_row * w, *rest)


def upsample(activation: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D float map to size (H, W)."""
    a = np.asarray(activation, dtype=np.float32)
    h, w = size
    return np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR))


def value_range(a: np.ndarray) -> tuple[float, float]:
    """Colour limits over the finite values; a flat or empty map gets (v, v + 1)."""
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
