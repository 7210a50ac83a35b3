"""Render numpy arrays to PNG files: Pillow for plain pictures, matplotlib (Agg) for charts.

No model code lives here. Every figure function takes arrays and a destination path, writes
one PNG and returns the path; the pictures of unit pages (exciters, overlays, strips, example
crops) are JPEG or WebP instead for a ``.jpg`` or ``.webp`` path, at their ``quality``.
Pictures without axes (maps, overlays, mosaics, strips) are drawn with Pillow and numpy
(:mod:`generator.canvas`), in matplotlib's colour maps; matplotlib draws only what needs axes
or text layout (bar charts, annotated kernel heatmaps, the circuit diagram). Output is
deterministic: the same inputs give byte-identical files (fixed dpi, no "Software" metadata,
no timestamps).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from generator import canvas  # noqa: E402
from generator.pixels import normalise_map, symmetric_limit, upsample, value_range  # noqa: E402

DPI = 100
# Charts read on Material's light and dark (slate) pages alike: a transparent background, and text,
# axes and ticks in a mid grey with about 4:1 contrast on white and on slate (#808080: 3.9 and 4.1).
INK = "#808080"
matplotlib.rcParams.update({
    "text.color": INK, "axes.labelcolor": INK, "axes.edgecolor": INK, "xtick.color": INK, "ytick.color": INK,
    "figure.facecolor": "none", "axes.facecolor": "none", "savefig.transparent": True,
    "text.parse_math": False,  # class names and labels are text: two dollar signs in one are not a formula
})
GRID_LABEL = "normalised activation (per map: mean 128, std 64)"
KERNEL_LABEL = "weight (red excitatory, blue inhibitory)"


# ---------------------------------------------------------------------------------------------
# Figure plumbing
# ---------------------------------------------------------------------------------------------


def new_figure(width: float, height: float, layout: str | None = "compressed") -> Figure:
    # A bare Figure (not pyplot) is never registered globally, so nothing leaks between calls.
    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


def save_figure(fig: Figure, path: Path) -> Path:
    """The one save step: fixed dpi, tight box, RGBA on a transparent background, no metadata; then free the
    figure."""
    buffer = io.BytesIO()  # stored, not deflated: read back at once, and deflated once by canvas.save
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None},
                bbox_inches="tight", pad_inches=0.1, pil_kwargs={"compress_level": 0})
    fig.clear()
    with Image.open(buffer) as rendered:
        return canvas.save(rendered.convert("RGBA"), path)


def _hbar(labels: Sequence[str], values: Sequence[float], path: Path, *, title: str,
          xlabel: str, xmax: float, fmt) -> Path:
    """Horizontal bars sorted largest first (at the top), each annotated with fmt(value)."""
    values = np.asarray(values, dtype=np.float64)
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values")
    order = np.argsort(-values, kind="stable")
    fig = new_figure(6.5, 0.4 * len(values) + 1.2)
    ax = fig.add_subplot()
    y = np.arange(len(values))
    ax.barh(y, values[order], color="tab:blue")
    ax.set_yticks(y, [str(labels[i]) for i in order])
    ax.invert_yaxis()
    ax.set_xlim(0, xmax)
    for yi, v in zip(y, values[order]):
        inside = v > 0.8 * xmax
        ax.text(v - 0.01 * xmax if inside else v + 0.01 * xmax, yi, fmt(v), va="center",
                ha="right" if inside else "left", color="white" if inside else INK,
                fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def feature_map_grid(maps: np.ndarray, path: Path, *, title: str, per_row: int = 16) -> Path:
    """All C channels of one layer's (H, W, C) activations, each normalised on its own (viridis)."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"feature_map_grid expects (H, W, C), got shape {maps.shape}")
    cols = min(per_row, maps.shape[-1])
    side = canvas.tile_side(maps.shape[1], cols)
    tiles = np.stack([canvas.fit(normalise_map(maps[..., c]), side) for c in range(maps.shape[-1])])
    body = canvas.mosaic(canvas.colorize(tiles, "viridis", 0, 255), range(len(tiles)), cols)
    bar = canvas.colour_bar("viridis", 0, 255, int(0.6 * body.width), GRID_LABEL)
    return canvas.save(canvas.stack([canvas.text(title, canvas.TITLE), body, bar]), path)


def exciter_grid(images: np.ndarray, channels: Sequence[int], path: Path, *, title: str,
                 per_row: int = 8) -> Path:
    """Mosaic of (N, S, S, 3) uint8 exciter images, each labelled with its channel number."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"exciter_grid expects uint8 (N, S, S, 3), got {images.dtype} "
                         f"{images.shape}")
    if len(channels) != len(images):
        raise ValueError(f"{len(channels)} channel labels for {len(images)} images")
    cols = min(per_row, len(images))
    side = canvas.tile_side(images.shape[2], cols)
    body = canvas.mosaic(np.stack([canvas.fit(image, side) for image in images]), channels, cols)
    return canvas.save(canvas.stack([canvas.text(title, canvas.TITLE), body]), path)


def save_rgb(image: np.ndarray, path: Path, *, quality: int = 85, at_least: int = 0) -> Path:
    """Save a uint8 (H, W, 3) image as a plain PNG (no axes, no metadata), or JPEG or WebP by the path;
    with ``at_least``, zoomed by a whole factor (sharp pixels) to at least that many px a side."""
    image = _check_rgb(image, "save_rgb")
    if at_least:
        image = canvas.enlarge(image, at_least)
    return canvas.save(Image.fromarray(np.ascontiguousarray(image)), path, quality)


def _check_rgb(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{name} expects uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return image


def transparent_exciter(image: np.ndarray, alpha: np.ndarray, path: Path, *, quality: int = 85) -> Path:
    """The exciter (S, S, 3) uint8 with ``alpha`` (S, S) uint8 as its opacity, on a neutral grey that reads on
    light and dark pages alike: where the unit looks, in MACO's sense."""
    image = _check_rgb(image, "transparent_exciter").astype(np.float32)
    opacity = np.asarray(alpha, np.float32)[..., None] / 255
    picture = np.round(image * opacity + TRANSPARENCY_GREY * (1 - opacity))
    return save_rgb(picture.astype(np.uint8), path, quality=quality)


TRANSPARENCY_GREY = 128.0


def activation_overlay(image: np.ndarray, activation: np.ndarray, path: Path, *,
                       title: str, quality: int = 85) -> Path:
    """The image with its activation map upsampled (bilinear) on top as a translucent heatmap
    (magma, alpha 0.6, scaled to the map's range), a colour bar beside it."""
    image = _check_rgb(image, "activation_overlay")
    vmin, vmax = value_range(upsample(activation, image.shape[:2]))
    base = canvas.enlarge(image)
    shown = canvas.overlay(base, upsample(activation, base.shape[:2]), "magma", vmin, vmax)
    bar = canvas.colour_bar("magma", vmin, vmax, base.shape[0], "activation", vertical=True)
    body = canvas.beside([Image.fromarray(shown), bar])
    return canvas.save(canvas.stack([canvas.text(title, canvas.TITLE), body]), path, quality)


def kernel_heatmaps(kernels: np.ndarray, labels: Sequence[str], path: Path, *,
                    title: str) -> Path:
    """n kernels (kh, kw, n) on one diverging scale centred on zero, 6 a row, values annotated."""
    kernels = np.asarray(kernels, dtype=np.float64)
    if kernels.ndim != 3 or kernels.shape[-1] == 0:
        raise ValueError(f"kernel_heatmaps expects (kh, kw, n) with n > 0, got {kernels.shape}")
    kh, kw, n = kernels.shape
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} kernels")
    limit = symmetric_limit(kernels)
    cols, rows = min(n, 6), math.ceil(n / 6)
    fig = new_figure(1.9 * cols + 0.4, 2.2 * rows + 1.2)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    for k, ax in enumerate(axes[:n]):
        kernel = kernels[..., k]
        image = ax.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(str(labels[k]), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if kh * kw <= 25:
            _annotate_cells(ax, kernel, limit)
    fig.colorbar(image, ax=list(axes), location="bottom", shrink=0.6, aspect=40,
                 label=KERNEL_LABEL)
    fig.suptitle(title, fontsize="x-large")
    return save_figure(fig, path)


def _annotate_cells(ax, values: np.ndarray, limit: float) -> None:
    """Write each cell's value on it, white on dark (strong) cells, black on pale ones."""
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=7,
                color="white" if abs(v) > 0.6 * limit else "black")


def top_predictions_bar(names: Sequence[str], probabilities: Sequence[float], path: Path, *,
                        title: str) -> Path:
    """Top-k class probabilities as horizontal bars, highest at the top, in percent."""
    return _hbar(names, probabilities, path, title=title, xlabel="probability", xmax=1.0,
                 fmt=lambda v: f"{v:.1%}")


def output_map(image: np.ndarray, output: np.ndarray, path: Path, *, title: str) -> Path:
    """Input image beside the model's output map in [0, 1], drawn dark-on-white (gray_r)."""
    output = np.asarray(output, dtype=np.float64)
    if output.ndim == 3 and output.shape[-1] == 1:
        output = output[..., 0]
    if output.ndim != 2:
        raise ValueError(f"output_map expects an (H, W) or (H, W, 1) output, got {output.shape}")
    left = Image.fromarray(canvas.enlarge(_check_rgb(image, "output_map")))
    right = Image.fromarray(canvas.colorize(output, "gray_r", 0, 1)).resize(left.size, Image.NEAREST)
    bar = canvas.colour_bar("gray_r", 0, 1, right.height, "output value (dark = high)", vertical=True)
    body = canvas.beside([canvas.titled(left, "input image", canvas.LABEL),
                          canvas.titled(right, "model output", canvas.LABEL), bar])
    return canvas.save(canvas.stack([canvas.text(title, canvas.TITLE), body]), path)


def norm_bar(labels: Sequence[str], norms: Sequence[float], path: Path, *, title: str,
             xlabel: str = "Frobenius norm of incoming kernel") -> Path:
    """Values ranked as horizontal bars, largest at the top."""
    values = np.asarray(norms, dtype=np.float64)
    top = float(values[np.isfinite(values)].max(initial=0.0))
    return _hbar(labels, values, path, title=title, xlabel=xlabel,
                 xmax=top * 1.2 if top > 0 else 1.0, fmt=lambda v: f"{v:.3g}")


STRIP_TILE = 96  # the side of an image in an activation strip


def strip_tiles(images: np.ndarray, tile: int = STRIP_TILE) -> np.ndarray:
    """The images (N, H, W, 3) uint8 as :func:`activation_strip` shows them, resized to ``tile`` (bilinear): a strip
    of these is the strip of the images (a tile-sized image is not resized again), from a fifth of the bytes
    (a site's strips once sent 290 MB of photos to the figure workers)."""
    resized = [np.asarray(Image.fromarray(image).resize((tile, tile), Image.BILINEAR)) for image in images]
    return np.array(resized, np.uint8).reshape(len(resized), tile, tile, 3)


def activation_strip(images: np.ndarray, maps: np.ndarray, labels: Sequence[str], path: Path, *,
                     tile: int = STRIP_TILE, quality: int = 85) -> Path:
    """One unit's activation maps on every image, side by side, on ONE shared colour scale.

    Drawn with Pillow alone (no matplotlib), so a site with thousands of units stays fast:
    each tile is the image (any size; :func:`strip_tiles` for many strips of the same images), dimmed, under the
    map (magma, alpha 0.6, 0 = transparent black to the strip's maximum), with its label and the map's own maximum
    underneath.
    """
    images, maps = np.asarray(images), np.asarray(maps, dtype=np.float32)
    if len(images) != len(maps) or len(maps) != len(labels):
        raise ValueError(f"activation_strip: {len(images)} images, {len(maps)} maps, {len(labels)} labels")
    top = float(np.nanmax(maps)) if maps.size else 0.0
    scale = top if np.isfinite(top) and top > 0 else 1.0
    colours = canvas.lut("magma") / 255
    strip = Image.new("RGB", (tile * len(maps), tile + 28), "white")
    draw = ImageDraw.Draw(strip)
    for i, (image, m, label) in enumerate(zip(strip_tiles(images, tile), maps, labels)):
        base = image.astype(np.float32) / 255
        level = np.clip(np.nan_to_num(upsample(m, (tile, tile))) / scale, 0, 1)
        heat = colours[(level * 255).astype(np.uint8)]
        alpha = 0.6 * level[..., None] + 0.2
        mixed = (1 - alpha) * base * 0.7 + alpha * heat
        strip.paste(Image.fromarray((mixed * 255).astype(np.uint8)), (i * tile, 0))
        draw.text((i * tile + 3, tile + 2), str(label)[:16], fill="black")
        draw.text((i * tile + 3, tile + 14), f"max {float(np.nanmax(m)) if m.size else 0:.3g}", fill="dimgray")
    return canvas.save(strip, path, quality)  # as JPEG for a .jpg path: photos compress 4x better


EXAMPLES_PER_ROW = 5


def example_crops(crops: np.ndarray, maps: np.ndarray, scores: Sequence[float], path: Path, *,
                  title: str, labels: Sequence[str] | None = None, label: str = "activation",
                  quality: int = 85) -> Path:
    """A unit's dataset examples: (N, S, S, 3) uint8 crops, each with its activation on top.

    ``maps`` (N, s, s) is the activation over each crop's own region, upsampled (bilinear) to
    S and drawn translucent (magma, as activation_overlay) on one colour scale shared by all
    crops, so brighter means stronger across the row. Crops under 96 px are zoomed by a whole
    factor (pixels stay sharp). Tiles wrap at ``EXAMPLES_PER_ROW``; each is labelled "<label> <score>"
    (label defaults to the rank, #1 for the best).
    """
    crops, maps = np.asarray(crops), np.asarray(maps, dtype=np.float32)
    if (crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[-1] != 3
            or crops.shape[1] != crops.shape[2]):
        raise ValueError(f"example_crops expects uint8 (N, S, S, 3) crops, got {crops.dtype} "
                         f"{crops.shape}")
    if maps.ndim != 3 or len(maps) != len(crops):
        raise ValueError(f"example_crops expects (N, s, s) maps for {len(crops)} crops, "
                         f"got {maps.shape}")
    if len(scores) != len(crops):
        raise ValueError(f"{len(scores)} scores for {len(crops)} crops")
    labels = [f"#{k + 1}" for k in range(len(crops))] if labels is None else list(labels)
    if len(labels) != len(crops):
        raise ValueError(f"{len(labels)} labels for {len(crops)} crops")
    zoom = max(1, math.ceil(96 / max(crops.shape[1], 1)))  # whole-pixel zoom to ~1 inch
    crops = crops.repeat(zoom, axis=1).repeat(zoom, axis=2)
    side = crops.shape[1]
    heat = np.stack([upsample(m, (side, side)) for m in maps])
    vmin, vmax = value_range(heat)
    cols = min(EXAMPLES_PER_ROW, len(crops))
    shown = canvas.overlay(crops, heat, "magma", vmin, vmax)
    tiles = np.stack([canvas.fit(t, canvas.tile_side(side, cols)) for t in shown])
    body = canvas.mosaic(tiles, [f"{label} {float(score):.3g}" for label, score in zip(labels, scores)], cols)
    bar = canvas.colour_bar("magma", vmin, vmax, int(0.6 * body.width), label)
    return canvas.save(canvas.stack([canvas.text(title, canvas.TITLE), body, bar]), path, quality)


def attribution_overlays(image: np.ndarray, maps: np.ndarray, labels: Sequence[str],
                         limits: Sequence[tuple[float, float]], path: Path, *, title: str) -> Path:
    """One image with M attribution maps (M, H, W) overlaid side by side, in two rows: each map on the
    colour scale ``limits[m]`` that its method shares with every image (to compare images), then on its
    own scale (0 to its own maximum, or symmetric about 0 to its own largest magnitude where the shared
    scale is signed: where the evidence is on this image, however weak). Magma from 0 for non-negative
    scales, RdBu_r centred on zero for signed ones (lower limit below 0); a colour bar under each map."""
    image, maps = _check_rgb(image, "attribution_overlays"), np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or not len(maps) or len(labels) != len(maps) or len(limits) != len(maps):
        raise ValueError(f"attribution_overlays: {maps.shape} maps, {len(labels)} labels, {len(limits)} limits")
    base = canvas.enlarge(image)
    own = [_own_limits(m, lo < 0) for m, (lo, _) in zip(maps, limits)]
    rows = [canvas.stack([canvas.text(heading), canvas.beside([_overlay_panel(base, m, label, scale)
                                                                for m, label, scale in zip(maps, labels, scales)])],
                         margin=0)
            for heading, scales in (("On the scale each method shares with every image", limits),
                                    ("Each map on its own scale", own))]
    return canvas.save(canvas.stack([canvas.text(title, canvas.TITLE), *rows]), path)


def _own_limits(m: np.ndarray, signed: bool) -> tuple[float, float]:
    """0 to the map's maximum (1 where it has none above 0), or +-its largest magnitude when ``signed``."""
    finite = m[np.isfinite(m)]
    if signed:
        top = float(np.abs(finite).max()) if finite.size else 0.0
        return (-top, top) if top > 0 else (-1.0, 1.0)
    top = float(finite.max()) if finite.size else 0.0
    return (0.0, top) if top > 0 else (0.0, 1.0)


def _overlay_panel(base: np.ndarray, m: np.ndarray, label: str, scale: tuple[float, float]) -> Image.Image:
    lo, hi = scale
    cmap = "RdBu_r" if lo < 0 else "magma"
    shown = canvas.overlay(base, upsample(np.nan_to_num(m), base.shape[:2]), cmap, lo, hi)
    bar = canvas.colour_bar(cmap, lo, hi, int(0.9 * base.shape[1]), "red raises, blue lowers" if lo < 0 else "attribution")
    return canvas.stack([canvas.text(label), Image.fromarray(shown), bar], margin=0)


def faithfulness_curves(labels: Sequence[str], deletion: np.ndarray, insertion: np.ndarray, path: Path, *,
                        title: str) -> Path:
    """Deletion and insertion curves side by side, one line a ranking (``labels[m]``; rows (K + 1,) of
    ``deletion`` and ``insertion``, over the fraction of pixels from 0 to 1); the last ranking is the
    random floor, drawn dashed grey. A faithful map's deletion curve falls fast, its insertion curve rises
    fast."""
    deletion, insertion = np.asarray(deletion, np.float64), np.asarray(insertion, np.float64)
    if deletion.shape != insertion.shape or deletion.ndim != 2 or len(labels) != len(deletion):
        raise ValueError(f"faithfulness_curves: {deletion.shape} and {insertion.shape} curves, {len(labels)} labels")
    fraction = np.linspace(0, 1, deletion.shape[1])
    fig = new_figure(6.5, 2.6)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, curves, name in ((axes[0], deletion, "Deletion (lower area: faithful)"),
                             (axes[1], insertion, "Insertion (higher area: faithful)")):
        for k, (label, curve) in enumerate(zip(labels, curves)):
            floor = k == len(labels) - 1
            ax.plot(fraction, curve, label=label, color="0.55" if floor else f"C{k}", linestyle="--" if floor else "-",
                    linewidth=1.2 if floor else 1.6)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("fraction of pixels " + ("removed" if curves is deletion else "put back"), fontsize=8)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("score / score on the photo", fontsize=8)
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


GROUP_COLOURS = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                          [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]], np.float32)


def group_colours(k: int) -> np.ndarray:
    """The colours (k, 3) of groups (or concepts) 0..k-1: one palette, so a group keeps its colour everywhere."""
    return GROUP_COLOURS[np.arange(k) % len(GROUP_COLOURS)]


def coloured_maps(image: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (H, W, 3) image's grey, and maps (k, h, w) upsampled to it, each scaled to its own maximum;
    returns (grey, heat, every map in its colour on the grey) as float arrays."""
    image = np.asarray(image, np.float32)
    heat = np.stack([upsample(m, image.shape[:2]) for m in maps])
    heat = heat / np.maximum(heat.max(axis=(1, 2), keepdims=True), 1e-12)
    grey = image.mean(axis=2, keepdims=True)
    return grey, heat, 0.35 * grey + 0.65 * np.clip(np.einsum("khw,kc->hwc", heat, group_colours(len(maps))), 0, 255)


def activation_groups(image: np.ndarray, maps: np.ndarray, path: Path, *, title: str, name: str = "group") -> Path:
    """The image with every group's map in its own colour, then each group alone (maps (k, h, w), each
    scaled to its own maximum), each panel under its name in the group's colour; ``name``: what a group is
    called in the panel titles. Drawn with Pillow (Matplotlib took 350 ms a figure)."""
    k = len(maps)
    colours = group_colours(k)
    grey, heat, every = coloured_maps(image, maps)
    tiles = [every]
    tiles += [0.4 * grey + heat[g][..., None] * colours[g] * 0.6 + (1 - heat[g][..., None]) * 0.6 * grey
              for g in range(k)]
    names = [(f"all {name}s", canvas.BLACK)] + [(f"{name} {g + 1}", tuple(int(c) for c in colours[g])) for g in range(k)]
    side = min(150, 1200 // (k + 1))  # a row of panels about a page wide; a small image zoomed by a whole factor
    zoom = max(1, side // np.shape(image)[1])
    panels = [canvas.stack([canvas.text(words, canvas.LABEL, colour),
                            Image.fromarray(canvas.fit(canvas.zoom(np.clip(tile, 0, 255).astype(np.uint8), zoom),
                                                       min(side, zoom * np.shape(image)[1])))], margin=0)
              for tile, (words, colour) in zip(tiles, names)]
    return canvas.save(canvas.stack([canvas.text(title, canvas.TITLE), canvas.beside(panels)]), path)
