"""Pillow drawing for plain figures: matplotlib's colour maps as lookup tables, text in DejaVu Sans,
colour bars, labelled mosaics, and panels stacked with their titles.

Pictures without axes cost little more than writing their bytes this way; matplotlib is used only
to read its colour tables (once per map) and to find its font file.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from generator.pixels import tile_mosaic

FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
TITLE, LABEL, TICK, TILE = 16, 13, 11, 10  # font sizes in pixels
BAR = 12  # colour-bar thickness in pixels
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
# zlib's level for PNG files: 4 deflates the site's figures in 60% of the time the default 6 takes, the files
# 1.5% larger (benchmarks/bench_figures.py); the pixels are the same at every level.
PNG_LEVEL = 4


@lru_cache(maxsize=None)
def lut(name: str) -> np.ndarray:
    """A colour map as (256, 3) uint8 colours: exactly those matplotlib draws for that map."""
    table = matplotlib.colormaps[name](np.arange(256), bytes=True)[:, :3]
    table.setflags(write=False)
    return table


def colorize(values: np.ndarray, cmap: str, lo: float, hi: float) -> np.ndarray:
    """Values to colours as matplotlib maps them: lo..hi onto 256 bins, outside clipped, NaN as lo."""
    level = (np.asarray(values, dtype=np.float64) - lo) / (hi - lo)
    index = np.clip(np.nan_to_num(level * 256), 0, 255).astype(np.uint8)
    return lut(cmap)[index]


@lru_cache(maxsize=None)
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT), size)


@lru_cache(maxsize=4096)
def ink(words: str, size: int) -> Image.Image:
    """One line of text as a greyscale coverage mask, cropped to its ink plus a pixel of margin; kept, so a label
    drawn again (a site's figures draw the same tick labels and tags thousands of times) is not laid out again:
    read it, never draw on it."""
    face = font(size)
    left, top, right, bottom = face.getbbox(words)
    mask = Image.new("L", (max(right - left, 1) + 2, max(bottom - top, 1) + 2), 0)
    ImageDraw.Draw(mask).text((1 - left, 1 - top), words, fill=255, font=face)
    return mask


def text(words: str, size: int = LABEL, colour=BLACK) -> Image.Image:
    """One line of text on white."""
    mask = ink(words, size)
    image = Image.new("RGB", mask.size, WHITE)
    image.paste(colour, (0, 0, *mask.size), mask)
    return image


def stack(parts: Sequence[Image.Image], gap: int = 6, margin: int = 8) -> Image.Image:
    """Images one under the other, each centred, on white with a margin."""
    width = max(p.width for p in parts) + 2 * margin
    height = sum(p.height for p in parts) + gap * (len(parts) - 1) + 2 * margin
    out = Image.new("RGB", (width, height), WHITE)
    y = margin
    for p in parts:
        out.paste(p, ((width - p.width) // 2, y))
        y += p.height + gap
    return out


def beside(parts: Sequence[Image.Image], gap: int = 12) -> Image.Image:
    """Images side by side, centred vertically, on white."""
    width = sum(p.width for p in parts) + gap * (len(parts) - 1)
    height = max(p.height for p in parts)
    out = Image.new("RGB", (width, height), WHITE)
    x = 0
    for p in parts:
        out.paste(p, (x, (height - p.height) // 2))
        x += p.width + gap
    return out


def titled(body: Image.Image, title: str, size: int = TITLE) -> Image.Image:
    return stack([text(title, size), body], margin=0)


def colour_bar(cmap: str, lo: float, hi: float, length: int, label: str, *,
               vertical: bool = False) -> Image.Image:
    """A gradient strip from lo to hi (left to right, or bottom to top) with both ends labelled
    ``{:.3g}`` and the label beside it, as a matplotlib colour bar with only its end ticks."""
    ramp = colorize(np.linspace(lo, hi, length - 2), cmap, lo, hi)  # inside a 1 px black outline
    strip = np.zeros((BAR, length, 3), dtype=np.uint8)
    strip[1:-1, 1:-1] = ramp[None]
    strip = Image.fromarray(strip)
    if vertical:
        strip = strip.transpose(Image.ROTATE_90)  # high values at the top
    ends = [text(f"{v:.3g}", TICK) for v in (lo, hi)]
    name = text(label, LABEL)
    if vertical:
        ends.reverse()
        name = name.rotate(90, expand=True)
        ticks = max(e.width for e in ends)
        out = Image.new("RGB", (BAR + 4 + ticks + 6 + name.width, max(length, name.height)), WHITE)
        out.paste(strip, (0, 0))
        out.paste(ends[0], (BAR + 4, 0))
        out.paste(ends[1], (BAR + 4, length - ends[1].height))
        out.paste(name, (BAR + 4 + ticks + 6, (out.height - name.height) // 2))
        return out
    side = max(e.width for e in ends) // 2
    side = max(side, (name.width - length) // 2 + 1)  # room for the ticks' and the label's overhang
    out = Image.new("RGB", (length + 2 * side, BAR + 3 + ends[0].height + 4 + name.height), WHITE)
    out.paste(strip, (side, 0))
    out.paste(ends[0], (side - ends[0].width // 2, BAR + 3))
    out.paste(ends[1], (side + length - ends[1].width // 2, BAR + 3))
    out.paste(name, ((out.width - name.width) // 2, BAR + 3 + ends[0].height + 4))
    return out


def tile_side(width: int, cols: int) -> int:
    """Display width of one mosaic tile: near its own pixel size, 60..150 px, at most ~1200 px a row."""
    return int(np.clip(width, 60, min(150, 1200 // cols)))


def fit(tile: np.ndarray, side: int) -> np.ndarray:
    """Scale a uint8 (h, w[, 3]) tile to ``side`` px wide: sharp pixels when enlarging,
    area-averaged when shrinking."""
    h, w = tile.shape[:2]
    if w == side:
        return tile
    size = (side, max(1, round(h * side / w)))
    return np.asarray(Image.fromarray(tile).resize(size, Image.NEAREST if side > w else Image.BOX))


def mosaic(tiles: np.ndarray, labels: Sequence[str], cols: int) -> Image.Image:
    """(N, h, w, 3) uint8 tiles row by row with 1 px white lines between them, each labelled in its
    top-left corner in white on a dark box (an empty label: none)."""
    if len(tiles) == 0:
        raise ValueError("a mosaic needs at least one tile")
    n, h, w = tiles.shape[:3]
    padded = np.pad(tiles, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=255)
    out = Image.fromarray(tile_mosaic(padded, cols, 255)[:-1, :-1])
    for k, label in enumerate(labels):
        if str(label) == "":
            continue  # an empty place, or a tile without a label: no tag
        y, x = divmod(k, cols)
        tag = ink(str(label), TILE)
        left, top = x * (w + 1) + 2, y * (h + 1) + 2
        box = (left, top, left + tag.width + 2, top + tag.height + 2)
        region = out.crop(box)
        out.paste(Image.blend(region, Image.new("RGB", region.size, BLACK), 0.6), box)  # black at alpha 0.6
        out.paste(WHITE, (left + 1, top + 1, left + 1 + tag.width, top + 1 + tag.height), tag)
    return out


def overlay(base: np.ndarray, values: np.ndarray, cmap: str, lo: float, hi: float,
            alpha: float = 0.6) -> np.ndarray:
    """uint8 pixels under a translucent colour-mapped layer of ``values`` (NaN: no layer there)."""
    mixed = (1 - alpha) * base + alpha * colorize(values, cmap, lo, hi).astype(np.float64)
    mixed = np.where(np.isnan(values)[..., None], base, mixed)
    return (mixed + 0.5).astype(np.uint8)


def zoom(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge an (H, W[, C]) array by a whole factor, each pixel a sharp square."""
    return pixels.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else pixels


def enlarge(pixels: np.ndarray, at_least: int = 224) -> np.ndarray:
    """Zoom by the smallest whole factor that makes the longer side at least ``at_least`` px."""
    return zoom(pixels, max(1, math.ceil(at_least / max(pixels.shape[:2]))))


# The lossy formats by file suffix; anything else is saved as PNG.
LOSSY = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def save(image: Image.Image, path: Path, quality: int = 85) -> Path:
    """PNG (no metadata), or JPEG or WebP at ``quality`` (1 to 100) for a ``.jpg`` or ``.webp`` name; the folder
    is made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lossy = LOSSY.get(path.suffix.lower())
    if lossy:
        image.save(path, format=lossy, quality=quality)
    else:
        image.save(path, format="PNG", compress_level=PNG_LEVEL)
    return path
