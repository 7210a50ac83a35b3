"""Directions named in the config: a vector over one layer's channels, to render an exciter of.

``exciters.directions`` lists them as ``"<layer>: <weighted sum of channels>"`` (for example
``"block3_conv2: 0.5*8 + 0.5*12"`` or ``"block3_conv2: 8 - 0.3*12"``) or ``"<layer>: <file>.npy"`` (a
1-D array, one weight per channel, relative to the config file). Parsing needs no model; the
layer, the channels and the file's length are checked against the model in
:func:`generator.model_checks.direction_vector`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from generator.errors import GeneratorError

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
