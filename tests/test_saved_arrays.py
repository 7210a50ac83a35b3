"""What the build computes is what a reader of its data files gets back: the attribution maps
(``.npy``, float16 scaled by each map's largest magnitude) within 2**-11 of that magnitude, every
JSON and CSV number exactly, read with plain numpy, json and csv as the README says."""

from __future__ import annotations

import csv
import json
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from generator import saved_arrays
from generator.assets import files
from generator.build import build_site
from generator.config import load_config
from generator.saved_arrays import RELATIVE_ERROR, map_records
from tiny import edit_config, make_project, tiny_classifier

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_reader() -> str:
    """The README's snippet that reads an attribution ``.npy`` back."""
    text = README.read_text(encoding="utf-8")
    return textwrap.dedent(re.search(r"To read a map file back:\s*```python\n(.*?)```", text, re.S).group(1))


def read_maps(path: Path) -> np.ndarray:
    """The maps at ``path`` as the README's reader gets them: its snippet run on that file."""
    scope = {}
    exec(readme_reader().replace('"images/chelsea/attribution-block3_conv2-8.npy"', repr(str(path))), scope)
    return scope["maps"]


def within_tolerance(read: np.ndarray, computed: np.ndarray) -> bool:
    top = np.abs(computed).reshape(len(computed), -1).max(axis=1)[:, None, None]
    return bool(np.all(np.abs(read - computed) <= RELATIVE_ERROR * top))


@pytest.mark.parametrize("top", [3e-8, 1e-6, 0.9, 1.0, 2e4])
def test_maps_read_back_within_their_tolerance_at_any_magnitude(tmp_path, top):
    rng = np.random.default_rng(0)
    maps = (rng.standard_normal((3, 20, 24)) * top).astype(np.float32)
    maps[0] = np.abs(maps[0])  # one map unsigned, like Grad-CAM's
    np.save(tmp_path / "m.npy", map_records(maps))
    read = read_maps(tmp_path / "m.npy")
    assert read.shape == maps.shape and within_tolerance(read, maps)
    assert len(np.unique(read[1])) > 400  # hundreds of levels, not the few float16 gives 1e-7 values
    if top < 1e-3:  # where plain float16 (the former format) misses the same tolerance
        assert not within_tolerance(maps.astype(np.float16).astype(np.float64), maps)


def test_zero_nan_and_infinite_values_read_back_as_they_are(tmp_path):
    maps = np.zeros((3, 4, 4), np.float32)
    maps[1, 0, 0], maps[1, 1, 1], maps[1, 2, 2] = np.nan, np.inf, 1e-7
    maps[2, 0, 0], maps[2, 1, 1] = np.nan, -np.inf
    np.save(tmp_path / "m.npy", map_records(maps))
    read = read_maps(tmp_path / "m.npy")
    assert np.array_equal(read, maps, equal_nan=True)


def scaled_classifier(path: Path) -> Path:
    """The tiny classifier with its head 1e-6 as strong (class maps below 1e-6) and its first layer
    strengthened so that unit c3:5's maps peak near 1."""
    model = tiny_classifier()
    for name, factor in (("head", 1e-6), ("c1", 300.0)):
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([kernel * factor, bias])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The tiny site built on :func:`scaled_classifier`, with what the build handed to each file writer."""
    folder = tmp_path_factory.mktemp("saved")
    project = make_project(folder / "project", scaled_classifier(folder / "scaled.keras"))
    edit_config(project, views={"layers": ["c3"]}, groups={"layers": ["c3"], "count": 2},
                exciters={"directions": ["c3: 0.5*5 + 0.5*1"]})
    written = {"maps": [], "json": [], "csv": []}
    patch = pytest.MonkeyPatch()
    for module, name, kind in ((saved_arrays, "save_maps", "maps"), (files, "write_json", "json"),
                               (files, "write_csv", "csv")):
        original = getattr(module, name)
        patch.setattr(module, name, lambda path, data, kind=kind, original=original:
                      (written[kind].append((path, data)), original(path, data)))
    try:
        build_site(load_config(project / "site_config.yaml"), project)
    finally:
        patch.undo()
    return written  # the paths name the site's folder, which docs/generated links to


def test_every_saved_map_reads_back_as_computed(saved):
    tops = {}
    for path, computed in saved["maps"]:
        read = read_maps(path)
        assert read.shape == computed.shape and within_tolerance(read, computed), path
        tops[path.name] = max(tops.get(path.name, 0), float(np.abs(computed).max()))
    assert sorted(tops) == ["attribution-c3-5.npy", "attribution-top1.npy"] and len(saved["maps"]) == 6
    assert tops["attribution-top1.npy"] < 1e-6 and 0.3 < tops["attribution-c3-5.npy"] < 3, tops


def plain(value):
    """``value`` as JSON holds it: containers as dicts and lists, numpy numbers as Python's."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def same(read, computed) -> bool:
    """Equal, numbers bit for bit; an undefined number (NaN, infinity) read back as None (null in strict JSON,
    an empty CSV cell)."""
    if isinstance(computed, float):
        return read is None if not math.isfinite(computed) else isinstance(read, float) and read == computed
    if isinstance(computed, dict):
        return read.keys() == computed.keys() and all(same(read[k], v) for k, v in computed.items())
    if isinstance(computed, list):
        return len(read) == len(computed) and all(same(r, c) for r, c in zip(read, computed))
    return read == computed and type(read) is type(computed)


def test_every_json_number_reads_back_exactly(saved):
    names = {path.name for path, _ in saved["json"]}
    assert names == {"predictions.json", "attribution.json", "unit.json", "views.json", "groups.json",
                     "directions.json"}
    for path, computed in saved["json"]:
        assert same(json.loads(path.read_text(encoding="utf-8")), plain(computed)), path


def test_every_csv_number_reads_back_exactly(saved):
    names = {path.name for path, _ in saved["csv"]}
    assert {"units.csv", "circuit.csv", "exciter-grid.csv"} <= names
    for path, rows in saved["csv"]:
        with open(path, newline="", encoding="utf-8") as f:
            read = list(csv.DictReader(f))
        assert [list(r) for r in read] == [list(r) for r in rows], path
        for cells, row in zip(read, rows):
            for key, value in plain(row).items():
                assert same(parse(cells[key], value), value), (path, key, cells[key], value)


def parse(cell: str, like):
    """A CSV cell read as the type of ``like`` (an empty cell as None)."""
    if cell == "":
        return None
    return cell == "True" if isinstance(like, bool) else type(like)(cell)
