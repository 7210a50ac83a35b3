"""MACO exciters: the parametrisation and one step against Xplique, and what the recipe does on tiny models."""

from __future__ import annotations

import dataclasses
import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

from generator.analysis.exciters import maco, render_exciters, spectrum_scale, unit_objective
from generator.config import ExciterParams
from tiny import exciter_model

PARAMS = ExciterParams(method="maco", size=16, steps=24, seed=3, precision="float32")


def identity(images):
    return images


def one_over_f(channels: int, size: int = 16) -> np.ndarray:
    """A 1/f magnitude, (C, S, S//2+1): stands in for ImageNet's where xplique is not installed."""
    return np.repeat(spectrum_scale(size)[None], channels, axis=0)


def _xplique_preconditioning():
    return pytest.importorskip("xplique.features_visualizations.preconditioning")


def test_parametrisation_matches_xplique():
    reference = _xplique_preconditioning()
    rng = np.random.default_rng(0)
    for channels in (3, 1):
        magnitude = rng.uniform(0.1, 50.0, (channels, 24, 13)).astype("float32")
        phase = rng.normal(size=(channels, 24, 13)).astype("float32")
        expected = reference.maco_image_parametrization(magnitude, phase, (0, 1)).numpy()
        got = keras.ops.convert_to_numpy(maco.maco_image(magnitude, phase[None], 24))[0]
        assert got.shape == (24, 24, channels)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_imagenet_magnitude_is_xplique_buffer():
    reference = _xplique_preconditioning()
    expected, _ = reference.init_maco_buffer((20, 20))
    np.testing.assert_allclose(maco.imagenet_magnitude(20), expected.numpy(), rtol=1e-5)


def test_average_magnitude_of_images():
    images = np.random.default_rng(1).random((4, 8, 8, 1)).astype("float32")
    expected = np.abs(np.fft.rfft2(images[..., 0])).mean(axis=0)
    np.testing.assert_allclose(maco.average_magnitude(images, 8)[0], expected, rtol=1e-5)


def test_one_step_matches_xplique_update():
    """From the same phase, crops and noise: Xplique's step (its parametrisation, tf.image.crop_and_resize,
    Keras' Nadam at lr 1.0 on the negated gradient) moves the phase as ours does, within 1e-4."""
    reference = _xplique_preconditioning()
    model = exciter_model()
    rng = np.random.default_rng(2)
    magnitude = rng.uniform(1.0, 20.0, (3, 16, 9)).astype("float32")
    phase = rng.normal(size=(3, 16, 9)).astype("float32")
    boxes = np.concatenate([rng.uniform(0.2, 0.8, (maco.CROPS, 2)), rng.uniform(0.1, 0.9, (maco.CROPS, 1))], -1)
    boxes = boxes.astype("float32")
    noise = (0.08 * rng.normal(size=(maco.CROPS, 16, 16, 3))).astype("float32")

    variable = tf.Variable(phase)
    with tf.GradientTape() as tape:
        image = reference.maco_image_parametrization(magnitude, variable, (0, 1))
        corners = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], -1)
        crops = tf.image.crop_and_resize(image[None], corners, tf.zeros(maco.CROPS, tf.int32), (16, 16)) + noise
        loss = tf.reduce_mean(tf.reduce_mean(model(crops * 255.0)[..., 4], axis=(1, 2)))
    keras.optimizers.Nadam(1.0).apply_gradients([(-tape.gradient(loss, variable), variable)])

    objective = unit_objective(model, model.get_layer("c3"), maco.CROPS, identity, "channel")
    step = maco.maco_step(objective, magnitude, 16, 16)
    zeros = np.zeros((1, 3, 16, 9), np.float32)
    got, *_ = step(phase[None], zeros, zeros, maco.nadam_constants(1)[0], boxes[None], noise, np.array([4], "int32"))
    moved = np.abs(variable.numpy() - phase)
    assert moved.mean() > 0.1  # the step moves the phase by about lr = 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got)[0], variable.numpy(), atol=1e-4)


def test_maco_raises_the_unit_well_above_a_random_phase():
    """Each unit's exciter beats 64 random phases' images by more than a standard deviation of theirs."""
    model = exciter_model()
    magnitude = one_over_f(3)
    params = dataclasses.replace(PARAMS, steps=48)
    result = render_exciters(model, "c3", [0, 2, 4], params, identity, spectrum=magnitude)
    assert result.images.shape == (3, 16, 16, 3) and result.images.dtype == np.uint8
    assert result.transparency.shape == (3, 16, 16)
    assert np.isclose(result.transparency.max(), 1.0) and result.transparency.min() >= 0

    phases = np.random.default_rng(9).normal(size=(64, 3, 16, 9)).astype("float32")
    random_images = maco.maco_image(magnitude, phases, 16) * 255.0
    objective = unit_objective(model, model.get_layer("c3"), 64, identity, "channel")
    for reached, channel in zip(result.activation, [0, 2, 4]):
        random = keras.ops.convert_to_numpy(objective(random_images, np.full(64, channel, "int32")))
        assert reached > random.mean() + random.std(), channel


def test_maco_is_seeded_and_independent_of_its_batch():
    model = exciter_model()
    alone = render_exciters(model, "c3", [4], PARAMS, identity, spectrum=one_over_f(3))
    again = render_exciters(model, "c3", [4], PARAMS, identity, spectrum=one_over_f(3))
    batch = render_exciters(model, "c3", [1, 4, 5], PARAMS, identity, spectrum=one_over_f(3))
    np.testing.assert_array_equal(alone.images, again.images)
    assert np.abs(alone.images[0].astype(int) - batch.images[1]).max() <= 1
    np.testing.assert_allclose(alone.activation[0], batch.activation[1], rtol=1e-4)
    np.testing.assert_allclose(alone.transparency[0], batch.transparency[1], atol=1e-4)
    other_seed = render_exciters(model, "c3", [4], dataclasses.replace(PARAMS, seed=4), identity,
                                 spectrum=one_over_f(3))
    assert np.abs(other_seed.images.astype(int) - alone.images).mean() > 5


def test_grey_spectrum_gives_grey_exciters():
    model = exciter_model()
    result = render_exciters(model, "c3", [0, 4], PARAMS, identity, spectrum=one_over_f(1))
    assert np.array_equal(result.images[..., 0], result.images[..., 1])
    assert np.array_equal(result.images[..., 0], result.images[..., 2])
    assert result.images.std() > 10  # a picture, not a flat grey
    assert np.all(result.activation > result.start_activation)


def test_transparency_travels_with_the_exciter_and_draws_on_grey(tmp_path):
    from PIL import Image

    from generator import figures

    result = render_exciters(exciter_model(), "c3", [4], dataclasses.replace(PARAMS, steps=4), identity,
                             spectrum=one_over_f(3))
    (exciter,) = result.exciters()
    assert exciter.alpha.dtype == np.uint8 and exciter.alpha.max() == 255
    np.testing.assert_array_equal(exciter.alpha, np.round(result.transparency[0] * 255))

    image = np.full((2, 2, 3), 200, np.uint8)
    alpha = np.array([[0, 255], [255, 0]], np.uint8)
    drawn = np.asarray(Image.open(figures.transparent_exciter(image, alpha, tmp_path / "a.png")))
    np.testing.assert_array_equal(drawn[..., 0], [[128, 200], [200, 128]])


def test_other_recipes_have_no_transparency():
    result = render_exciters(exciter_model(), "c3", [4], dataclasses.replace(PARAMS, method="lucid", steps=2),
                             identity)
    assert result.transparency is None and result.exciters()[0].alpha is None


def test_without_the_xplique_wheel_maco_says_what_to_install(monkeypatch):
    from generator.errors import GeneratorError

    monkeypatch.setattr(maco.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(GeneratorError, match=r"pip install --no-deps xplique==2\.0\.2"):
        maco.imagenet_magnitude(16)


def test_bfloat16_reaches_what_float32_reaches():
    """The precision rule of the other recipes: the network in mixed_bfloat16, the phase and Nadam in float32."""
    params = dataclasses.replace(PARAMS, steps=48)
    runs = [render_exciters(exciter_model(), "c3", [0, 2, 4], dataclasses.replace(params, precision=p), identity,
                            spectrum=one_over_f(3)) for p in ("float32", "bfloat16")]
    np.testing.assert_allclose(runs[1].activation, runs[0].activation, atol=1.5)
    assert np.all(runs[1].activation > runs[1].start_activation)


def test_a_site_by_maco_shows_transparency_three_recipes_and_their_quality(built):
    """exciters.method: maco on the tiny site: the featured unit's page shows the transparency picture, the
    three recipes side by side with their quality, and unit.json carries the numbers."""
    import json

    import yaml

    from generator.build import build_site
    from generator.config import load_config

    if importlib.util.find_spec("xplique") is None:
        pytest.skip("the ImageNet spectrum comes from the xplique wheel")
    project, _ = built
    data = yaml.safe_load((project / "site_config.yaml").read_text())
    data["exciters"]["method"] = "maco"
    (project / "site_config.yaml").write_text(yaml.safe_dump(data))
    build_site(load_config(project / "site_config.yaml"), project)
    unit = project / "docs/generated/models/tiny/c3/5"
    page = (unit / "index.md").read_text()
    assert (unit / "exciter-alpha.png").is_file() and "exciter-alpha.png" in page
    assert all((unit / f"exciter-{m}.png").is_file() for m in ("gradient_ascent", "lucid", "maco"))
    assert "## The lab's recipe and Lucid's, and MACO's" in page
    assert page.count("times its best example's value") + page.count("no example drives it above 0") == 3
    layer_page = (project / "docs/generated/models/tiny/c3/index.md").read_text()
    assert "| MACO | 1 |" in layer_page and "| the lab's recipe | 1 |" in layer_page
    recipes = json.loads((unit / "unit.json").read_text())["recipes"]
    assert set(recipes) == {"gradient_ascent", "lucid", "maco"}
    assert all(-1.0 <= r["plausibility"] <= 1.0 for r in recipes.values())
