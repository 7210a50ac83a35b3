"""The baselines that Integrated Gradients starts from and faithfulness removes pixels to: black (zeros),
or the photo blurred by a Gaussian of std ``BLUR_SIGMA`` x its shorter side, a separable Gaussian blur:

    y = x * g_H * g_W,    g(t) = exp(-t^2 / (2 sigma^2)) / Z  for |t| <= max(1, floor(3 sigma))

along H, then W, Z making the kernel sum to 1, the edges reflected (numpy's ``reflect`` padding: the
edge pixel is not repeated).
"""

from __future__ import annotations

import numpy as np

BLUR_SIGMA = 1 / 20  # the blurred baseline's Gaussian std, as a fraction of the image's shorter side


def baselines(x: np.ndarray, kind: str) -> np.ndarray:
    """(N, H, W, 3) photos -> their ``kind`` baselines: "black" or "blurred"."""
    if kind == "black":
        return np.zeros_like(x)
    return gaussian_blur(x, BLUR_SIGMA * min(x.shape[1:3]))


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """(N, H, W, C) blurred along H and W by a Gaussian of std ``sigma`` pixels (edges reflected)."""
    radius = max(1, int(3 * sigma))
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (1, 2):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(x, pad, mode="reflect")
        x = sum(w * np.take(padded, np.arange(i, i + x.shape[axis]), axis=axis) for i, w in enumerate(kernel))
    return x.astype(np.float32)
