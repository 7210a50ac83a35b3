"""A user's own model (issue 18): a matrix of tiny seeded models of the kinds people bring, each built into a
strict site; grayscale numbers; loading what people have; every refusal one ``error:`` line."""

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
from PIL import Image

from generator.seeding import seed_weights
from generator import figures
from generator.assets import SMALL_SHOWN, small_model_zoom
from generator.build import build_site
from generator.config import load_config
from generator.images import read_square
from generator.pixels import LUMINANCE
from generator.results import LayerInfo

from tiny import (
    ZOO, bn_cifar_classifier, build_zoo_model, depthwise_classifier, edit_config, error_line, grey_classifier,
    make_project, tiny_classifier,
)

REPO = Path(__file__).resolve().parent.parent
L = keras.layers


def mixed_precision_classifier(policy: str = "mixed_bfloat16"):
    """Built under a mixed precision policy, with ``x + y`` (a bare Add operation, as ConvNeXt has)."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        seed_weights(0)
        x = inputs = keras.Input((None, None, 3), name="pixels")
        x = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
        x = x + L.Conv2D(4, 3, padding="same", name="c2")(x)
        x = L.Conv2D(8, 3, padding="same", activation="relu", name="c3")(x)
        x = L.GlobalAveragePooling2D(name="gap")(x)
        return keras.Model(inputs, L.Dense(5, activation="softmax", name="head", dtype="float32")(x))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _sized(size: int) -> dict:
    """Config sections for a model taking ``size`` px images."""
    return {
        "images": {"size": size},
        "exciters": {"size": size, "grid": {"layer": "c2", "count": 4, "size": size, "per_row": 2}},
        "browse": {"thumbnail_size": size},
    }


# name: (model builder, file suffix, config sections, featured unit (layer, channel), browsed layers)
CASES = {
    "grey-sequential": (grey_classifier, ".keras", _sized(28), ("c3", 5), ["c3"]),
    "depthwise-separable": (depthwise_classifier, ".keras", {**_sized(32), "feature_maps": {"layers": ["dw", "sep"]}}, ("dw", 7), ["dw", "sep"]),
    "batchnorm-cifar": (bn_cifar_classifier, ".keras", _sized(32), ("c3", 5), ["c3"]),
    "mixed-bfloat16": (mixed_precision_classifier, ".keras", {"exciters": {"precision": "bfloat16"}}, ("c3", 5), ["c3"]),
    "legacy-h5": (tiny_classifier, ".h5", {}, ("c3", 5), ["c3"]),
}


@pytest.fixture(scope="module", params=list(CASES))
def own_site(request, tmp_path_factory):
    """One case of the matrix: the model saved, a tiny project on it, built, then built by mkdocs --strict."""
    make, suffix, sections, (layer, channel), browsed = CASES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    model = make()
    model.save(folder / f"model{suffix}")
    project = make_project(folder, folder / f"model{suffix}")
    (project / "labels.txt").write_text("zero\none\ntwo\nthree\nfour\n")
    sections = {**sections, "browse": {**sections.get("browse", {}), "layers": browsed}}
    edit_config(project, model={"labels": "labels.txt"}, units=[{"layer": layer, "channel": channel}], **sections)
    summary = build_site(load_config(project / "site_config.yaml"), project)
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project, capture_output=True,
                         text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
    return request.param, project, summary, model, (layer, channel)


def test_the_featured_unit_has_its_page(own_site):
    name, project, summary, model, (layer, channel) = own_site
    slug = "model"
    unit = project / "docs/generated/models" / slug / layer / str(channel)
    page = (unit / "index.md").read_text()
    assert f"{layer}" in page and "exciter.png" in page
    assert (project / f"site/models/{slug}/{layer}/{channel}/index.html").is_file()
    data = json.loads((unit / "unit.json").read_text())
    assert data["exciter"]["activation"] > data["exciter"]["start_activation"]
    assert set(data["maps"]) == {"photo0", "photo1", "photo2"}
    assert summary["pages"] > 5
    assert (project / "docs/generated/images/photo0/attribution-top1.png").stat().st_size > 1000
    assert (project / f"docs/generated/models/{slug}/{layer}/index.md").is_file()
    top5 = json.loads((project / "docs/generated/images/photo0/predictions.json").read_text())
    assert {p["name"] for p in top5} == {"zero", "one", "two", "three", "four"}, top5  # the labels file


def test_grayscale_pictures_are_grey_and_small_ones_zoomed(own_site):
    name, project, _, _, (layer, channel) = own_site
    if name != "grey-sequential":
        pytest.skip("the grayscale case")
    unit = project / "docs/generated/models/model" / layer / str(channel)
    assert "Lucid's (a Fourier-space image in grey," in (unit / "index.md").read_text()
    for picture in ("exciter.png", "exciter-gradient_ascent.png", "exciter-lucid.png"):
        pixels = np.asarray(Image.open(unit / picture).convert("RGB")).astype(int)
        assert pixels.shape == (140, 140, 3), picture  # 28 px zoomed x5 to at least 128
        assert (pixels == pixels[..., :1]).all() and pixels.std() > 1, picture  # grey, not flat
        blocks = pixels[:, :, 0].reshape(28, 5, 28, 5)
        assert (blocks == blocks[:, :1, :, :1]).all(), picture  # nearest neighbour: 5x5 squares


def test_depthwise_and_separable_layers_have_unit_pages(own_site):
    name, project, _, model, _ = own_site
    if name != "depthwise-separable":
        pytest.skip("the depthwise case")
    out = project / "docs/generated/models/model"
    for layer, channels in (("dw", 8), ("sep", 8)):
        assert sorted(int(p.name) for p in (out / layer).iterdir() if p.is_dir()) == list(range(channels))
        assert "exciter.png" in (out / layer / "index.md").read_text()
    # The featured depthwise unit's numbers are its layer's output on the photos, computed here directly.
    pixels = np.stack([read_square(project / f"images/photo{i}.png", 32) for i in range(3)]).astype(np.float32)
    maps = keras.ops.convert_to_numpy(keras.Model(model.input, model.get_layer("dw").output)(pixels / 127.5 - 1.0))
    data = json.loads((out / "dw/7/unit.json").read_text())
    assert data["stats"]["max"] == pytest.approx(float(maps[..., 7].max()), rel=1e-4)
    assert data["maps"]["photo1"]["mean"] == pytest.approx(float(maps[1, ..., 7].mean()), rel=1e-4)


def test_a_grey_model_reads_the_luminance_of_rgb_photos():
    """predict on RGB pixels equals the model on their ITU-R 601 luminance, computed independently."""
    from generator.config import ModelSection
    from generator.models import load_model

    folder = Path(os.environ.get("TMPDIR", "/tmp"))
    model = grey_classifier()
    path = folder / f"grey-{os.getpid()}.keras"
    model.save(path)
    try:
        loaded = load_model(ModelSection(name=str(path), preprocess="tf"), folder)
        rgb = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 3)).astype(np.float32)
        grey = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114)[..., None]
        expected = keras.ops.convert_to_numpy(model(grey / 127.5 - 1.0))
        np.testing.assert_allclose(loaded.predict(rgb), expected, rtol=1e-5, atol=1e-6)
        assert sum(LUMINANCE) == pytest.approx(1.0)
    finally:
        path.unlink()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_a_mixed_precision_file_loads_with_its_graph(tmp_path, policy):
    from generator.config import ModelSection
    from generator.models import load_model

    model = mixed_precision_classifier(policy)
    model.save(tmp_path / "mixed.keras")
    loaded = load_model(ModelSection(name="mixed.keras", preprocess="tf"), tmp_path)
    assert loaded.features.get_layer("c3").dtype_policy.name == policy
    pixels = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(pixels), keras.ops.convert_to_numpy(model(pixels / 127.5 - 1.0)),
                               rtol=1e-6)
    from generator.analysis.graph import inbound

    assert inbound(loaded.features)["c3"] == ["c1", "c2"]  # through the bare x + y


def test_a_bfloat16_copy_keeps_bare_operations():
    from generator.analysis.backend import at_precision

    model = mixed_precision_classifier()
    x = np.random.default_rng(0).uniform(0, 1, (1, 16, 16, 3)).astype(np.float32)
    copy = at_precision(model, "bfloat16")
    assert copy.get_layer("c3").dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(copy(x)), keras.ops.convert_to_numpy(model(x)), atol=2e-2)


def test_a_bfloat16_copy_carries_every_weight_of_the_model_exactly():
    """The copy is built with zero initialisers (fast), then every weight is overwritten with the model's:
    kernels, biases, BatchNormalization's moving statistics; none left at zero or at a random draw."""
    from generator.analysis.backend import at_precision

    seed_weights(0)
    x = keras.Input((8, 8, 3))
    y = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3, name="c")(x))
    model = keras.Model(x, keras.layers.Dense(2, bias_initializer="ones")(keras.layers.Flatten()(y)))
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 2.0, w.shape).astype(w.dtype) for w in model.get_weights()])
    copy = at_precision(model, "bfloat16")
    assert [tuple(w.shape) for w in copy.weights] == [tuple(w.shape) for w in model.weights]
    for mine, theirs in zip(copy.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert copy.get_layer("bn").dtype_policy.name == "mixed_bfloat16"
    image = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(copy(image)), keras.ops.convert_to_numpy(model(image)),
                               rtol=3e-2)


def test_small_fixed_models_get_their_pictures_zoomed(tmp_path):
    def layers(shape):
        return (LayerInfo("input", "InputLayer", shape, 0, shape[-1]),)

    assert small_model_zoom(layers((None, 28, 28, 1))) == SMALL_SHOWN
    assert small_model_zoom(layers((None, 32, 32, 3))) == SMALL_SHOWN
    assert small_model_zoom(layers((None, 224, 224, 3))) == 0
    assert small_model_zoom(layers((None, None, None, 3))) == 0  # VGG and the tests' tiny model: as before
    image = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    figures.save_rgb(image, tmp_path / "a.png", at_least=SMALL_SHOWN)
    shown = np.asarray(Image.open(tmp_path / "a.png"))
    assert shown.shape == (128, 128, 3) and (shown[::4, ::4] == image).all()


@pytest.mark.sweep
@pytest.mark.parametrize("name", list(ZOO))
def test_every_keras_applications_family_builds_a_strict_site(tmp_path, name):
    """weights: none, a small config (``zoo_project``): the build and mkdocs --strict pass, the featured unit's
    page is there (benchmarks/bench_model_zoo.py times the same builds)."""
    ok, _, pages, problem = build_zoo_model(name, tmp_path)
    assert ok, problem
    page = (tmp_path / "docs/generated/models" / name / ZOO[name] / "0/index.md").read_text()
    assert "exciter.png" in page and pages > 5


# --- refusals: one error line, exit 2 --------------------------------------------------------------


def four_band_model():
    seed_weights(0)
    x = inputs = keras.Input((32, 32, 4))
    x = L.Conv2D(8, 3, padding="same", name="c3")(x)
    return keras.Model(inputs, L.Dense(5, name="head")(L.GlobalAveragePooling2D()(x)))


def test_a_four_band_model_is_told_what_is_supported(tiny_project, monkeypatch, capsys):
    four_band_model().save(tiny_project / "bands.keras")
    edit_config(tiny_project, model={"name": "bands.keras"})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line == ("error: config key 'model.name': the model takes inputs of shape (32, 32, 4); this generator "
                    "analyses image models taking RGB (height, width, 3) or grayscale (height, width, 1) images")


def test_a_model_with_two_outputs_is_told_what_is_supported(tiny_project, monkeypatch, capsys):
    seed_weights(0)
    x = inputs = keras.Input((None, None, 3))
    x = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, name="c1")(x))
    keras.Model(inputs, [L.Dense(3, activation="softmax", name="a")(x), L.Dense(2, name="b")(x)]).save(
        tiny_project / "two.keras")
    edit_config(tiny_project, model={"name": "two.keras"})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line == ("error: config key 'model.name': 'two.keras' has 1 input and 2 outputs; this generator "
                    "analyses models with one image input and one output")


@pytest.mark.parametrize("mode", ["caffe", "torch"])
def test_a_grey_model_refuses_rgb_normalisation(tiny_project, monkeypatch, capsys, mode):
    grey_classifier().save(tiny_project / "grey.keras")
    edit_config(tiny_project, model={"name": "grey.keras", "preprocess": mode})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line.startswith(f"error: config key 'model.preprocess': got {mode},") and "use tf" in line


def test_a_grey_model_refuses_imagenets_spectrum_for_maco(tiny_project, monkeypatch, capsys):
    grey_classifier().save(tiny_project / "grey.keras")
    edit_config(tiny_project, model={"name": "grey.keras", "preprocess": "none"}, exciters={"maco_spectrum": "imagenet"},
                units=[{"layer": "c3", "channel": 1, "method": "maco"}])
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line == ("error: config key 'exciters.maco_spectrum': got imagenet for maco (units[0].method), a colour "
                    "spectrum; a grayscale model needs images (its images' spectrum) or auto")


def test_a_savedmodel_folder_says_how_to_convert_it(tiny_project, monkeypatch, capsys):
    (tiny_project / "exported").mkdir()
    (tiny_project / "exported/saved_model.pb").write_bytes(b"\x08\x01")
    edit_config(tiny_project, model={"name": "exported"})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert "'exported' is a TensorFlow SavedModel folder" in line
    assert "tf_keras.models.load_model('exported').save('model.h5')" in line


@pytest.mark.parametrize("name", ["net.pt", "net.pth"])
def test_a_pytorch_file_says_how_to_bring_it(tiny_project, monkeypatch, capsys, name):
    (tiny_project / name).write_bytes(b"PK\x03\x04 torch zip")
    edit_config(tiny_project, model={"name": name})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert f"'{name}' is a PyTorch file" in line and "transpose it by (2, 3, 1, 0)" in line


def test_an_h5_file_that_is_not_hdf5_is_named(tiny_project, monkeypatch, capsys):
    (tiny_project / "model.h5").write_text("not hdf5")
    edit_config(tiny_project, model={"name": "model.h5"})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line.startswith("error: config key 'model.name': 'model.h5' is not an HDF5 file")


def test_an_unknown_name_lists_the_families_and_files(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, model={"name": "lenet"})
    line = error_line(tiny_project, monkeypatch, capsys)
    for name in ("convnext_tiny", "efficientnet_v2_b0", "nasnet_mobile", "densenet121", ".keras or .h5 file"):
        assert name in line


@pytest.mark.parametrize("name, hint", [("resnet5", " (did you mean 'resnet50'?)"), ("alexnet", ""), ("x" * 300, "")])
def test_an_unknown_model_name_is_one_short_line(tmp_path, name, hint):
    """A near miss gets the closest name; a name no file system holds (too long) is no crash."""
    from generator.config import ModelSection
    from generator.errors import GeneratorError
    from generator.models import describe_model

    with pytest.raises(GeneratorError) as e:
        describe_model(ModelSection(name=name), tmp_path)
    line = str(e.value)
    assert line.startswith("config key 'model.name': unknown model ")
    assert f"{hint}; allowed: vgg16-hed, one of 40 keras.applications names (vgg16, vgg19, resnet50," in line
    assert len(line) < 400
