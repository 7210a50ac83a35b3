"""The circuit diagram's figure: the routed edges under the nodes (thumbnails framed, or labelled
boxes), a bold header over each column, the title, and a legend of the colours and widths below."""

from __future__ import annotations

from pathlib import Path

from generator.circuit_diagram.edges import EXCITATORY, INHIBITORY, NEUTRAL, RoutedEdges
from generator.circuit_diagram.layout import BOX_H, THUMB_IN, Layout
from generator.figures import new_figure, save_figure


def draw(placed: Layout, edges: RoutedEdges, path: Path, title: str) -> Path:
    header_y = edges.y_top + 0.3
    half_node = max(placed.box_w, THUMB_IN + 0.5) / 2 + 0.15
    x_min, x_max = -half_node, (len(placed.layers) - 1) * placed.gap + half_node
    y_min, y_max = edges.y_bottom - 0.15, header_y + 0.25
    width = x_max - x_min
    fig = new_figure(width, y_max - y_min, layout=None)
    ax = fig.add_axes((0, 0, 1, 1))
    for patch in edges.patches:
        ax.add_patch(patch)
    for node in placed.centre:
        (_thumbnail_node if node in placed.images else _box_node)(ax, placed, node)
    for c, layer in enumerate(placed.layers):
        ax.text(c * placed.gap, header_y, layer, ha="center", va="center", fontsize=10,
                fontweight="bold")
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(y_min, y_max)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title)
    _legend(ax, width)
    return save_figure(fig, path)


def _thumbnail_node(ax, placed: Layout, node) -> None:
    from matplotlib.patches import Rectangle

    (x, y), image = placed.centre[node], placed.images[node]
    s = THUMB_IN / 2
    h, w = image.shape[:2]  # fit in the square, keeping the aspect ratio
    sx, sy = s * min(1.0, w / h), s * min(1.0, h / w)
    ax.imshow(image, extent=(x - sx, x + sx, y - sy, y + sy), zorder=3,
              interpolation="antialiased")
    ax.add_patch(Rectangle((x - sx, y - sy), 2 * sx, 2 * sy, facecolor="none",
                           edgecolor="#555555", linewidth=0.8, zorder=4))
    ax.text(x, y - s - 0.05, placed.labels[node], ha="center", va="top", fontsize=7, zorder=4, color="black",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.85})


def _box_node(ax, placed: Layout, node) -> None:
    from matplotlib.patches import FancyBboxPatch

    (x, y), box_w = placed.centre[node], placed.box_w
    ax.add_patch(FancyBboxPatch((x - box_w / 2, y - BOX_H / 2), box_w, BOX_H,
                                boxstyle="round,pad=0,rounding_size=0.06",
                                facecolor="#f4f4f4", edgecolor="#555555",
                                linewidth=0.8, zorder=3))
    ax.text(x, y, placed.labels[node], ha="center", va="center", fontsize=8, zorder=4, color="black")  # on its box


def _legend(ax, width: float) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=EXCITATORY, linewidth=2.5),
               Line2D([], [], color=INHIBITORY, linewidth=2.5),
               Line2D([], [], color=NEUTRAL, linewidth=5)]
    ax.legend(handles, ["red: excitatory (net weight > 0)", "blue: inhibitory (net weight < 0)",
                        "line width: weight norm"],
              loc="upper center", bbox_to_anchor=(0.5, 0), ncols=3 if width >= 7 else 1,
              fontsize=8, frameon=False, handlelength=2.5)
