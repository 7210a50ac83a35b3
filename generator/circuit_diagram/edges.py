"""The circuit diagram's edges: each a cubic S-curve from its source's right side to its target's
left side, coloured by the sign of its net weight and ``max(0.5, 6 s)`` pt wide (opacity 0.55 + 0.45 s),
s = norm / the largest norm.

An edge that skips columns detours through the middle between its ends, 0.25 in above the highest
(or below the lowest) node of the columns it skips (above when its ends lie above the centre on
average), each further such edge 0.1 in further out so they do not overlap. Thick edges are drawn
first, so thin ones are never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.circuit_diagram.checks import Edge
from generator.circuit_diagram.layout import Layout

EXCITATORY = "#d62728"  # net weight > 0
INHIBITORY = "#1f77b4"  # net weight < 0
NEUTRAL = "#8c8c8c"  # net weight == 0


@dataclass(frozen=True)
class RoutedEdges:
    """The edges' patches in drawing order, and how far up and down the nodes and detours reach."""

    patches: list  # matplotlib PathPatch
    y_top: float
    y_bottom: float


def route_edges(edges: list[Edge], placed: Layout) -> RoutedEdges:
    from matplotlib.patches import PathPatch

    y_top, y_bottom = max(placed.column_top), min(placed.column_bottom)
    largest = max((e[2] for e in edges), default=0.0)
    order = sorted(range(len(edges)), key=lambda k: (-edges[k][2], k))
    above = below = 0  # skip edges routed so far over / under the columns they skip
    patches = []
    for k in order:
        source, target, norm, net = edges[k]
        share = norm / largest if largest > 0 else 0.0
        (xs, ys), (xt, yt) = placed.centre[source], placed.centre[target]
        start, end = (xs + placed.half_w[source], ys), (xt - placed.half_w[target], yt)
        via_y = None
        skipped = range(placed.column_of[source] + 1, placed.column_of[target])
        if len(skipped):
            if (ys + yt) / 2 >= 0:
                via_y = max(placed.column_top[c] for c in skipped) + 0.25 + 0.1 * above
                above += 1
            else:
                via_y = min(placed.column_bottom[c] for c in skipped) - 0.25 - 0.1 * below
                below += 1
            y_top, y_bottom = max(y_top, via_y + 0.1), min(y_bottom, via_y - 0.1)
        patches.append(PathPatch(edge_path(start, end, via_y), facecolor="none",
                                 edgecolor=edge_colour(net), linewidth=max(0.5, 6.0 * share),
                                 alpha=0.55 + 0.45 * share, capstyle="butt", zorder=1))
    return RoutedEdges(patches, y_top, y_bottom)


def edge_colour(net: float) -> str:
    return EXCITATORY if net > 0 else INHIBITORY if net < 0 else NEUTRAL


def edge_path(start, end, via_y=None):
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
