"""The figures of a unit's dashboard: its activation histogram and its examples at every level.

Arrays in, one file out, deterministic bytes, as in :mod:`generator.figures` (whose ink the histogram shares).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from generator import canvas
from generator.figures import INK

INK_RGBA = tuple(int(INK[i:i + 2], 16) for i in (1, 3, 5)) + (255,)


MAX_COLOUR, MEAN_COLOUR = (0x39, 0x49, 0xAB, 255), (0xF5, 0x7C, 0x00, 255)
WIDTH, HEIGHT = 640, 260  # the histogram's picture; its plot box is what the labels leave
MARGIN = 0.02  # of the x axis' span, either side of the stairs


def activation_histogram(edges: np.ndarray, max_counts: np.ndarray, mean_counts: np.ndarray, path: Path, *,
                         title: str) -> Path:
    """The histograms of a unit's per-image maximum and mean over log-spaced bins (the positive ones; the
    images at 0 or below are counted in the legend), as stairs on a log axis.

    Drawn with Pillow (a few milliseconds; Matplotlib took 80 to 250 and there is one a browsed unit), on a
    transparent background in the charts' grey ink, as :mod:`generator.figures`' charts are."""
    positive = np.nonzero(edges[:-1] > 0)[0][1:]  # the log-spaced bins: from 1e-4 up (the first holds (0, 1e-4))
    low, high = edges[positive], np.minimum(edges[positive + 1], edges[positive[-1]] * 10)
    used = np.nonzero((max_counts[positive] + mean_counts[positive]) > 0)[0]
    span = slice(used[0], used[-1] + 1) if len(used) else slice(len(positive) // 2, len(positive) // 2 + 1)
    bins = np.append(low[span], high[span][-1])
    series = [(np.asarray(counts)[positive][span], colour,
               f"{name} ({int(np.asarray(counts)[:positive[0]].sum())} below 1e-4, not drawn)")
              for counts, colour, name in ((max_counts, MAX_COLOUR, "per-image maximum"),
                                           (mean_counts, MEAN_COLOUR, "per-image mean"))]
    top = max(1, max(int(c.max(initial=0)) for c, _, _ in series))
    image = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    y_ticks = [(t, str(t)) for t in linear_ticks(top)]
    x_ticks = [(t, f"{t:g}") for t in log_ticks(bins[0], bins[-1])]
    tick_width = max(canvas.font(canvas.TICK).getbbox(words)[2] for _, words in y_ticks)
    plot = (8 + canvas.LABEL + 8 + tick_width + 6, 12 + canvas.LABEL + 8 + canvas.TICK + 10,  # left, top
            WIDTH - 16, HEIGHT - (6 + canvas.TICK + 8 + canvas.LABEL + 10))  # right, bottom
    left, upper, right, lower = plot
    ymax = top * 1.05

    start, end = math.log10(bins[0]), math.log10(bins[-1])
    start, end = start - MARGIN * (end - start), end + MARGIN * (end - start)

    def x_at(value: float) -> float:
        return left + (math.log10(value) - start) / (end - start) * (right - left)

    def y_at(count: float) -> float:
        return lower - count / ymax * (lower - upper)

    for counts, colour, _ in series:  # stairs from the baseline, up and along each bin, back down
        points = [(x_at(bins[0]), lower)]
        for i, c in enumerate(counts):
            points += [(x_at(bins[i]), y_at(c)), (x_at(bins[i + 1]), y_at(c))]
        draw.line(points + [(x_at(bins[-1]), lower)], fill=colour, width=2)
    draw.rectangle(plot, outline=INK_RGBA)
    for value, words in x_ticks:
        x = round(x_at(value))
        draw.line([(x, lower), (x, lower + 4)], fill=INK_RGBA)
        _write(image, words, canvas.TICK, (x, lower + 6), "top")
    for value, words in y_ticks:
        y = round(y_at(value))
        draw.line([(left - 4, y), (left, y)], fill=INK_RGBA)
        _write(image, words, canvas.TICK, (left - 6, y), "right")
    _write(image, "activation", canvas.LABEL, ((left + right) // 2, HEIGHT - 4), "bottom")
    _write(image, "images", canvas.LABEL, (8, (upper + lower) // 2), "left", rotate=True)
    _write(image, title, canvas.LABEL, ((left + right) // 2, 4), "top")
    x = left
    for _, colour, words in series:  # the legend: a line of each colour and its words, under the title
        y = 12 + canvas.LABEL + 2 + canvas.TICK // 2
        draw.line([(x, y), (x + 20, y)], fill=colour, width=2)
        x = _write(image, words, canvas.TICK, (x + 26, y), "left") + 24
    return canvas.save(image, path)


def linear_ticks(top: int) -> list[int]:
    """Whole-number ticks from 0 to ``top`` in steps of 1, 2 or 5 times a power of ten, at most six."""
    step = 1
    while top // step > 5:
        step = next(s * 10 ** e for e in range(12) for s in (1, 2, 5) if s * 10 ** e > step)
    return list(range(0, top + 1, step))


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks for a log axis from ``low`` to ``high``: the powers of ten between them, with 2 and 5 times each
    where fewer than three powers fall inside."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for multiples in ((1,), (1, 2, 5)):
        ticks = [m * 10.0 ** d for d in decades for m in multiples if low <= m * 10.0 ** d <= high]
        if len(ticks) >= 3:
            break
    return ticks


def _write(image: Image.Image, words: str, size: int, at: tuple[float, float], anchor: str,
           rotate: bool = False) -> int:
    """``words`` in the charts' ink on ``image``: ``at`` is the middle of the side that ``anchor`` names (top,
    bottom, left, right); ``rotate``: reading upwards. Returns the right edge of the words."""
    mask = canvas.ink(words, size)
    if rotate:
        mask = mask.rotate(90, expand=True)
    x, y = at
    x = {"right": x - mask.width, "left": x}.get(anchor, x - mask.width / 2)
    y = {"top": y, "bottom": y - mask.height}.get(anchor, y - mask.height / 2)
    image.paste(INK_RGBA, (round(x), round(y), round(x) + mask.width, round(y) + mask.height), mask)
    return round(x) + mask.width


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
