"""What a method works on and hands back: the (image, target) pairs of a run, image-major, and
their scores and maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pairs:
    """Every (image, target) pair: pair p reads image ``image[p]`` and its score picks ``selector[p]``."""

    x: np.ndarray  # (N, H, W, 3) float32, 0..255
    image: np.ndarray  # (P,) int, P = N x T
    selector: np.ndarray  # (P,) int32: a class, a channel or nothing (0)

    def images(self, rows: np.ndarray) -> np.ndarray:
        """The pairs' images at ``rows``."""
        return self.x[self.image[rows]]


@dataclass(frozen=True)
class MethodMaps:
    """A method's output for every pair."""

    scores: np.ndarray  # (P,) f(x)
    maps: np.ndarray  # (P, H, W)
    layer: str | None = None  # gradcam: the layer its maps come from
    baseline_scores: np.ndarray | None = None  # integrated_gradients: (P,) f(x0)
