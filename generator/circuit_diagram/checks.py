"""The circuit diagram's inputs checked, each problem a ValueError naming the node or edge, and keyed
by normalised ``(layer, channel)`` nodes."""

from __future__ import annotations

import math

import numpy as np

Node = tuple[str, int]
Edge = tuple[Node, Node, float, float]  # source, target, norm, net


def node_key(layer, channel) -> Node:
    return str(layer), int(channel)


def check_circuit(columns, edges, thumbnails) -> tuple[dict[Node, int], list[Edge], dict[Node, np.ndarray]]:
    """Validate the inputs; return {node: column index}, the edges and the thumbnails, keyed
    by normalised (layer, channel) nodes."""
    where = _check_columns(columns)
    return where, [_check_edge(edge, where) for edge in edges], _check_thumbnails(thumbnails, where)


def _check_columns(columns) -> dict[Node, int]:
    if not columns:
        raise ValueError("circuit_diagram needs at least one column")
    where: dict[Node, int] = {}
    layers = set()
    for c, (layer, channels) in enumerate(columns):
        if str(layer) in layers:
            raise ValueError(f"layer {layer!r} appears in two columns")
        layers.add(str(layer))
        if len(channels) == 0:
            raise ValueError(f"column {layer!r} has no channels")
        for channel in channels:
            key = node_key(layer, channel)
            if key in where:
                raise ValueError(f"node {key[0]}:{key[1]} is listed twice")
            where[key] = c
    return where


def _check_edge(edge, where: dict[Node, int]) -> Edge:
    source, target, norm, net = edge
    source, target = node_key(*source), node_key(*target)
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
    return source, target, norm, net


def _check_thumbnails(thumbnails, where: dict[Node, int]) -> dict[Node, np.ndarray]:
    images = {}
    for node, image in (thumbnails or {}).items():
        key = node_key(*node)
        if key not in where:
            raise ValueError(f"thumbnail for node {key[0]}:{key[1]}, which is not in columns")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"thumbnail for {key[0]}:{key[1]} must be uint8 (H, W, 3), got "
                             f"{image.dtype} {image.shape}")
        images[key] = image
    return images
