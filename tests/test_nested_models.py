"""Nested models are one graph: a small functional "base" (standing in for a keras.applications network) called
as one layer inside a Sequential or a functional model, with RandomFlip and Rescaling(1/255) before it. Every
analysis reaches the base's layers by name or path; the numbers are those of the base on the rescaled image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from generator import cli
from generator.analysis.activations import layer_activations
from generator.build import build_site
from generator.config import ModelSection, image_files, load_config
from generator.images import load_images
from generator.flat_model import flatten
from generator.models import load_model
from generator.seeding import seed_weights

from tiny import edit_config, error_line, make_project, seeded

L = keras.layers
REPO = Path(__file__).resolve().parent.parent


def base_model(name: str = "base", bare: bool = False) -> keras.Model:
    """c1 (4, relu) -> BatchNorm -> c2 (4, relu) -> BatchNorm + c2 (an Add layer; ``bare``: ``+``, an operation and
    no layer, which circuits do not cross) -> p1 -> c3 (6)."""
    x = inputs = keras.Input((32, 32, 3), name="base_input")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    a = L.BatchNormalization(name="bn")(a)
    b = L.Conv2D(4, 3, padding="same", activation="relu", name="c2")(a)
    x = L.MaxPooling2D(name="p1")(a + b if bare else L.Add(name="add")([a, b]))
    return keras.Model(inputs, L.Conv2D(6, 3, padding="same", name="c3")(x), name=name)


def nested_model(kind: str, bare: bool = False) -> tuple[keras.Model, keras.Model]:
    """The transfer-learning tutorial's shape, the base frozen: augmentation, Rescaling, base, pooling, Dense(5) logits."""
    seed_weights(4)
    base = seeded(base_model(bare=bare), seed=4)
    base.trainable = False
    if kind == "sequential":  # the augmentation a Sequential of its own: two levels of nesting
        augment = keras.Sequential([L.RandomFlip("horizontal", name="flip")], name="augment")
        model = keras.Sequential([keras.Input((32, 32, 3)), augment, L.Rescaling(1 / 255, name="rescale"), base,
                                  L.GlobalAveragePooling2D(name="gap"), L.Dense(5, name="head")], name="tl_seq")
    else:
        x = inputs = keras.Input((32, 32, 3), name="pixels")
        x = L.Rescaling(1 / 255, name="rescale")(L.RandomFlip("horizontal", name="flip")(x))
        x = L.GlobalAveragePooling2D(name="gap")(base(x, training=False))
        model = keras.Model(inputs, L.Dense(5, name="head")(x), name="tl_fun")
    return model, base


def saved(model: keras.Model, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    return folder / "model.keras"


def project(tmp_path: Path, model: keras.Model) -> Path:
    """The tiny config, its layers named as a user would: own names, and the featured unit by its path."""
    folder = make_project(tmp_path / "project", saved(model, tmp_path / "model"))
    edit_config(folder, model={"preprocess": "none"}, units=[{"layer": "base/c3", "channel": 5}],
                views={"layers": ["c2"], "deepdream_steps": 2, "caricature_steps": 2},
                groups={"layers": ["base/c3"], "count": 2, "exciter_size": 16},
                exciters={"directions": ["base/c2: 0.5*1 + 0.5*2"]})
    return folder


def site_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_a_nested_base_builds_a_strict_site_with_the_base_numbers(tmp_path, kind):
    model, base = nested_model(kind)
    folder = project(tmp_path, model)
    out = folder / "docs" / "generated"
    build_site(load_config(folder / "site_config.yaml"), folder)
    first = site_files(out)
    unit_page = out / "models" / "model" / "base--c3" / "5" / "index.md"
    assert unit_page.is_file() and "exciter.png" in unit_page.read_text()
    assert (out / "models" / "model" / "base--c2" / "0" / "index.md").is_file()  # browse.layers: [c2, c3]
    for picture in ("feature-maps-base--c1", "deepdream-base--c2", "groups-base--c3"):
        assert (out / "images" / "photo0" / f"{picture}.png").is_file(), picture
    assert (out / "models" / "model" / "direction-0.png").is_file()
    assert "Grad-CAM at base--c3" in (out / "images" / "photo0" / "index.md").read_text()  # the last spatial conv
    config = load_config(folder / "site_config.yaml")
    pixels = load_images(image_files(config), config.images.size)[0].pixels.astype(np.float32)[None]  # as analysed
    logits = model.predict(pixels, verbose=0).astype(np.float64)
    table = json.loads((out / "images" / "photo0" / "predictions.json").read_text())
    expected = softmax(logits)[0]
    assert [row["id"] for row in table] == list(np.argsort(-expected)[:5])
    np.testing.assert_allclose([row["probability"] for row in table], np.sort(expected)[::-1][:5], rtol=1e-5)
    shutil.copy(REPO / "mkdocs.yml", folder / "mkdocs.yml")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=folder, capture_output=True,
                          text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0 and "WARNING" not in done.stderr, done.stderr
    shutil.rmtree(folder / ".cache")
    build_site(load_config(folder / "site_config.yaml"), folder)
    assert site_files(out) == first


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_inner_activations_are_the_base_on_the_rescaled_image(tmp_path, kind):
    model, base = nested_model(kind, bare=True)
    loaded = load_model(ModelSection(name=str(saved(model, tmp_path)), preprocess="none"), tmp_path)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    found = layer_activations(loaded, images, ["base--c3", "base--c1"])
    rescaled = images.astype(np.float32) * np.float32(1 / 255)  # as Rescaling computes it
    np.testing.assert_allclose(found["base--c3"], base(rescaled, training=False), rtol=1e-4, atol=1e-4)
    c1 = keras.Model(base.input, base.get_layer("c1").output)
    np.testing.assert_allclose(found["base--c1"], c1(rescaled, training=False), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(loaded.predict(images), model.predict(images.astype(np.float32), verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_the_flat_graph_copies_each_layer_once_with_its_weights_and_trainable_flag():
    model, base = nested_model("sequential")
    flat = flatten(model)
    assert [layer.name for layer in flat.layers] == [
        "pixels", "augment--flip", "rescale", "base--c1", "base--bn", "base--c2", "base--add", "base--p1", "base--c3", "gap", "head"]
    copy = flat.get_layer("base--bn")
    assert copy is not base.get_layer("bn") and not copy.trainable
    for mine, theirs in zip(copy.get_weights(), base.get_layer("bn").get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def two_bases_model() -> keras.Model:
    """Two copies of the base side by side: every inner name is in both."""
    seed_weights(6)
    x = inputs = keras.Input((32, 32, 3), name="pixels")
    x = L.Rescaling(1 / 255, name="rescale")(x)
    pooled = [L.GlobalAveragePooling2D(name=f"gap_{n}")(base_model(n)(x)) for n in ("left", "right")]
    return keras.Model(inputs, L.Dense(5, name="head")(L.Concatenate(name="both")(pooled)), name="twins")


def test_an_ambiguous_name_is_one_line_with_the_paths(tmp_path, monkeypatch, capsys):
    folder = project(tmp_path, two_bases_model())
    edit_config(folder, feature_maps={"layers": ["left/c1"]}, units=[{"layer": "c3", "channel": 5}])
    assert error_line(folder, monkeypatch, capsys) == (
        "error: config key 'units[0].layer': layer name 'c3' is ambiguous: layers of nested models share it; "
        "name one by its path: 'left/c3', 'right/c3'")


def test_a_missing_name_is_one_line_with_the_closest_names(tmp_path, monkeypatch, capsys):
    folder = project(tmp_path, nested_model("functional")[0])
    edit_config(folder, units=[{"layer": "base/c33", "channel": 5}])
    line = error_line(folder, monkeypatch, capsys)
    assert line.startswith("error: config key 'units[0].layer': the model has no layer 'base/c33'; did you mean ")
    assert "'base/c3'" in line


def test_one_unit_named_by_its_own_name_and_its_path_is_one_line(tmp_path, monkeypatch, capsys):
    folder = project(tmp_path, nested_model("functional")[0])
    edit_config(folder, units=[{"layer": "c3", "channel": 5}, {"layer": "base/c3", "channel": 5}])
    assert error_line(folder, monkeypatch, capsys) == (
        "error: config key 'units[1]': unit base--c3:5 is already units[0]; list each unit once")


def test_layers_command_lists_paths_and_own_names(tmp_path, monkeypatch, capsys):
    folder = project(tmp_path, nested_model("functional")[0])
    monkeypatch.chdir(folder)
    assert cli.main(["layers"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["base/c3"][:2] == ["c3", "Conv2D"] and rows["rescale"][0] == "Rescaling"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["transfer_mobilenet_v2", "flowers"])
def test_the_tutorials_models_build_a_strict_site(tmp_path, name):
    """The Keras transfer-learning model (a MobileNetV2 base inside, weights=None) and the TensorFlow flowers model,
    as benchmarks/bench_model_zoo.py builds them: the build and mkdocs --strict pass, the featured unit's page is there."""
    from tiny import build_zoo_model

    ok, _, pages, problem = build_zoo_model(name, tmp_path)
    assert ok and pages > 5, problem


@pytest.mark.parametrize("section", ["feature_maps", "browse", "views", "groups"])
def test_one_layer_named_by_its_own_name_and_its_path_is_one_line(tmp_path, monkeypatch, capsys, section):
    folder = project(tmp_path, nested_model("functional")[0])
    edit_config(folder, **{section: {"layers": ["c2", "base/c2"]}})
    assert error_line(folder, monkeypatch, capsys) == (
        f"error: config key '{section}.layers[1]': layer base--c2 is already {section}.layers[0]; list each layer once")
