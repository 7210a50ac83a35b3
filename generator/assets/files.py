"""The data files beside the figures: JSON (numpy values as plain numbers, an undefined number as
null: strict JSON has no NaN) and CSV (an undefined number as an empty cell)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _plain(value: object) -> object:
    """``value`` as JSON's types: arrays and tuples as lists, numpy scalars as Python ones, NaN and
    infinities as None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)


def _cell(value: object) -> object:
    """An undefined number (NaN, infinity) as an empty cell; every other value as it is."""
    return None if isinstance(value, (float, np.floating)) and not math.isfinite(value) else value
