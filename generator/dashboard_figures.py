"""The figures of a unit's dashboard: its activation histogram and its examples at every level.

Arrays in, one file out, deterministic bytes, as in :mod:`generator.figures` (whose plumbing they use).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.ticker import FuncFormatter, NullLocator

from generator import canvas
from generator.figures import new_figure, save_figure


def activation_histogram(edges: np.ndarray, max_counts: np.ndarray, mean_counts: np.ndarray, path: Path, *,
                         title: str) -> Path:
    """The histograms of a unit's per-image maximum and mean over log-spaced bins (the positive ones; the
    images at 0 or below are counted in the legend)."""
    fig = new_figure(6.4, 2.6, layout=None)  # one axes: the tight box alone lays it out
    ax = fig.add_subplot()
    positive = np.nonzero(edges[:-1] > 0)[0][1:]  # the log-spaced bins: from 1e-4 up (the first holds (0, 1e-4))
    low, high = edges[positive], np.minimum(edges[positive + 1], edges[positive[-1]] * 10)
    used = np.nonzero((max_counts[positive] + mean_counts[positive]) > 0)[0]
    span = slice(used[0], used[-1] + 1) if len(used) else slice(len(positive) // 2, len(positive) // 2 + 1)
    for counts, colour, name in ((max_counts, "#3949ab", "per-image maximum"), (mean_counts, "#f57c00", "per-image mean")):
        zero = int(counts[:positive[0]].sum())
        ax.stairs(counts[positive][span], np.append(low[span], high[span][-1]), color=colour, linewidth=1.5,
                  label=f"{name} ({zero} below 1e-4, not drawn)")
    ax.set_xscale("log")
    ax.set_xticks(log_ticks(low[span][0], high[span][-1]))
    # Plain numbers (0.01, 1, 100) and no minor ticks: Matplotlib's mathtext powers and its minor ticks were
    # two thirds of the figure's time.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("activation")
    ax.set_ylabel("images")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return save_figure(fig, path)


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks for a log axis from ``low`` to ``high``: the powers of ten between them, with 2 and 5 times each
    where fewer than three powers fall inside."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for multiples in ((1,), (1, 2, 5)):
        ticks = [m * 10.0 ** d for d in decades for m in multiples if low <= m * 10.0 ** d <= high]
        if len(ticks) >= 3:
            break
    return ticks


def band_crops(crops: Sequence[np.ndarray], labels: Sequence[str], rows: Sequence[int], cols: int, path: Path, *,
               title: str, quality: int = 85) -> Path:
    """Crops (each (S, S, 3) uint8, one size) laid out a band a row: ``rows[i]`` is crop i's row; empty
    places stay white."""
    side = canvas.tile_side(crops[0].shape[1], cols)
    tiles = np.full((max(rows, default=0) + 1, cols, side, side, 3), 255, np.uint8)
    names = [""] * tiles.shape[0] * cols
    used = [0] * tiles.shape[0]
    for crop, label, row in zip(crops, labels, rows):
        tiles[row, used[row]] = canvas.fit(crop, side)[:side, :side]
        names[row * cols + used[row]] = label
        used[row] += 1
    body = canvas.mosaic(tiles.reshape(-1, side, side, 3), names, cols)
    return canvas.save(canvas.stack([canvas.text(title, canvas.TITLE), body]), path, quality)
