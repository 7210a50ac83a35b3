"""Render numpy arrays to PNG files: matplotlib (Agg) for figures, Pillow for plain images.

No model code lives here. Every figure function takes arrays and a destination path, writes
one PNG and returns the path. Output is deterministic: the same inputs give byte-identical
files (fixed dpi, no "Software" metadata, no timestamps).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

DPI = 100
GRID_LABEL = "normalised activation (per map: mean 128, std 64)"
KERNEL_LABEL = "weight (red excitatory, blue inhibitory)"


# ---------------------------------------------------------------------------------------------
# Array helpers (pure numpy, no drawing)
# ---------------------------------------------------------------------------------------------


def normalise_map(m: np.ndarray) -> np.ndarray:
    """Display-normalise one map: (m - mean) / std * 64 + 128, clipped to 0..255, uint8.

    A constant map, an empty one or one with non-finite values renders flat 128, without
    warnings. Constancy is tested exactly (max == min): a constant 0.1 map has a float
    rounding std of ~1e-17, which would otherwise be blown up to a flat 64 or 192.
    """
    m = np.asarray(m, dtype=np.float64)
    flat = np.full(m.shape, 128, dtype=np.uint8)
    if m.size == 0 or not np.isfinite(m).all() or m.max() == m.min():
        return flat
    with np.errstate(all="ignore"):  # std may overflow (huge values) or underflow (subnormal)
        scaled = (m - m.mean()) / m.std() * 64 + 128
    if not np.isfinite(scaled).all():
        return flat
    return np.clip(scaled, 0, 255).astype(np.uint8)


def deprocess(x: np.ndarray) -> np.ndarray:
    """Exciter deprocessing: centre, scale to std 0.1, shift to 0.5, clip to [0, 1], x255, uint8.

    Takes one image (H, W, 3) or a batch (N, H, W, 3); each image is normalised on its own.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (3, 4):
        raise ValueError(f"deprocess expects (H, W, 3) or (N, H, W, 3), got shape {x.shape}")
    axes = (-3, -2, -1)
    x = x - x.mean(axis=axes, keepdims=True)
    x = x / (x.std(axis=axes, keepdims=True) + 1e-5) * 0.1 + 0.5
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def symmetric_limit(kernels: np.ndarray) -> float:
    """Half-width of a zero-centred colour scale: max |w| over finite weights, 1.0 if all zero."""
    w = np.abs(np.asarray(kernels, dtype=np.float64))
    w = w[np.isfinite(w)]
    limit = float(w.max()) if w.size else 0.0
    return limit if limit > 0 else 1.0


def tile_mosaic(tiles: np.ndarray, per_row: int, fill) -> np.ndarray:
    """Lay out tiles (N, h, w[, c]) row by row, per_row a row; empty slots get ``fill``."""
    n, h, w = tiles.shape[:3]
    rest = tiles.shape[3:]
    rows = math.ceil(n / per_row)
    canvas = np.full((rows * per_row, h, w, *rest), fill, dtype=tiles.dtype)
    canvas[:n] = tiles
    canvas = canvas.reshape(rows, per_row, h, w, *rest).swapaxes(1, 2)
    return canvas.reshape(rows * h, per_row * w, *rest)


def upsample(activation: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D float map to size (H, W)."""
    a = np.asarray(activation, dtype=np.float32)
    h, w = size
    return np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR))


def _value_range(a: np.ndarray) -> tuple[float, float]:
    """Colour limits over the finite values; a flat or empty map gets (v, v + 1)."""
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


# ---------------------------------------------------------------------------------------------
# Figure plumbing
# ---------------------------------------------------------------------------------------------


def _figure(width: float, height: float, layout: str | None = "compressed") -> Figure:
    # A bare Figure (not pyplot) is never registered globally, so nothing leaks between calls.
    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


def _save(fig: Figure, path: Path) -> Path:
    """The one save step: fixed dpi, tight box, opaque RGB, no metadata; then free the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None},
                bbox_inches="tight", pad_inches=0.1)
    fig.clear()
    with Image.open(buffer) as rendered:
        return _write_png(rendered.convert("RGB"), path)


def _write_png(image: Image.Image, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def _grid_axes(tiles: np.ndarray, per_row: int, colorbar: bool):
    """Exact placement for a mosaic: tiles near their own pixel size, at most ~12 inches wide.

    Returns (fig, ax, cax, cols); cax is a thin horizontal colour-bar axes under the mosaic,
    or None. Fixed positions (not a layout engine) keep the bar right under tall mosaics.
    """
    n, h, w = tiles.shape[:3]
    if n == 0:
        raise ValueError("a mosaic needs at least one tile")
    cols = min(per_row, n)
    rows = math.ceil(n / cols)
    tile_in = float(np.clip(w / DPI, 0.6, min(1.5, 12 / cols)))
    below = 0.9 if colorbar else 0.05  # inches under the mosaic
    height = rows * tile_in * h / w + below
    fig = _figure(cols * tile_in, height, layout=None)
    ax = fig.add_axes((0, below / height, 1, 1 - below / height))
    cax = fig.add_axes((0.2, 0.5 / height, 0.6, 0.15 / height)) if colorbar else None
    return fig, ax, cax, cols


def _draw_mosaic(ax, tiles: np.ndarray, labels: Sequence[str], cols: int, fill, **imshow_kw):
    """One imshow for all tiles, white lines between them, each tile's label in its corner."""
    h, w = tiles.shape[1:3]
    image = ax.imshow(tile_mosaic(tiles, cols, fill), **imshow_kw)
    rows = math.ceil(len(tiles) / cols)
    ax.vlines(np.arange(1, cols) * w - 0.5, -0.5, rows * h - 0.5, colors="white", linewidth=1)
    ax.hlines(np.arange(1, rows) * h - 0.5, -0.5, cols * w - 0.5, colors="white", linewidth=1)
    box = {"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0}
    for k, label in enumerate(labels):
        y, x = divmod(k, cols)
        ax.text(x * w + 0.04 * w, y * h + 0.04 * h, label, fontsize=6, color="white",
                ha="left", va="top", bbox=box)
    ax.set_axis_off()
    return image


def _hbar(labels: Sequence[str], values: Sequence[float], path: Path, *, title: str,
          xlabel: str, xmax: float, fmt) -> Path:
    """Horizontal bars sorted largest first (at the top), each annotated with fmt(value)."""
    values = np.asarray(values, dtype=np.float64)
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values")
    order = np.argsort(-values, kind="stable")
    fig = _figure(6.5, 0.4 * len(values) + 1.2)
    ax = fig.add_subplot()
    y = np.arange(len(values))
    ax.barh(y, values[order], color="tab:blue")
    ax.set_yticks(y, [str(labels[i]) for i in order])
    ax.invert_yaxis()
    ax.set_xlim(0, xmax)
    for yi, v in zip(y, values[order]):
        inside = v > 0.8 * xmax
        ax.text(v - 0.01 * xmax if inside else v + 0.01 * xmax, yi, fmt(v), va="center",
                ha="right" if inside else "left", color="white" if inside else "black",
                fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def feature_map_grid(maps: np.ndarray, path: Path, *, title: str, per_row: int = 16) -> Path:
    """All C channels of one layer's (H, W, C) activations, each normalised on its own."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"feature_map_grid expects (H, W, C), got shape {maps.shape}")
    tiles = np.stack([normalise_map(maps[..., c]) for c in range(maps.shape[-1])])
    fig, ax, cax, cols = _grid_axes(tiles, per_row, colorbar=True)
    image = _draw_mosaic(ax, tiles.astype(np.float32), [str(c) for c in range(len(tiles))],
                         cols, np.nan, cmap="viridis", vmin=0, vmax=255)
    fig.colorbar(image, cax=cax, orientation="horizontal", label=GRID_LABEL)
    ax.set_title(title)
    return _save(fig, path)


def exciter_grid(images: np.ndarray, channels: Sequence[int], path: Path, *, title: str,
                 per_row: int = 8) -> Path:
    """Mosaic of (N, S, S, 3) uint8 exciter images, each labelled with its channel number."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"exciter_grid expects uint8 (N, S, S, 3), got {images.dtype} "
                         f"{images.shape}")
    if len(channels) != len(images):
        raise ValueError(f"{len(channels)} channel labels for {len(images)} images")
    fig, ax, _, cols = _grid_axes(images, per_row, colorbar=False)
    _draw_mosaic(ax, images, [str(c) for c in channels], cols, 255)
    ax.set_title(title)
    return _save(fig, path)


def save_rgb(image: np.ndarray, path: Path) -> Path:
    """Save a uint8 (H, W, 3) image as a plain PNG (no axes, no metadata)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"save_rgb expects uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return _write_png(Image.fromarray(np.ascontiguousarray(image)), path)


def activation_overlay(image: np.ndarray, activation: np.ndarray, path: Path, *,
                       title: str) -> Path:
    """The image with its activation map upsampled (bilinear) on top as a translucent heatmap."""
    image = np.asarray(image)
    heat = upsample(activation, image.shape[:2])
    vmin, vmax = _value_range(heat)
    fig = _figure(5.5, 4.5)
    ax = fig.add_subplot()
    ax.imshow(image)
    overlay = ax.imshow(heat, cmap="magma", alpha=0.6, vmin=vmin, vmax=vmax)
    fig.colorbar(overlay, ax=ax, label="activation")
    ax.set_axis_off()
    ax.set_title(title)
    return _save(fig, path)


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
    fig = _figure(1.9 * cols + 0.4, 2.2 * rows + 1.2)
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
    return _save(fig, path)


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
    fig = _figure(9, 4.2)
    left, right = fig.subplots(1, 2)
    left.imshow(np.asarray(image))
    left.set_title("input image")
    shown = right.imshow(output, cmap="gray_r", vmin=0, vmax=1)
    right.set_title("model output")
    for ax in (left, right):
        ax.set_axis_off()
    fig.colorbar(shown, ax=right, label="output value (dark = high)")
    fig.suptitle(title, fontsize="x-large")
    return _save(fig, path)


def norm_bar(labels: Sequence[str], norms: Sequence[float], path: Path, *, title: str,
             xlabel: str = "Frobenius norm of incoming kernel") -> Path:
    """Values ranked as horizontal bars, largest at the top."""
    values = np.asarray(norms, dtype=np.float64)
    top = float(values[np.isfinite(values)].max(initial=0.0))
    return _hbar(labels, values, path, title=title, xlabel=xlabel,
                 xmax=top * 1.2 if top > 0 else 1.0, fmt=lambda v: f"{v:.3g}")


def activation_strip(images: np.ndarray, maps: np.ndarray, labels: Sequence[str], path: Path, *,
                     tile: int = 96) -> Path:
    """One unit's activation maps on every image, side by side, on ONE shared colour scale.

    Drawn with Pillow alone (no matplotlib), so a site with thousands of units stays fast:
    each tile is the image, dimmed, under the map (magma, alpha 0.6, 0 = transparent black
    to the strip's maximum), with its label and the map's own maximum underneath.
    """
    images, maps = np.asarray(images), np.asarray(maps, dtype=np.float32)
    if len(images) != len(maps) or len(maps) != len(labels):
        raise ValueError(f"activation_strip: {len(images)} images, {len(maps)} maps, {len(labels)} labels")
    from matplotlib import colormaps
    from PIL import ImageDraw

    top = float(np.nanmax(maps)) if maps.size else 0.0
    scale = top if np.isfinite(top) and top > 0 else 1.0
    colours = colormaps["magma"](np.linspace(0, 1, 256))[:, :3]
    strip = Image.new("RGB", (tile * len(maps), tile + 28), "white")
    draw = ImageDraw.Draw(strip)
    for i, (image, m, label) in enumerate(zip(images, maps, labels)):
        base = np.asarray(Image.fromarray(image).resize((tile, tile), Image.BILINEAR), dtype=np.float32) / 255
        level = np.clip(np.nan_to_num(upsample(m, (tile, tile))) / scale, 0, 1)
        heat = colours[(level * 255).astype(np.uint8)]
        alpha = 0.6 * level[..., None] + 0.2
        mixed = (1 - alpha) * base * 0.7 + alpha * heat
        strip.paste(Image.fromarray((mixed * 255).astype(np.uint8)), (i * tile, 0))
        draw.text((i * tile + 3, tile + 2), str(label)[:16], fill="black")
        draw.text((i * tile + 3, tile + 14), f"max {float(np.nanmax(m)) if m.size else 0:.3g}", fill="dimgray")
    if Path(path).suffix.lower() in (".jpg", ".jpeg"):  # photos compress 4x better as JPEG
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        strip.save(path, format="JPEG", quality=85)
        return Path(path)
    return _write_png(strip, path)


# ---------------------------------------------------------------------------------------------
# Circuit diagram
# ---------------------------------------------------------------------------------------------

EXCITATORY = "#d62728"  # net weight > 0
INHIBITORY = "#1f77b4"  # net weight < 0
NEUTRAL = "#8c8c8c"  # net weight == 0
_THUMB_IN = 0.8  # thumbnail side, inches


def _node_key(layer, channel) -> tuple[str, int]:
    return str(layer), int(channel)


def _check_circuit(columns, edges, thumbnails):
    """Validate the inputs; return {node: column index}, the edges and the thumbnails, keyed
    by normalised (layer, channel) nodes."""
    if not columns:
        raise ValueError("circuit_diagram needs at least one column")
    where: dict[tuple[str, int], int] = {}
    layers = set()
    for c, (layer, channels) in enumerate(columns):
        if str(layer) in layers:
            raise ValueError(f"layer {layer!r} appears in two columns")
        layers.add(str(layer))
        if len(channels) == 0:
            raise ValueError(f"column {layer!r} has no channels")
        for channel in channels:
            key = _node_key(layer, channel)
            if key in where:
                raise ValueError(f"node {key[0]}:{key[1]} is listed twice")
            where[key] = c
    checked = []
    for source, target, norm, net in edges:
        source, target = _node_key(*source), _node_key(*target)
        name = f"edge {source[0]}:{source[1]} -> {target[0]}:{target[1]}"
        for node in (source, target):
            if node not in where:
                raise ValueError(f"{name} names node {node[0]}:{node[1]}, which is not in "
                                 "columns")
        if where[source] >= where[target]:
            raise ValueError(f"{name} must run from a column to one further right")
        norm, net = float(norm), float(net)
        if not (math.isfinite(norm) and norm >= 0 and math.isfinite(net)):
            raise ValueError(f"{name} needs a finite norm >= 0 and a finite net, got {norm}, "
                             f"{net}")
        checked.append((source, target, norm, net))
    images = {}
    for node, image in (thumbnails or {}).items():
        key = _node_key(*node)
        if key not in where:
            raise ValueError(f"thumbnail for node {key[0]}:{key[1]}, which is not in columns")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"thumbnail for {key[0]}:{key[1]} must be uint8 (H, W, 3), got "
                             f"{image.dtype} {image.shape}")
        images[key] = image
    return where, checked, images


def _edge_path(start, end, via_y=None):
    """A cubic S-curve from start to end, leaving and arriving horizontally.

    With ``via_y`` the curve detours through (mid x, via_y), flat there, so an edge that skips a
    column passes above or below that column's nodes instead of through them.
    """
    from matplotlib.path import Path as MplPath

    (x0, y0), (x1, y1) = start, end
    if via_y is None:
        d = 0.45 * (x1 - x0)
        vertices = [(x0, y0), (x0 + d, y0), (x1 - d, y1), (x1, y1)]
    else:
        xm = (x0 + x1) / 2
        d = 0.3 * (x1 - x0)
        vertices = [(x0, y0), (x0 + d, y0), (xm - d, via_y), (xm, via_y),
                    (xm + d, via_y), (x1 - d, y1), (x1, y1)]
    codes = [MplPath.MOVETO] + [MplPath.CURVE4] * (len(vertices) - 1)
    return MplPath(vertices, codes)


def circuit_diagram(columns: Sequence[tuple[str, Sequence[int]]],
                    edges: Sequence[tuple[tuple[str, int], tuple[str, int], float, float]],
                    path: Path, *, title: str,
                    thumbnails: Mapping[tuple[str, int], np.ndarray] | None = None) -> Path:
    """Distill-style circuit: layers as columns of channel nodes, weighted edges between them.

    ``columns`` runs from the input side (left) to the output side (right), each a
    (layer, channels) pair; nodes are spread vertically, centred. ``edges`` are
    (source node, target node, norm, net), a node being (layer, channel): line width grows with
    norm (largest edge 6 pt, none under 0.5 pt), colour is red for net > 0 (excitatory), blue
    for net < 0 (inhibitory), grey for 0. Edges run from a column to any column further right;
    one that skips a column curves above or below it. A node with an image in ``thumbnails``
    (uint8 (H, W, 3)) is drawn as that image with its "layer:channel" label under it, any other
    as a labelled box. Built for 2-3 columns of up to ~12 nodes. An edge or thumbnail naming a
    node that is not in ``columns`` raises ValueError naming the node.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyBboxPatch, PathPatch, Rectangle

    where, checked, images = _check_circuit(columns, edges, thumbnails)
    labels = {node: f"{node[0]}:{node[1]}" for node in where}
    longest = max(len(label) for label in labels.values())
    box_w = max(1.0, 0.068 * longest + 0.3)  # 8 pt DejaVu Sans is ~0.068 in a character
    box_h = 0.34
    pitch = _THUMB_IN + 0.42 if images else 0.5
    gap = max(2.4, box_w + 1.5)

    # Node geometry in inches (the axes' data units): centre, half width, extent up and down.
    centre, half_w, top, bottom = {}, {}, {}, {}
    for c, (layer, channels) in enumerate(columns):
        for i, channel in enumerate(channels):
            node = _node_key(layer, channel)
            x, y = c * gap, ((len(channels) - 1) / 2 - i) * pitch
            centre[node] = (x, y)
            if node in images:
                h, w = images[node].shape[:2]
                half_w[node] = _THUMB_IN / 2 * min(1.0, w / h)
                top[node], bottom[node] = y + _THUMB_IN / 2, y - _THUMB_IN / 2 - 0.26
            else:
                half_w[node] = box_w / 2
                top[node], bottom[node] = y + box_h / 2, y - box_h / 2
    column_top = [max(top[n] for n in where if where[n] == c) for c in range(len(columns))]
    column_bottom = [min(bottom[n] for n in where if where[n] == c) for c in range(len(columns))]
    y_top, y_bottom = max(column_top), min(column_bottom)

    # Edges: widths proportional to norm, thin ones drawn last so thick ones never hide them.
    largest = max((e[2] for e in checked), default=0.0)
    order = sorted(range(len(checked)), key=lambda k: (-checked[k][2], k))
    above = below = 0  # skip edges routed so far over / under the columns they skip
    patches = []
    for k in order:
        source, target, norm, net = checked[k]
        share = norm / largest if largest > 0 else 0.0
        (xs, ys), (xt, yt) = centre[source], centre[target]
        start, end = (xs + half_w[source], ys), (xt - half_w[target], yt)
        via_y = None
        skipped = range(where[source] + 1, where[target])
        if len(skipped):
            if (ys + yt) / 2 >= 0:
                via_y = max(column_top[c] for c in skipped) + 0.25 + 0.1 * above
                above += 1
            else:
                via_y = min(column_bottom[c] for c in skipped) - 0.25 - 0.1 * below
                below += 1
            y_top, y_bottom = max(y_top, via_y + 0.1), min(y_bottom, via_y - 0.1)
        colour = EXCITATORY if net > 0 else INHIBITORY if net < 0 else NEUTRAL
        patches.append(PathPatch(_edge_path(start, end, via_y), facecolor="none",
                                 edgecolor=colour, linewidth=max(0.5, 6.0 * share),
                                 alpha=0.55 + 0.45 * share, capstyle="butt", zorder=1))

    header_y = y_top + 0.3
    half_node = max(box_w, _THUMB_IN + 0.5) / 2 + 0.15
    x_min, x_max = -half_node, (len(columns) - 1) * gap + half_node
    y_min, y_max = y_bottom - 0.15, header_y + 0.25
    width = x_max - x_min
    fig = _figure(width, y_max - y_min, layout=None)
    ax = fig.add_axes((0, 0, 1, 1))
    for patch in patches:
        ax.add_patch(patch)

    for node, (x, y) in centre.items():
        if node in images:
            s = _THUMB_IN / 2
            h, w = images[node].shape[:2]  # fit in the square, keeping the aspect ratio
            sx, sy = s * min(1.0, w / h), s * min(1.0, h / w)
            ax.imshow(images[node], extent=(x - sx, x + sx, y - sy, y + sy), zorder=3,
                      interpolation="antialiased")
            ax.add_patch(Rectangle((x - sx, y - sy), 2 * sx, 2 * sy, facecolor="none",
                                   edgecolor="#555555", linewidth=0.8, zorder=4))
            ax.text(x, y - s - 0.05, labels[node], ha="center", va="top", fontsize=7, zorder=4,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.85})
        else:
            ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                        boxstyle="round,pad=0,rounding_size=0.06",
                                        facecolor="#f4f4f4", edgecolor="#555555",
                                        linewidth=0.8, zorder=3))
            ax.text(x, y, labels[node], ha="center", va="center", fontsize=8, zorder=4)
    for c, (layer, _) in enumerate(columns):
        ax.text(c * gap, header_y, str(layer), ha="center", va="center", fontsize=10,
                fontweight="bold")

    ax.set_xlim(x_min, x_max)
    ax.set_ylim(y_min, y_max)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title)
    handles = [Line2D([], [], color=EXCITATORY, linewidth=2.5),
               Line2D([], [], color=INHIBITORY, linewidth=2.5),
               Line2D([], [], color=NEUTRAL, linewidth=5)]
    ax.legend(handles, ["red: excitatory (net weight > 0)", "blue: inhibitory (net weight < 0)",
                        "line width: weight norm"],
              loc="upper center", bbox_to_anchor=(0.5, 0), ncols=3 if width >= 7 else 1,
              fontsize=8, frameon=False, handlelength=2.5)
    return _save(fig, path)


def example_crops(crops: np.ndarray, maps: np.ndarray, scores: Sequence[float], path: Path, *,
                  title: str, labels: Sequence[str] | None = None, per_row: int = 5) -> Path:
    """A unit's dataset examples: (N, S, S, 3) uint8 crops, each with its activation on top.

    ``maps`` (N, s, s) is the activation over each crop's own region, upsampled (bilinear) to
    S and drawn translucent (magma, as activation_overlay) on one colour scale shared by all
    crops, so brighter means stronger across the row. Crops under 96 px are zoomed by a whole
    factor (pixels stay sharp). Tiles wrap at ``per_row``; each is labelled "<label> <score>"
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
    heat = np.stack([upsample(m, (side, side)) for m in maps]) if len(maps) else maps
    vmin, vmax = _value_range(heat)
    fig, ax, cax, cols = _grid_axes(crops, per_row, colorbar=True)
    text = [f"{label} {float(score):.3g}" for label, score in zip(labels, scores)]
    _draw_mosaic(ax, crops, text, cols, 255)
    overlay = ax.imshow(tile_mosaic(heat, cols, np.nan), cmap="magma", alpha=0.6, vmin=vmin,
                        vmax=vmax)
    fig.colorbar(overlay, cax=cax, orientation="horizontal", label="activation")
    ax.set_title(title)
    return _save(fig, path)
