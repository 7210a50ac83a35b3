"""Attribution maps as saved beside their figures: half the bytes of float32, none of float16's losses.

float16 keeps 11 significant bits only for magnitudes above 6e-5; a map whose values are about 1e-6
(a unit's gradient) would come out as a few levels. So each map is divided by its own largest finite
magnitude before it is rounded to float16, and that scale is stored beside it, in the same ``.npy``,
as a structured array with one record a map::

    saved = np.load(path)                               # fields "scale" (float64) and "map" (float16, H x W)
    maps = saved["map"] * saved["scale"][:, None, None]  # (M, H, W) float64

Every value read back so is within 2**-11 (4.9e-4) of its map's largest magnitude of the value computed:
float16 rounds the scaled values, all in [-1, 1], to 11 significant bits (or to a step of 2**-24
below 2**-14). NaN and infinities are kept as they are; an all-zero map has the scale 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The largest error of a value read back, as a fraction of its map's largest magnitude.
RELATIVE_ERROR = 2.0**-11


def map_records(maps: np.ndarray) -> np.ndarray:
    """``maps`` (M, H, W) as M records of a scale (float64) and the map divided by it (float16)."""
    maps = np.asarray(maps, dtype=np.float64)
    records = np.zeros(len(maps), dtype=[("scale", "<f8"), ("map", "<f2", maps.shape[1:])])
    records["scale"] = [largest_magnitude(m) for m in maps]
    records["map"] = maps / records["scale"][:, None, None]
    return records


def largest_magnitude(m: np.ndarray) -> float:
    """The largest finite magnitude in ``m``; 1 where there is none (all zeros, NaN or empty)."""
    finite = np.abs(m[np.isfinite(m)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def save_maps(path: Path, maps: np.ndarray) -> None:
    """Save ``maps`` (M, H, W) at ``path`` as :func:`map_records`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, map_records(maps))
