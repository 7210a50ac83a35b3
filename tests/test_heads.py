"""The tutorials' own models: augmentation and Rescaling inside the model (inference mode everywhere, a
determinism check), logit heads (softmax applied), binary heads (sigmoid applied or in the head, class 0's
attribution on the negative logit) and multi-label heads."""

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
from generator.analysis import attribution, exciters, views
from generator.analysis.predictions import predict
from generator.build import build_site
from generator.config import ModelSection, load_config
from generator.errors import GeneratorError
from generator.heads import classifier_head
from generator.models import load_model

from tiny import edit_config, make_project

L = keras.layers
REPO = Path(__file__).resolve().parent.parent


def tutorial_model(units: int = 5, activation: str | None = None, extra=()) -> keras.Model:
    """The TensorFlow tutorials' shape: RandomFlip, RandomRotation, Rescaling(1/255), convs, a Dense head."""
    seed_weights(3)
    x = inputs = keras.Input((None, None, 3), name="pixels")
    x = L.RandomFlip("horizontal", name="flip")(x)
    x = L.RandomRotation(0.3, name="rotate")(x)
    x = L.Rescaling(1 / 255, name="rescale")(x)
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    for layer in extra:
        x = layer(x)
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="c2")(x)
    x = L.MaxPooling2D(2, name="p1")(x)
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="c3")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, L.Dense(units, activation=activation, name="head")(x), name="tutorial")


def saved(model: keras.Model, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.keras"
    model.save(path)
    return path


def project(tmp_path: Path, model: keras.Model, labels: str = "") -> Path:
    folder = make_project(tmp_path / "project", saved(model, tmp_path / "model"))
    model_section = {"name": str(tmp_path / "model" / "model.keras"), "preprocess": "none"}
    if labels:
        (folder / "labels.txt").write_text(labels)
        model_section["labels"] = "labels.txt"
    edit_config(folder, model=model_section)
    return folder


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def site_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@keras.saving.register_keras_serializable(package="test_heads")
class NoisyLayer(L.Layer):
    """Adds noise even at inference: the determinism check must name it."""

    def call(self, x):
        return x + keras.random.normal(keras.ops.shape(x))


def test_augmentation_is_identity_in_every_analysis_and_logits_get_softmax(tmp_path):
    model = tutorial_model()
    folder = project(tmp_path, model)
    out = folder / "docs" / "generated"
    build_site(load_config(folder / "site_config.yaml"), folder)
    first = site_files(out)
    slug = "photo0"
    pixels = np.asarray(Image.open(out / "images" / slug / "input.png").convert("RGB"), np.float32)
    logits = model.predict(pixels[None], verbose=0)
    assert not np.allclose(model(pixels[None]), logits)  # model(x) alone runs the augmentation
    table = json.loads((out / "images" / slug / "predictions.json").read_text())
    expected = softmax(logits.astype(np.float64))[0]
    assert [row["id"] for row in table] == list(np.argsort(-expected)[:5])
    np.testing.assert_allclose([row["probability"] for row in table], np.sort(expected)[::-1][:5], rtol=1e-5)
    np.testing.assert_allclose([row["logit"] for row in table], logits[0][[row["id"] for row in table]], rtol=1e-5)
    assert "softmax (applied here)" in (out / "images" / slug / "index.md").read_text()
    # a second build without the cache gives the same bytes: no analysis saw a random flip or rotation
    shutil.rmtree(folder / ".cache")
    build_site(load_config(folder / "site_config.yaml"), folder)
    assert site_files(out) == first


def test_every_forward_pass_is_in_inference_mode(tmp_path):
    model = tutorial_model()
    section = ModelSection(name=str(saved(model, tmp_path)), preprocess="none")
    loaded = load_model(section, tmp_path)
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    from generator.analysis.activations import layer_activations

    acts = layer_activations(loaded, images, ["c1"])["c1"]
    c1 = keras.Model(model.input, model.get_layer("c1").output)
    x = images.astype(np.float32)
    expected = c1.predict(x, verbose=0)
    np.testing.assert_allclose(acts, expected, rtol=1e-5, atol=1e-6)
    channels = np.array([1, 3], np.int32)
    layer = loaded.features.get_layer("c1")
    for redirect in (False, True):  # a kernel sliced after the trunk, and the model cut at the layer
        maps = exciters.unit_maps(loaded.features, layer, 2, redirect)(keras.ops.convert_to_tensor(x), channels)
        own = expected[np.arange(2), ..., channels] if not redirect else None
        if own is not None:
            np.testing.assert_allclose(keras.ops.convert_to_numpy(maps), own, rtol=1e-5, atol=1e-6)
        else:  # before the ReLU: its positive part is the map
            np.testing.assert_allclose(np.maximum(keras.ops.convert_to_numpy(maps), 0), expected[np.arange(2), ..., channels],
                                       rtol=1e-5, atol=1e-6)
    dream = views.deepdream(loaded.features, "c1", images, loaded.preprocess, steps=0, step_size=1.0, batches=views.Batches(2))
    np.testing.assert_allclose(dream.start_activation, np.mean(expected**2, axis=(1, 2, 3)), rtol=1e-5)
    probabilities = model.predict(x, verbose=0)[:, 2]
    for method in ("saliency", "gradcam"):
        (found,) = attribution.attribute(loaded, images, [attribution.ClassTarget(index=2)], method)
        np.testing.assert_allclose(found.scores, probabilities, rtol=1e-5, err_msg=method)


def test_a_layer_with_noise_at_inference_is_refused_by_name(tmp_path):
    section = ModelSection(name=str(saved(tutorial_model(extra=[NoisyLayer(name="jitter")]), tmp_path)), preprocess="none")
    with pytest.raises(GeneratorError, match=r"layer 'jitter' \(NoisyLayer\) gives different outputs on two inference passes"):
        load_model(section, tmp_path)


@pytest.mark.parametrize("activation", [None, "sigmoid"])
def test_binary_head_shows_both_classes_and_attribution_of_class_0_is_the_negative_logit(tmp_path, activation):
    model = tutorial_model(units=1, activation=activation)
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    section = ModelSection(name=str(saved(model, tmp_path)), preprocess="none", labels="labels.txt")
    loaded = load_model(section, tmp_path)
    images = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    out = model.predict(images.astype(np.float32), verbose=0)[:, 0].astype(np.float64)
    p = out if activation else 1 / (1 + np.exp(-out))
    z = np.log(p / (1 - p))  # the logit, also where the head applies the sigmoid
    predictions = predict(loaded, images)
    assert len(predictions) == 3
    for k, prediction in enumerate(predictions):
        assert {(s.id, s.name) for s in prediction.top5} == {(0, "cat"), (1, "dog")}
        by_name = {s.name: s.probability for s in prediction.top5}
        np.testing.assert_allclose([by_name["cat"], by_name["dog"]], [1 - p[k], p[k]], rtol=1e-5)
        assert ("sigmoid (applied here)" if activation is None else "already a sigmoid probability") in prediction.note
    targets = [attribution.ClassTarget(index=0), attribution.ClassTarget(index=1), attribution.ClassTarget(rank=1)]
    cat, dog, top = attribution.attribute(loaded, images, targets, "saliency")
    np.testing.assert_allclose(cat.scores, -z, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dog.scores, z, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(top.scores, np.abs(z), rtol=1e-4, atol=1e-5)  # the predicted class's logit
    (cam,) = attribution.attribute(loaded, images, targets[:1], "gradcam")
    np.testing.assert_allclose(cam.scores, -z, rtol=1e-4, atol=1e-5)
    assert cam.maps.shape == (3, 16, 16)


def test_binary_head_needs_two_labels(tmp_path):
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\n")
    section = ModelSection(name=str(saved(tutorial_model(units=1), tmp_path)), preprocess="none", labels="labels.txt")
    with pytest.raises(GeneratorError, match="binary classifier .* needs 2 lines .* it has 3"):
        load_model(section, tmp_path)


def test_single_logit_head_with_two_labels_builds_a_strict_site(tmp_path):
    folder = project(tmp_path, tutorial_model(units=1), labels="cat\ndog\n")
    build_site(load_config(folder / "site_config.yaml"), folder)
    page = (folder / "docs" / "generated" / "images" / "photo0" / "index.md").read_text()
    assert "| cat |" in page and "| dog |" in page and "sigmoid (applied here)" in page
    shutil.copy(REPO / "mkdocs.yml", folder / "mkdocs.yml")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=folder, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "WARNING" not in done.stderr, done.stderr


def test_heads_read_from_the_last_activation():
    output = np.array([[0.0, 2.0, -1.0]])
    np.testing.assert_allclose(classifier_head(3, "linear").probabilities(output), softmax(output), rtol=1e-6)
    np.testing.assert_allclose(classifier_head(3, "softmax").probabilities(output), output)
    labels = classifier_head(3, "sigmoid")
    assert labels.kind == "multi-label" and "on its own" in labels.note
    np.testing.assert_allclose(labels.probabilities(np.array([[0.9, 0.8, 0.1]])), [[0.9, 0.8, 0.1]], rtol=1e-6)
    np.testing.assert_allclose(classifier_head(1, "linear").probabilities(np.array([[0.0]])), [[0.5, 0.5]])


def test_several_sigmoid_outputs_are_labels_each_on_its_own(tmp_path):
    model = tutorial_model(units=3, activation="sigmoid")
    loaded = load_model(ModelSection(name=str(saved(model, tmp_path)), preprocess="none"), tmp_path)
    image = np.random.default_rng(2).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    expected = model.predict(image[None].astype(np.float32), verbose=0)[0]
    (prediction,) = predict(loaded, image[None])
    by_id = {s.id: s.probability for s in prediction.top5}
    np.testing.assert_allclose([by_id[i] for i in range(3)], expected, rtol=1e-5)  # no softmax over the labels
    assert all(s.logit is None for s in prediction.top5) and "on its own" in prediction.note


@pytest.mark.parametrize("preprocess, advice", [("none", "preprocess: none is right"),
                                                ("tf", "model.preprocess is 'tf', so the pixels would be rescaled twice: use preprocess: none")])
def test_layers_command_notes_that_the_model_rescales_itself(tmp_path, monkeypatch, capsys, preprocess, advice):
    from generator import cli

    folder = project(tmp_path, tutorial_model())
    edit_config(folder, model={"preprocess": preprocess})
    monkeypatch.chdir(folder)
    assert cli.main(["layers"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"note: the model rescales its input itself (layer 'rescale', Rescaling); {advice}"


def test_a_grayscale_model_with_noise_at_inference_is_refused_too(tmp_path):
    """The probe images are photos (RGB): the model's own preprocessing makes its one grey channel."""
    pixels = keras.Input((16, 16, 1))
    noisy = NoisyLayer(name="jitter")(L.Conv2D(2, 3, name="c")(pixels))
    model = keras.Model(pixels, L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(noisy)))
    section = ModelSection(name=str(saved(model, tmp_path)), preprocess="none")
    with pytest.raises(GeneratorError, match=r"layer 'jitter' \(NoisyLayer\) gives different outputs"):
        load_model(section, tmp_path)
