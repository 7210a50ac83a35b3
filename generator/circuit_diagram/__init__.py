"""The circuit diagram: units in columns by layer, edges coloured by the sign of their summed weight
and sized by its norm, exciter thumbnails on the nodes (matplotlib).

In parts: :mod:`.checks` (the inputs, keyed by normalised nodes), :mod:`.layout` (where each node and
column sits, in inches), :mod:`.edges` (each edge's curve, colour and width, routed around the columns
it skips) and :mod:`.drawing` (the figure: edges, nodes, headers, legend).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from generator.circuit_diagram.checks import check_circuit
from generator.circuit_diagram.drawing import draw
from generator.circuit_diagram.edges import EXCITATORY, INHIBITORY, NEUTRAL, route_edges
from generator.circuit_diagram.layout import layout

__all__ = ["EXCITATORY", "INHIBITORY", "NEUTRAL", "circuit_diagram"]


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
    where, checked, images = check_circuit(columns, edges, thumbnails)
    placed = layout(columns, where, images)
    return draw(placed, route_edges(checked, placed), path, title)
