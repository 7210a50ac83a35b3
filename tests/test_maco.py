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


def _photos(folder, count: int = 5, size: int = 12, seed: int = 1) -> list:
    from PIL import Image

    folder.mkdir(exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    for i, p in enumerate(pixels):
        Image.fromarray(p).save(folder / f"p{i}.png")
    return sorted(folder.glob("*.png"))


def test_a_folder_spectrum_is_the_mean_fft_of_its_images(tmp_path):
    """Grey: the mean |FFT| of the luminance in [0, 1] (full fft2, its first S//2+1 columns); colour: of ImageNet's
    decorrelated channels, which maco_image recorrelates; and Xplique's dataset buffer for a grey dataset."""
    from PIL import Image

    files = _photos(tmp_path / "photos")
    rgb = np.stack([np.asarray(Image.open(f), np.float64) / 255.0 for f in files])
    grey = rgb @ np.array([0.299, 0.587, 0.114])
    expected = np.abs(np.fft.fft2(grey)).mean(axis=0)[:, :7]
    np.testing.assert_allclose(maco.folder_magnitude(files, 12, 1)[0], expected, rtol=1e-4)
    decorrelated = np.linalg.solve(maco._RECORRELATE.T.astype(np.float64), rgb[..., None])[..., 0]
    expected = np.abs(np.fft.fft2(np.moveaxis(decorrelated, -1, 1))).mean(axis=0)[..., :7]
    np.testing.assert_allclose(maco.folder_magnitude(files, 12, 3), expected, rtol=1e-4)

    reference = _xplique_preconditioning()
    dataset = tf.data.Dataset.from_tensor_slices(grey[..., None].astype("float32")).batch(2)
    buffer, _ = reference.init_maco_buffer((20, 20), dataset=dataset)
    np.testing.assert_allclose(maco.resized(maco.folder_magnitude(files, 12, 1), 20), buffer.numpy(), rtol=1e-4)


def test_one_step_matches_xplique_update():
    """From the same phase, crops and noise: Xplique's step (its parametrisation, tf.image.crop_and_resize,
    Keras' Nadam at lr 1.0 on the negated gradient) moves the phase as ours does, within 1e-4."""
    reference = _xplique_preconditioning()
    model = exciter_model()
    rng = np.random.default_rng(2)
    magnitude = rng.uniform(1.0, 20.0, (3, 16, 9)).astype("float32")
    phase = rng.normal(size=(3, 16, 9)).astype("float32")
    boxes = np.concatenate([rng.uniform(0.2, 0.8, (32, 2)), rng.uniform(0.1, 0.9, (32, 1))], -1)
    boxes = boxes.astype("float32")
    noise = (0.08 * rng.normal(size=(32, 16, 16, 3))).astype("float32")

    variable = tf.Variable(phase)
    with tf.GradientTape() as tape:
        image = reference.maco_image_parametrization(magnitude, variable, (0, 1))
        corners = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], -1)
        crops = tf.image.crop_and_resize(image[None], corners, tf.zeros(32, tf.int32), (16, 16)) + noise
        loss = tf.reduce_mean(tf.reduce_mean(model(crops * 255.0)[..., 4], axis=(1, 2)))
    keras.optimizers.Nadam(1.0).apply_gradients([(-tape.gradient(loss, variable), variable)])

    objective = unit_objective(model, model.get_layer("c3"), 32, identity, "channel")
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
    """The precision rule of the other recipes: the network in mixed_bfloat16, the phase and Nadam in float32
    (Xplique's 32 crops a step: with one, bfloat16's rounding moves a noisier climb further than this bound)."""
    params = dataclasses.replace(PARAMS, steps=48, maco_crops=32)
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
    assert "MACO keeps the Fourier magnitude of natural images and optimises only the phase, through 1 random crop a step." in page
    assert page.count("times its best example's value") + page.count("no example drives it above 0") == 3
    layer_page = (project / "docs/generated/models/tiny/c3/index.md").read_text()
    assert "| MACO | 1 |" in layer_page and "| the lab's recipe | 1 |" in layer_page
    recipes = json.loads((unit / "unit.json").read_text())["recipes"]
    assert set(recipes) == {"gradient_ascent", "lucid", "maco"}
    assert all(-1.0 <= r["plausibility"] <= 1.0 for r in recipes.values())


def _smooth_photos(folder) -> None:
    """Rewrite the photos in ``folder`` as smooth ones (noise under a 1/f^2 filter): a spectrum far from flat."""
    from PIL import Image

    rng = np.random.default_rng(2)
    for path in folder.glob("*.png"):
        h, w = np.asarray(Image.open(path)).shape[:2]
        f = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2)
        noise = np.fft.ifft2(np.fft.fft2(rng.normal(size=(3, h, w))) / np.maximum(f, 1 / h) ** 2).real
        noise = (noise - noise.min()) / np.ptp(noise)
        Image.fromarray(np.round(255 * np.moveaxis(noise, 0, -1)).astype(np.uint8)).save(path)


def test_a_grey_model_gets_grey_maco_exciters_from_its_images_spectrum(tmp_path):
    """exciters.maco_spectrum auto on a 1-channel model: the analyses take the magnitude from the images folder
    (the mean |FFT| of their luminance, computed here independently), the exciters keep it (their logit's
    |FFT|, off the columns irfft2 symmetrises, is the magnitude times one scale, up to the uint8 rounding) and
    are grey, and each drives its unit far above images of random phases with the same magnitude."""
    import yaml

    from generator.analyses import Analyses, exciter_key
    from generator.cache import Cache
    from generator.config import load_config
    from generator.images import read_square
    from generator.results import Unit
    from tiny import grey_classifier, make_project

    grey_classifier().save(tmp_path / "grey.keras")
    project = make_project(tmp_path, tmp_path / "grey.keras")
    _smooth_photos(project / "images")
    data = yaml.safe_load((project / "site_config.yaml").read_text())
    data["images"]["size"] = data["exciters"]["size"] = 28
    data["exciters"].update(method="maco", steps=32, seed=3, maco_crops=0)  # 0: the whole 28 px image each step
    (project / "site_config.yaml").write_text(yaml.safe_dump(data))
    config = load_config(project / "site_config.yaml")
    analyses = Analyses(config, Cache(project / "cache"))
    params = config.exciters.params()

    source, spectrum = analyses.maco_spectrum(params)
    files = [project / "images" / name for name in config.images.files]
    squares = np.stack([read_square(f, 28) for f in files]).astype(np.float64)  # as the site reads its photos
    grey = squares @ np.array([0.299, 0.587, 0.114]) / 255.0
    assert source.startswith("images ") and spectrum.shape == (1, 28, 15)
    np.testing.assert_allclose(spectrum[0], np.abs(np.fft.fft2(grey)).mean(axis=0)[:, :15], rtol=1e-4)

    units = [Unit("c3", c) for c in (1, 5)]
    found = analyses.exciters(units, params, "exciters")
    images = np.stack([found[u].image for u in units]).astype(np.float64)
    assert np.array_equal(images[..., 0], images[..., 1]) and np.array_equal(images[..., 0], images[..., 2])
    logit = np.log(np.clip(images[..., 0], 0.5, 254.5) / (255 - np.clip(images[..., 0], 0.5, 254.5)))
    kept = np.log(np.abs(np.fft.rfft2(logit))[:, :, 1:14]).reshape(2, -1)
    wanted = np.log(spectrum[0][:, 1:14]).ravel()
    assert all(np.corrcoef(k, wanted)[0, 1] > 0.97 for k in kept)
    assert np.all(np.std(kept - wanted, axis=1) < 0.3), np.std(kept - wanted, axis=1)  # log |FFT| = log M + c

    (project / "images" / config.images.files[0]).write_bytes((project / "images" / config.images.files[1]).read_bytes())
    changed, other = Analyses(config, Cache(project / "cache")).maco_spectrum(params)  # the next build's: its
    # source (the files' digest) keys the spectrum and the exciters
    assert changed != source and not np.allclose(other, spectrum)
    assert exciter_key(params, changed) != exciter_key(params, source)

    model = analyses.model
    phases = np.random.default_rng(9).normal(size=(64, 1, 28, 15)).astype("float32")
    random_images = maco.as_rgb(maco.maco_image(spectrum, phases, 28)) * 255.0
    objective = unit_objective(model.features, model.features.get_layer("c3"), 64, model.preprocess, "channel")
    for u in units:
        random = keras.ops.convert_to_numpy(objective(random_images, np.full(64, u.channel, "int32")))
        assert found[u].activation > random.mean() + 3 * random.std(), (u, found[u].activation, random.max())


@pytest.mark.parametrize("crops", [0, 1, 4])
def test_crops_a_step_are_the_network_passes_and_none_is_the_whole_image(crops):
    """``maco_crops`` K: the objective sees K views of each unit's image a step (Lucid's one pass at K = 1); K = 0
    is the whole image (Xplique's nb_crops=0): a linear objective's image gradient is then its weights exactly."""
    weights = np.random.default_rng(4).normal(size=(16, 16, 3)).astype("float32")
    seen = []

    def objective(images, targets):
        seen.append(images.shape[0])
        return keras.ops.sum(images * weights, axis=(1, 2, 3)) / 255.0

    rng = np.random.default_rng(5)
    step = maco.maco_step(objective, one_over_f(3), 16, 16)
    phase = rng.normal(size=(2, 3, 16, 9)).astype("float32")
    boxes = np.concatenate([rng.uniform(0.3, 0.7, (2, crops, 2)), rng.uniform(0.2, 0.9, (2, crops, 1))], -1)
    noise = np.zeros((2 * max(crops, 1), 16, 16, 3), "float32")
    zeros = np.zeros_like(phase)
    *_, gradient = step(phase, zeros, zeros, maco.nadam_constants(1)[0], boxes.astype("float32"), noise,
                        np.array([0, 1], "int32"))
    assert set(seen) == {2 * max(crops, 1)}
    if crops == 0:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(gradient), np.abs(np.stack([weights] * 2)), rtol=1e-6)
