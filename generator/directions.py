"""Directions named in the config: a vector over one layer's channels, to render an exciter of.

``exciters.directions`` lists them as ``"<layer>: <weighted sum of channels>"`` (for example
``"block3_conv2: 0.5*8 + 0.5*12"`` or ``"block3_conv2: 8 - 0.3*12"``) or ``"<layer>: <file>.npy"`` (a
1-D array, one weight per channel, relative to the config file). Parsing needs no model; the
layer, the channels and the file's length are checked against the layer records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator.analysis.graph import check_channels, find_layer
from generator.errors import GeneratorError
from generator.results import LayerInfo

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TERM = rf"(?:{_NUMBER}\*)?\d+"
_SUM = re.compile(rf"[+-]?{_TERM}(?:[+-]{_TERM})*")
_TERMS = re.compile(rf"([+-]?)(?:({_NUMBER})\*)?(\d+)")
FORMAT = "'<layer>: <weight>*<channel> + ...' or '<layer>: <file>.npy'"


@dataclass(frozen=True)
class DirectionSpec:
    """A direction as configured: its layer and either channel weights or a .npy file."""

    text: str
    layer: str
    weights: tuple[tuple[int, float], ...] = ()  # (channel, weight), summed where a channel repeats
    file: str = ""


def parse_direction(text: str, key: str) -> DirectionSpec:
    layer, sep, expression = text.partition(":")
    layer, expression = layer.strip(), expression.strip()
    if not sep or not layer or not expression:
        raise GeneratorError(f"config key {key!r}: got {text!r}, expected {FORMAT}")
    if expression.endswith(".npy"):
        return DirectionSpec(text, layer, file=expression)
    compact = re.sub(r"\s+", "", expression)
    if not _SUM.fullmatch(compact):
        raise GeneratorError(f"config key {key!r}: got {text!r}, expected {FORMAT}")
    terms = tuple((int(c), (-1.0 if sign == "-" else 1.0) * float(w or 1)) for sign, w, c in _TERMS.findall(compact))
    return DirectionSpec(text, layer, weights=terms)


def direction_vector(spec: DirectionSpec, layers: Sequence[LayerInfo], root: Path, key: str) -> np.ndarray:
    """The (C,) float32 weights of ``spec`` over its layer's channels, checked against the layer records."""
    record = find_layer(layers, spec.layer, f"config key {key!r}")
    if spec.file:
        path = Path(spec.file).expanduser()
        path = path if path.is_absolute() else root / path
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise GeneratorError(f"config key {key!r}: cannot read {spec.file!r} as a .npy array ({e})") from None
        if vector.shape != (record.channels,) or not np.issubdtype(vector.dtype, np.number):
            raise GeneratorError(f"config key {key!r}: {spec.file!r} holds an array of shape {vector.shape}; "
                                 f"layer {spec.layer!r} needs {record.channels} numbers, one per channel")
        vector = vector.astype(np.float32)
    else:
        check_channels(record, [c for c, _ in spec.weights], f"config key {key!r}")
        vector = np.zeros(record.channels, np.float32)
        for channel, weight in spec.weights:
            vector[channel] += weight
    if not np.any(vector) or not np.all(np.isfinite(vector)):
        raise GeneratorError(f"config key {key!r}: the direction {spec.text!r} must have finite weights, not all 0")
    return vector
