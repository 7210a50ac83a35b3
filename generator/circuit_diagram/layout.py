"""Where the circuit diagram's nodes sit, in inches (the axes' data units).

Column c is at x = c * gap; its n nodes are spread from the top down, ``pitch`` apart and centred on
y = 0. A node is a labelled box (``box_w`` wide: its longest label in 8 pt DejaVu Sans) or, where it
has a thumbnail, that image fitted in a ``THUMB_IN`` square with its label under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from generator.circuit_diagram.checks import Node, node_key

THUMB_IN = 0.8  # thumbnail side, inches
BOX_H = 0.34  # a labelled box's height, inches


@dataclass(frozen=True)
class Layout:
    """The nodes' geometry: centre, half width, and extent up and down; the columns' extents."""

    layers: list[str]  # the columns' layers, left to right
    column_of: dict[Node, int]
    images: dict[Node, np.ndarray]  # the thumbnails
    labels: dict[Node, str]  # "layer:channel"
    box_w: float  # a labelled box's width
    gap: float  # between columns' centres
    centre: dict[Node, tuple[float, float]]
    half_w: dict[Node, float]
    column_top: list[float]
    column_bottom: list[float]


def layout(columns: Sequence[tuple[str, Sequence[int]]], where: dict[Node, int],
           images: dict[Node, np.ndarray]) -> Layout:
    labels = {node: f"{node[0]}:{node[1]}" for node in where}
    longest = max(len(label) for label in labels.values())
    box_w = max(1.0, 0.068 * longest + 0.3)  # 8 pt DejaVu Sans is ~0.068 in a character
    pitch = THUMB_IN + 0.42 if images else 0.5
    gap = max(2.4, box_w + 1.5)
    centre, half_w, top, bottom = {}, {}, {}, {}
    for c, (layer, channels) in enumerate(columns):
        for i, channel in enumerate(channels):
            node = node_key(layer, channel)
            x, y = c * gap, ((len(channels) - 1) / 2 - i) * pitch
            centre[node] = (x, y)
            if node in images:
                h, w = images[node].shape[:2]
                half_w[node] = THUMB_IN / 2 * min(1.0, w / h)
                top[node], bottom[node] = y + THUMB_IN / 2, y - THUMB_IN / 2 - 0.26
            else:
                half_w[node] = box_w / 2
                top[node], bottom[node] = y + BOX_H / 2, y - BOX_H / 2
    column_top = [max(top[n] for n in where if where[n] == c) for c in range(len(columns))]
    column_bottom = [min(bottom[n] for n in where if where[n] == c) for c in range(len(columns))]
    return Layout([str(layer) for layer, _ in columns], where, images, labels, box_w, gap, centre, half_w,
                  column_top, column_bottom)
