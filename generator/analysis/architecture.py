"""The model's layers as plain records (name, type, output shape, parameters), and lookups by name.

The records are cached, so checking the config's layer names and channels on a rebuild
does not need the model loaded.
"""

from __future__ import annotations

import difflib

from generator.errors import GeneratorError, shown

CONV_TYPES = ("Conv2D",)


def summarise(model) -> list[dict]:
    """One record per layer, in graph order, like ``model.summary()``."""
    records = []
    for layer in model.layers:
        shape = layer.output.shape if hasattr(layer, "output") else None
        shape = [None if d is None else int(d) for d in shape] if shape is not None else None
        records.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": shape,
                "params": int(layer.count_params()),
                "channels": int(shape[-1]) if shape and len(shape) == 4 and shape[-1] else 0,
            }
        )
    return records


def find_layer(records: list[dict], name: str, key: str, *, conv: bool = False) -> dict:
    """The record of layer ``name``; unknown names get the closest ones suggested."""
    by_name = {r["name"]: r for r in records}
    record = by_name.get(name)
    if record is None:
        close = difflib.get_close_matches(name, list(by_name), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else "; run 'python -m generator layers' to list them"
        raise GeneratorError(f"config key {key!r}: the model has no layer {shown(name)}{hint}")
    if conv and record["type"] not in CONV_TYPES:
        allowed = ", ".join(r["name"] for r in records if r["type"] in CONV_TYPES)
        raise GeneratorError(
            f"config key {key!r}: layer {name!r} is a {record['type']} layer, not a convolution with channels to analyse; "
            f"conv layers: {allowed}"
        )
    if not record["channels"]:
        raise GeneratorError(
            f"config key {key!r}: layer {name!r} ({record['type']}) has no image-shaped output with channels to analyse"
        )
    return record


def check_channel(record: dict, channel: int, key: str) -> None:
    if not 0 <= channel < record["channels"]:
        raise GeneratorError(
            f"config key {key!r}: channel {channel} is out of range for layer {record['name']!r}, "
            f"which has channels 0 to {record['channels'] - 1}"
        )


def conv_layer_names(records: list[dict]) -> list[str]:
    return [r["name"] for r in records if r["type"] in CONV_TYPES]
