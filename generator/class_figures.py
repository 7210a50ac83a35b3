"""The figures of a class page: its concepts' shares, their crops, where they lie on the class's images, the
2-D map of the images and the deletion check.

Arrays in, one file out, deterministic bytes, as in :mod:`generator.figures` (whose plumbing and palette they
use: concept ``k`` is drawn in ``group_colours`` colour ``k`` everywhere, on the image pages too). Charts are
drawn on a transparent background in grey ink, so they read on light and dark pages alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from generator import canvas
from generator.figures import INK, coloured_maps, group_colours, new_figure, save_figure

MAPS_PER_ROW = 6
MAP_SIDE = 128  # the class's images are drawn at least this wide (a 32 px image's concepts stay readable)


def _colours(indices: Sequence[int]) -> np.ndarray:
    """Matplotlib colours (n, 3) in 0..1 of the concepts ``indices``."""
    return group_colours(max(indices, default=0) + 1)[list(indices)] / 255


def concept_shares(indices: Sequence[int], shares: Sequence[float], path: Path, *, title: str) -> Path:
    """One bar a concept (``indices``, in the order given, the first on top), its share of the score in
    its colour, labelled with the percentage."""
    shares = np.asarray(shares, np.float64)
    fig = new_figure(6.4, 0.35 * len(shares) + 1.1)
    ax = fig.add_subplot()
    y = np.arange(len(shares))
    ax.barh(y, 100 * shares, color=_colours(indices))
    ax.set_yticks(y, [f"concept {k + 1}" for k in indices])
    ax.invert_yaxis()
    top = max(100 * float(shares.max(initial=0)), 1.0) * 1.15
    ax.set_xlim(0, top)
    for yi, v in zip(y, shares):
        ax.text(100 * v + 0.01 * top, yi, f"{100 * v:.1f}%", va="center", ha="left", color=INK, fontsize=9)
    ax.set_xlabel("share of the score (%)")
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def concept_crops(crops: Sequence[np.ndarray], values: Sequence[float], path: Path, *, title: str,
                  quality: int = 85) -> Path:
    """A concept's crops (each (h, w, 3) uint8, any size) shown at one size, each labelled with the concept's
    value there."""
    cols = min(5, len(crops))
    side = canvas.tile_side(max(c.shape[1] for c in crops), cols)
    tiles = np.stack([_square(canvas.fit(c, side), side) for c in crops])
    body = canvas.mosaic(tiles, [f"{v:.3g}" for v in values], cols)
    return canvas.save(canvas.stack([canvas.text(title, canvas.TITLE), body]), path, quality)


def _square(tile: np.ndarray, side: int) -> np.ndarray:
    """A tile ``side`` px wide cut or padded (white) to ``side`` px high."""
    out = np.full((side, side, 3), 255, np.uint8)
    h = min(side, tile.shape[0])
    out[:h] = tile[:h]
    return out


def class_maps(images: np.ndarray, maps: np.ndarray, labels: Sequence[str], path: Path, *, title: str,
               quality: int = 85) -> Path:
    """Each of the class's images (N, S, S, 3) with every concept's map (K, N, h, w) in the concept's colour
    (each map scaled to its own maximum on that image), labelled."""
    cols = min(MAPS_PER_ROW, len(images))
    side = canvas.tile_side(max(images.shape[2], MAP_SIDE), cols)
    tiles = [np.clip(coloured_maps(image, maps[:, i])[2], 0, 255).astype(np.uint8) for i, image in enumerate(images)]
    body = canvas.mosaic(np.stack([canvas.fit(t, side) for t in tiles]), labels, cols)
    return canvas.save(canvas.stack([canvas.text(title, canvas.TITLE), body]), path, quality)


def class_embedding(points: np.ndarray, dominant: np.ndarray, path: Path, *, title: str) -> Path:
    """The class's images as points (N, 2), each in the colour of its dominant concept (an index)."""
    points, dominant = np.asarray(points, np.float64), np.asarray(dominant)
    fig = new_figure(5.2, 4.2)
    ax = fig.add_subplot()
    for k in sorted(set(dominant.tolist())):
        at = dominant == k
        ax.scatter(points[at, 0], points[at, 1], s=28, color=_colours([k]), label=f"concept {k + 1}")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5), labelcolor=INK)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def deletion_check(indices: Sequence[int], shares: Sequence[float], drops: Sequence[float], floor: float,
                   path: Path, *, title: str) -> Path:
    """The size of each concept's score drop when deleted (what the deletion check ranks: Sobol indices are
    unsigned) against its stated share, in its colour and numbered; the random floor's size as a dashed line."""
    shares, drops, floor = 100 * np.asarray(shares, np.float64), np.abs(np.asarray(drops, np.float64)), abs(floor)
    fig = new_figure(5.2, 3.6)
    ax = fig.add_subplot()
    ax.scatter(shares, drops, s=36, color=_colours(indices))
    for k, x, y in zip(indices, shares, drops):
        ax.annotate(str(k + 1), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8, color=INK)
    ax.axhline(floor, color=INK, linestyle="--", linewidth=1, label=f"random concept: {floor:.3g}")
    ax.set_xlabel("stated share of the score (%)")
    ax.set_ylabel("size of the score drop when deleted")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)
