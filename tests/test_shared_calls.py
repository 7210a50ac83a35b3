"""Layers used more than once: one ReLU object after three convs, one MaxPooling after two, one conv
block applied to two branches (siamese-like).

Circuits and expanded weights follow each call of a shared parameter-free layer, checked against
autodiff of a linearised Keras copy (``linear_reference``, which walks Keras' own history call by
call) and against the same model built with a separate layer per call. A layer called several
times has no single output: every analysis that reads one refuses it in one line.
"""

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

from generator import cli
from generator.analysis import graph
from generator.build import build_site
from generator.analysis.circuits import circuit, direct_inputs, expanded_weights, layer_links
from generator.errors import GeneratorError
from generator.analysis.examples import receptive_field
from generator.config import load_config
from generator.results import Unit

from linear_reference import centre, gradients, linear_copy
from test_circuits_merges import check_expanded
from tiny import edit_config, make_project, seeded

L = keras.layers
REPO = Path(__file__).resolve().parent.parent


def relu_model(shared=True, size=12):
    """a -> relu -> b -> relu -> c -> relu -> d, one ReLU object for the three (or three objects)."""
    image = keras.Input((size, size, 3), name="image")
    relus = [L.ReLU(name="relu")] * 3 if shared else [L.ReLU(name=f"relu{i}") for i in (1, 2, 3)]
    x = image
    for name, relu in zip("abc", relus):
        x = relu(L.Conv2D(4, 3, padding="same", name=name)(x))
    return seeded(keras.Model(image, L.Conv2D(3, 3, padding="same", name="d")(x)), seed=7)


def pool_model(size=31):
    """a -> pool (3x3, stride 2, same) -> b -> pool -> add -> c, plus a -> short (stride 4) -> add: one pooling
    object at 31 then 16 positions, padding 1 then 0 rows on top, so the two paths line up only where
    each call pads for its own size."""
    image = keras.Input((size, size, 3), name="image")
    pool = L.MaxPooling2D(3, strides=2, padding="same", name="pool")
    a = L.Conv2D(4, 3, padding="same", name="a")(image)
    x = pool(L.Conv2D(5, 3, padding="same", name="b")(pool(a)))
    short = L.Conv2D(5, 3, strides=4, padding="same", name="short")(a)
    x = L.Add(name="add")([x, short])
    return seeded(keras.Model(image, L.Conv2D(3, 3, padding="same", name="c")(x)), seed=8)


def siamese_model(size=12):
    """stem -> (left, right) -> one conv 's' on each -> concat -> t."""
    image = keras.Input((size, size, 3), name="image")
    stem = L.Conv2D(4, 3, padding="same", activation="relu", name="stem")(image)
    shared = L.Conv2D(3, 3, padding="same", activation="relu", name="s")
    left = shared(L.Conv2D(4, 1, name="left")(stem))
    right = shared(L.Conv2D(4, 3, padding="same", name="right")(stem))
    x = L.Concatenate(name="mix")([left, right])
    return seeded(keras.Model(image, L.Conv2D(5, 3, padding="same", name="t")(x)), seed=9)


# --- the graph of calls ------------------------------------------------------------------------


def test_each_call_of_a_shared_relu_reads_its_own_conv():
    model = relu_model()
    assert graph.inbound(model) == {"image": [], "a": ["image"], "relu": ["a"], "relu@2": ["b"], "relu@3": ["c"],
                                    "b": ["relu"], "c": ["relu@2"], "d": ["relu@3"]}
    record = {r.name: r for r in graph.summarise(model)}["relu"]
    assert (record.calls, record.inputs) == (3, ("a", "b", "c"))
    assert graph.upstream(graph.summarise(model), "d") == {"image", "a", "b", "c", "relu"}
    assert [r.calls for r in graph.summarise(relu_model(shared=False))] == [1] * 8


def test_a_receptive_field_follows_the_call_on_the_path():
    """Four 3x3 convs before d's output: 9 px, as with three ReLU objects (a walk by layer name stopped at
    the shared ReLU and said 3)."""
    shared, separate = relu_model(), relu_model(shared=False)
    assert receptive_field(shared, "d") == receptive_field(separate, "d")
    assert (receptive_field(shared, "d").size, receptive_field(shared, "c").size) == (9, 7)
    pooled = pool_model()
    field = receptive_field(pooled, "b")  # a (3x3), the pool's first call (3x3, stride 2), b (3x3): 3 + 2 + 2 * 2
    assert (field.size, field.stride) == (9, 2)


# --- circuits through a shared ReLU --------------------------------------------------------------


def test_direct_inputs_through_a_shared_relu_come_from_the_conv_of_that_call():
    model = relu_model()
    for target, source in (("b", "a"), ("c", "b"), ("d", "c")):
        carried = direct_inputs(model, target, [1])
        assert list(carried.sources) == [source]
        kernel = model.get_layer(target).kernel.numpy()[..., 1]
        np.testing.assert_array_equal(carried.sources[source].weights[:, :, 0], kernel)
    links = layer_links(model, "c")
    assert (links.incoming_layer, links.outgoing_layer) == ("b", "d")


def test_expanded_weights_through_a_shared_relu_equal_autodiff_and_separate_relus():
    model = relu_model()
    got = check_expanded(model, "a", "d", [0, 2])
    assert got.shape == (7, 7, 4, 2)                                # three 3x3 convs from a's output
    separate = relu_model(shared=False)
    separate.set_weights(model.get_weights())
    np.testing.assert_allclose(expanded_weights(separate, "a", "d", [0, 2]), got, rtol=1e-6)
    check_expanded(model, "b", "d", [1])
    check_expanded(model, "image", "d", [1])


def test_a_circuit_through_a_shared_relu_has_direct_and_expanded_weights_and_edges():
    model = relu_model()
    c = circuit(model, Unit("d", 1), top_k=3, earlier_layer="a")
    assert c.direct.supported and c.direct.layers == ("c",)
    assert c.expanded.supported and c.expanded.layers == ("a",)
    between = expanded_weights(model, "a", "c", [w.unit.channel for w in c.direct.top])
    edge = next(e for e in c.edges if e.source.channel == 2 and e.target == c.direct.top[0].unit)
    assert edge.norm == pytest.approx(np.linalg.norm(between[:, :, 2, 0]), rel=1e-6)
    norms = np.sqrt((expanded_weights(model, "a", "d", [1])[..., 0] ** 2).sum(axis=(0, 1)))
    assert [w.norm for w in c.expanded.inputs] == pytest.approx(sorted(norms, reverse=True), rel=1e-6)


# --- a shared MaxPooling: each call at its own size ---------------------------------------------


def test_expanded_weights_through_a_shared_pooling_use_each_calls_size():
    model = pool_model()
    assert graph.inbound(model)["pool@2"] == ["b"] and graph.inbound(model)["add"] == ["pool@2", "short"]
    got = check_expanded(model, "a", "c", [0, 2])
    free = pool_model(None)
    free.set_weights(model.get_weights())
    np.testing.assert_allclose(expanded_weights(free, "a", "c", [0, 2], image_size=31), got, rtol=1e-6)
    assert list(direct_inputs(model, "c", [0]).sources) == ["b", "short"]


# --- a shared conv: its units are refused, weights through it are followed ----------------------


def test_a_circuit_ending_on_a_shared_conv_says_why_in_one_line():
    c = circuit(siamese_model(), Unit("t", 0), top_k=3)
    assert not c.direct.supported
    assert c.direct.reason == (
        "circuits: direct inputs of t: the path reaches Conv2D layer 's', which the model calls 2 times (s, s@2), "
        "so its units are not one activation each; circuits end on layers called once (a shared activation or "
        "pooling on the way is followed call by call)")


def test_expanded_weights_cross_both_calls_of_a_shared_conv():
    model = siamese_model()
    got = check_expanded(model, "stem", "t", [0, 3])
    assert got.shape[:2] == (7, 7)                                  # right: 3x3, s 3x3, t 3x3 from stem
    left_only = check_expanded(model, "left", "t", [3])
    assert left_only.shape[:2] == (5, 5)


def test_a_shared_convs_output_is_refused_everywhere_it_is_read():
    model = siamese_model()
    with pytest.raises(GeneratorError) as e:
        graph.layer_output(model, "s", "feature maps")
    assert str(e.value) == ("feature maps: layer 's' is called 2 times by the model (on the outputs of 'left', 'right'), "
                            "so it has no single output to analyse; choose a layer the model calls once")
    with pytest.raises(GeneratorError, match="^circuits: layer 's' is called 2 times"):
        expanded_weights(model, "s", "t", [0])
    records = graph.summarise(model)
    assert graph.conv_layer_names(records) == ["stem", "left", "right", "t"]
    with pytest.raises(GeneratorError) as e:
        graph.find_layer(records, "s", "config key 'units[0].layer'", conv=True)
    assert str(e.value) == ("config key 'units[0].layer': layer 's' is called 2 times by the model (on the outputs of "
                            "'left', 'right'), so it has no single output to analyse; conv layers called once: "
                            "stem, left, right, t")


# --- a build: a strict site for the shared-ReLU model; one error line for a shared layer's output --


def shared_relu_classifier():
    """pixels (any size) -> a -> relu -> b -> relu -> c -> relu -> d (relu) -> gap -> head; one ReLU object."""
    inputs = keras.Input((None, None, 3), name="pixels")
    relu, x = L.ReLU(name="relu"), inputs
    for name in "abc":
        x = relu(L.Conv2D(4, 3, padding="same", name=name)(x))
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="d")(x)
    x = L.Dense(5, activation="softmax", name="head")(L.GlobalAveragePooling2D(name="gap")(x))
    return seeded(keras.Model(inputs, x, name="sharedrelu"), seed=10)


@pytest.fixture
def shared_project(tmp_path):
    model = shared_relu_classifier()
    model.save(tmp_path / "sharedrelu.keras")
    project = make_project(tmp_path, tmp_path / "sharedrelu.keras")
    edit_config(project, feature_maps={"layers": ["a", "c"]},
                exciters={"grid": {"layer": "c", "count": 4, "size": 16, "per_row": 2}},
                units=[{"layer": "d", "channel": 1}], circuits={"top_k": 3, "earlier_layer": "a"},
                browse={"layers": ["c", "d"]})
    return model, project


def test_the_shared_relu_model_builds_a_strict_site_with_true_circuit_numbers(shared_project):
    model, project = shared_project
    build_site(load_config(project / "site_config.yaml"), project)
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
    unit = project / "docs/generated/models/sharedrelu/d/1"
    assert "## Direct inputs from `c`" in (unit / "circuit/index.md").read_text()
    for source, table, top in (("c", "circuit.csv", 4), ("a", "circuit/expanded.csv", 4)):
        copy = linear_copy(model, [source], "d", size=16)
        gradient = gradients(copy, 1, centre(copy))[0]
        rows = list(csv.DictReader(open(unit / table)))
        assert len(rows) == top
        for r in rows:
            assert float(r["norm"]) == pytest.approx(np.linalg.norm(gradient[..., int(r["channel"])]), rel=1e-4)
    assert (project / "site/models/sharedrelu/c/0/index.html").is_file()


def build_error(project, monkeypatch, capsys) -> str:
    monkeypatch.chdir(project)
    assert cli.main(["build"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert not (project / "docs/generated").exists()
    return lines[0]


def test_feature_maps_of_a_shared_relu_are_refused_in_one_line(shared_project, monkeypatch, capsys):
    _, project = shared_project
    edit_config(project, feature_maps={"layers": ["relu"]})
    assert build_error(project, monkeypatch, capsys) == (
        "error: config key 'feature_maps.layers[0]': layer 'relu' is called 3 times by the model (on the outputs of "
        "'a', 'b', 'c'), so it has no single output to analyse; choose a layer the model calls once")


@pytest.mark.parametrize("key", ["units", "earlier_layer"])
def test_a_shared_conv_as_unit_or_circuit_input_is_refused_in_one_line(tmp_path, monkeypatch, capsys, key):
    model = siamese_model(16)
    model.save(tmp_path / "siamese.keras")
    project = make_project(tmp_path, tmp_path / "siamese.keras")
    edit_config(project, images={"size": 16}, feature_maps={"layers": ["stem"]},
                exciters={"size": 16, "grid": {"layer": "stem", "count": 4, "size": 16, "per_row": 2}},
                units=[{"layer": "s" if key == "units" else "t", "channel": 1}],
                circuits={"top_k": 3, "earlier_layer": "s" if key == "earlier_layer" else "stem"},
                browse={"layers": ["t"]})
    where = "units[0].layer" if key == "units" else "circuits.earlier_layer"
    assert build_error(project, monkeypatch, capsys) == (
        f"error: config key '{where}': layer 's' is called 2 times by the model (on the outputs of 'left', 'right'), "
        f"so it has no single output to analyse; conv layers called once: stem, left, right, t")


def test_the_layer_list_notes_a_shared_layer(shared_project, monkeypatch, capsys):
    _, project = shared_project
    monkeypatch.chdir(project)
    assert cli.main(["layers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == ("note: layer 'relu' is called 3 times (on the outputs of 'a', 'b', 'c'): circuits follow each "
                         "call; its output (feature maps, units, views) is not analysed")
    assert any(line.split()[:2] == ["relu", "ReLU"] for line in lines)
