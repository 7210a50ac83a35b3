"""The figures of a unit's dashboard: its activation histogram and its examples at every level.

Arrays in, one file out, deterministic bytes, as in :mod:`generator.figures` (whose ink the histogram shares).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from generator import canvas
from generator.figures import INK

INK_RGBA = tuple(int(INK[i:i + 2], 16) for i in (1, 3, 5)) + (255,)
MAX_COLOUR, MEAN_COLOUR = (0x39, 0x49, 0xAB, 255), (0xF5, 0x7C, 0x00, 255)
WIDTH, HEIGHT = 640, 275  # the histogram's picture; its plot box is what the labels leave
MARGIN = 0.02  # of the x axis' span, either side of the stairs
LEGEND_Y = 12 + canvas.LABEL + 2 + canvas.TICK // 2  # the legend's first line, under the title
LEGEND_ROW = canvas.TICK + 4  # a line a series: side by side, large counts ran past the picture's edge


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
    axes = _Axes.fit(bins, max(1, max(int(c.max(initial=0)) for c, _, _ in series)))
    image = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for counts, colour, _ in series:  # stairs from the baseline, up and along each bin, back down
        points = [(axes.x(bins[0]), axes.bottom)]
        for i, c in enumerate(counts):
            points += [(axes.x(bins[i]), axes.y(c)), (axes.x(bins[i + 1]), axes.y(c))]
        draw.line(points + [(axes.x(bins[-1]), axes.bottom)], fill=colour, width=2)
    axes.draw(image, "activation", "images")
    _write(image, title, canvas.LABEL, ((axes.left + axes.right) // 2, 4), "top")
    for row, (_, colour, words) in enumerate(series):  # the legend: a line of each colour and its words
        y = LEGEND_Y + row * LEGEND_ROW
        draw.line([(axes.left, y), (axes.left + 20, y)], fill=colour, width=2)
        _write(image, words, canvas.TICK, (axes.left + 26, y), "left")
    return canvas.save(image, path)


@dataclass(frozen=True)
class _Axes:
    """A plot box on a WIDTH x HEIGHT picture: x on a log scale (``start`` to ``end``, in log10), y from 0 to
    ``ymax``, with their ticks."""

    left: int
    top: int
    right: int
    bottom: int
    start: float
    end: float
    ymax: float
    x_ticks: tuple[float, ...]
    y_ticks: tuple[int, ...]

    @staticmethod
    def fit(bins: np.ndarray, top: int) -> _Axes:
        """Axes for stairs over ``bins`` up to ``top`` images, leaving room for the title, the legend's lines and
        the labels."""
        y_ticks = tuple(linear_ticks(top))
        tick_width = max(canvas.font(canvas.TICK).getbbox(str(t))[2] for t in y_ticks)
        start, end = math.log10(bins[0]), math.log10(bins[-1])
        return _Axes(8 + canvas.LABEL + 8 + tick_width + 6, LEGEND_Y + LEGEND_ROW + canvas.TICK // 2 + 10, WIDTH - 16,
                     HEIGHT - (6 + canvas.TICK + 8 + canvas.LABEL + 10),
                     start - MARGIN * (end - start), end + MARGIN * (end - start), top * 1.05,
                     tuple(log_ticks(bins[0], bins[-1])), y_ticks)

    def x(self, value: float) -> float:
        return self.left + (math.log10(value) - self.start) / (self.end - self.start) * (self.right - self.left)

    def y(self, count: float) -> float:
        return self.bottom - count / self.ymax * (self.bottom - self.top)

    def draw(self, image: Image.Image, x_label: str, y_label: str) -> None:
        """The box, the ticks with their numbers, and the axes' labels, in the charts' ink."""
        draw = ImageDraw.Draw(image)
        draw.rectangle((self.left, self.top, self.right, self.bottom), outline=INK_RGBA)
        for value in self.x_ticks:
            x = round(self.x(value))
            draw.line([(x, self.bottom), (x, self.bottom + 4)], fill=INK_RGBA)
            _write(image, f"{value:g}", canvas.TICK, (x, self.bottom + 6), "top")
        for value in self.y_ticks:
            y = round(self.y(value))
            draw.line([(self.left - 4, y), (self.left, y)], fill=INK_RGBA)
            _write(image, str(value), canvas.TICK, (self.left - 6, y), "right")
        _write(image, x_label, canvas.LABEL, ((self.left + self.right) // 2, HEIGHT - 4), "bottom")
        _write(image, y_label, canvas.LABEL, (8, (self.top + self.bottom) // 2), "left", rotate=True)


def linear_ticks(top: int) -> list[int]:
    """Whole-number ticks from 0 to ``top`` in steps of 1, 2 or 5 times a power of ten, at most six."""
    step = 1
    while top // step > 5:
        step = next(s * 10 ** e for e in range(12) for s in (1, 2, 5) if s * 10 ** e > step)
    return list(range(0, top + 1, step))


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks for a log axis from ``low`` to ``high``: the powers of ten between them, with 2 and 5 times each
    where fewer than three powers fall inside; where even those give fewer than two (a narrow axis), the ends
    to 3 significant digits, rounded inwards."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for multiples in ((1,), (1, 2, 5)):
        ticks = [m * 10.0 ** d for d in decades for m in multiples if low <= m * 10.0 ** d <= high]
        if len(ticks) >= 3:
            break
    return ticks if len(ticks) >= 2 else [_three_digits(low, up=True), _three_digits(high, up=False)]


def _three_digits(value: float, up: bool) -> float:
    """``value`` to 3 significant digits, rounded up (``up``) or down."""
    rounded = float(f"{value:.3g}")
    if rounded < value if up else rounded > value:
        unit = 10.0 ** (math.floor(math.log10(value)) - 2)
        rounded = float(f"{rounded + unit if up else rounded - unit:.3g}")
    return rounded


def _write(image: Image.Image, words: str, size: int, at: tuple[float, float], anchor: str,
           rotate: bool = False) -> None:
    """``words`` in the charts' ink on ``image``: ``at`` is the middle of the side that ``anchor`` names (top,
    bottom, left, right); ``rotate``: reading upwards."""
    mask = canvas.ink(words, size)
    if rotate:
        mask = mask.rotate(90, expand=True)
    x, y = at
    x = {"right": x - mask.width, "left": x}.get(anchor, x - mask.width / 2)
    y = {"top": y, "bottom": y - mask.height}.get(anchor, y - mask.height / 2)
    image.paste(INK_RGBA, (round(x), round(y), round(x) + mask.width, round(y) + mask.height), mask)


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
