"""The circuit diagram: units in columns by layer, edges coloured by the sign of their summed weight
and sized by its norm, exciter thumbnails on the nodes (matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from generator.figures import new_figure, save_figure

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
    fig = new_figure(width, y_max - y_min, layout=None)
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
            ax.text(x, y - s - 0.05, labels[node], ha="center", va="top", fontsize=7, zorder=4, color="black",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.85})
        else:
            ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                        boxstyle="round,pad=0,rounding_size=0.06",
                                        facecolor="#f4f4f4", edgecolor="#555555",
                                        linewidth=0.8, zorder=3))
            ax.text(x, y, labels[node], ha="center", va="center", fontsize=8, zorder=4, color="black")  # on its box
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
    return save_figure(fig, path)
