"""The JSON and CSV files beside the figures are strict JSON: an undefined number is null, never NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest

from generator.assets.files import write_csv, write_json


def _strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_undefined_numbers_are_null_and_numpy_values_plain_numbers(tmp_path):
    path = tmp_path / "sub" / "unit.json"
    write_json(path, {
        "ratio": float("nan"), "peak": np.float32(np.inf), "low": -np.inf,
        "values": np.array([1.5, np.nan, 3.0], "float32"), "pair": (np.int64(2), np.float64(np.nan)),
        "nested": [{"score": np.float64(0.25)}], "name": "c1", "flag": True, "none": None,
    })
    data = _strict(path.read_text(encoding="utf-8"))
    assert data == {
        "ratio": None, "peak": None, "low": None, "values": [1.5, None, 3.0], "pair": [2, None],
        "nested": [{"score": 0.25}], "name": "c1", "flag": True, "none": None,
    }
    assert isinstance(data["pair"][0], int)


def test_an_object_json_cannot_hold_is_refused(tmp_path):
    with pytest.raises(TypeError):
        write_json(tmp_path / "x.json", {"path": object()})


def test_an_undefined_number_is_an_empty_csv_cell_and_others_keep_their_text(tmp_path):
    path = tmp_path / "units.csv"
    write_csv(path, [{"channel": 3, "ratio": np.float32(np.nan), "peak": 0.1, "name": "c1"},
                     {"channel": np.int64(4), "ratio": np.float32(0.5), "peak": float("inf"), "name": "c2"}])
    assert path.read_text(encoding="utf-8").splitlines() == [
        "channel,ratio,peak,name", "3,,0.1,c1", "4,0.5,,c2"]
