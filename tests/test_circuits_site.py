"""End to end: a tiny ResNet-like and a tiny Inception-like model build a strict site whose circuit
page lists inputs from several layers, with numbers equal to autodiff of the linearised model."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from generator.seeding import seed_weights
from generator.build import build_site
from generator.config import load_config

from linear_reference import centre, gradients, linear_copy, support
from tiny import edit_config, make_project

L = keras.layers
REPO = Path(__file__).resolve().parent.parent


def _head(x, inputs, name):
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, L.Dense(5, activation="softmax", name="head")(x), name=name)


def resnet_like():
    """c1 -> bn (scales far from 1, one negative) -> c2 -> [m1 -> m2] + c2 -> relu -> c3."""
    seed_weights(2)
    inputs = keras.Input((None, None, 3), name="pixels")
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    x = L.BatchNormalization(name="bn")(x)
    c2 = L.Conv2D(4, 3, padding="same", activation="relu", name="c2")(x)
    m = L.Conv2D(4, 3, padding="same", activation="relu", name="m1")(c2)
    m = L.Conv2D(4, 3, padding="same", name="m2")(m)
    x = L.ReLU(name="relu")(L.Add(name="add")([c2, m]))
    model = _head(L.Conv2D(6, 3, padding="same", activation="relu", name="c3")(x), inputs, "resnetlike")
    model.get_layer("bn").set_weights([np.array(v, "float32") for v in (
        [1e-3, -2.0, 30.0, 0.5], [0.1, 0.2, 0.3, 0.4], [0.5, -0.5, 1.0, 0.0], [1e-2, 100.0, 1e-3, 0.3])])
    return model


def inception_like():
    """stem -> (1x1 | 1x1 -> 3x3 | max-pool -> 1x1) -> concat -> t."""
    seed_weights(3)
    inputs = keras.Input((None, None, 3), name="pixels")
    stem = L.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    b1 = L.Conv2D(3, 1, activation="relu", name="b1")(stem)
    b2 = L.Conv2D(2, 1, activation="relu", name="b2_reduce")(stem)
    b2 = L.Conv2D(3, 3, padding="same", activation="relu", name="b2")(b2)
    b3 = L.MaxPooling2D(3, strides=1, padding="same", name="pool")(stem)
    b3 = L.Conv2D(2, 1, activation="relu", name="b3")(b3)
    x = L.Concatenate(name="mix")([b1, b2, b3])
    return _head(L.Conv2D(6, 3, padding="same", activation="relu", name="t")(x), inputs, "inceptionlike")


CASES = {
    # model, featured unit, earlier layer, direct layers, feature-map layer
    "resnetlike": (resnet_like, ("c3", 2), "c1", ["c2", "m2"], "c1"),
    "inceptionlike": (inception_like, ("t", 1), "stem", ["b1", "b2", "b3"], "stem"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_merged_model_builds_a_strict_site_with_true_circuit_numbers(name, tmp_path):
    make_model, (layer, channel), earlier, direct_layers, first = CASES[name]
    model = make_model()
    model.save(tmp_path / f"{name}.keras")
    project = make_project(tmp_path, tmp_path / f"{name}.keras")
    edit_config(project, feature_maps={"layers": [first]}, exciters={"grid": {"layer": first, "count": 4, "size": 16, "per_row": 2}},
                units=[{"layer": layer, "channel": channel}], circuits={"top_k": 4, "earlier_layer": earlier},
                browse={"layers": [layer]})
    build_site(load_config(project / "site_config.yaml"), project)
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr

    unit = project / f"docs/generated/models/{name}/{layer}/{channel}"
    page = (unit / "circuit/index.md").read_text()
    assert "## Direct inputs from " + ", ".join(f"`{d}`" for d in direct_layers) in page
    assert "How to read these weights: " in page

    # direct inputs: one linear copy whose inputs are the direct layers
    copy = linear_copy(model, direct_layers, layer, size=16)
    expected = {}
    for source, gradient in zip(direct_layers, gradients(copy, channel, centre(copy))):
        top, left, h, w = support(gradient)
        box = gradient[top:top + h, left:left + w]
        expected.update({(source, c): box[..., c] for c in range(box.shape[-1])})
    rows = list(csv.DictReader(open(unit / "circuit.csv")))
    assert {(r["layer"], int(r["channel"])) for r in rows} == set(expected)
    for r in rows:
        weights = expected[(r["layer"], int(r["channel"]))]
        assert float(r["norm"]) == pytest.approx(np.linalg.norm(weights), rel=1e-4)
        assert float(r["excitatory"]) == pytest.approx(weights[weights > 0].sum(), rel=1e-4, abs=1e-7)
    norms = [float(r["norm"]) for r in rows]
    assert norms == sorted(norms, reverse=True)
    for r in rows[:4]:   # each top input links to its own layer's unit page, which exists
        assert f"(../../../{r['layer']}/{r['channel']}/index.md)" in page
        assert (project / f"site/models/{name}/{r['layer']}/{r['channel']}/index.html").is_file()

    # expanded weights: the gradient with respect to the earlier layer, summed over every path
    copy = linear_copy(model, [earlier], layer, size=16)
    gradient = gradients(copy, channel, centre(copy))[0]
    top, left, h, w = support(gradient)
    box = gradient[top:top + h, left:left + w]
    rows = list(csv.DictReader(open(unit / "circuit/expanded.csv")))
    assert len(rows) == box.shape[-1]
    for r in rows:
        assert float(r["norm"]) == pytest.approx(np.linalg.norm(box[..., int(r["channel"])]), rel=1e-4)
    assert (unit / "circuit/diagram.png").stat().st_size > 1000
