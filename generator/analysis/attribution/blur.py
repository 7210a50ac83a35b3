"""A separable Gaussian blur:

    y = x * g_H * g_W,    g(t) = exp(-t^2 / (2 sigma^2)) / Z  for |t| <= max(1, floor(3 sigma))

along H, then W, Z making the kernel sum to 1, the edges reflected (numpy's ``reflect`` padding: the
edge pixel is not repeated).
"""

from __future__ import annotations

import numpy as np


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
