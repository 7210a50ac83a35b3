"""Activations by layer name and predictions, on a tiny seeded model and a stand-in loaded model; and the build's
image analyses of them, in chunks over a partly cached set."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np

from generator.seeding import seed_weights
from generator.analysis.activations import layer_activations
from generator.results import ClassScore, Prediction
from generator.analysis.predictions import predict


def tiny():
    seed_weights(3)
    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="a")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="b")(x)
    return keras.Model(inputs, x)


def test_layer_activations_are_the_named_layers_outputs_after_preprocessing():
    model = tiny()
    loaded = SimpleNamespace(features=model, preprocess=lambda x: x / 255.0 - 0.5)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    inputs = pixels.astype("float32") / 255.0 - 0.5
    for names, compiled in ((["b", "a"], False), (["a"], False), (["b", "a"], True), (["a"], True)):
        out = layer_activations(loaded, pixels, names, compiled)
        assert list(out) == names
        for name in names:
            want = keras.ops.convert_to_numpy(keras.Model(model.input, model.get_layer(name).output)(inputs))
            assert isinstance(out[name], np.ndarray)
            np.testing.assert_allclose(out[name], want, rtol=1e-5, atol=1e-6)
    assert layer_activations(loaded, pixels, ["b"])["b"].shape == (2, 8, 8, 3)


def test_predict_classes_ranks_the_top_five():
    seen = []

    def model_predict(batch):
        seen.append((batch.shape, batch.dtype))
        return np.array([[0.1, 0.5, 0.05, 0.2, 0.1, 0.05]])

    def names(probabilities):
        order = np.argsort(-probabilities[0])[:5]
        return [[(int(i), f"class {i}", float(probabilities[0, i])) for i in order]]

    loaded = SimpleNamespace(predict=model_predict, output_kind="classes", class_names=names, head=None)
    (result,) = predict(loaded, np.zeros((1, 4, 4, 3), np.uint8))
    assert seen == [((1, 4, 4, 3), np.dtype("float32"))]
    assert result == Prediction(top5=(
        ClassScore(1, 1, "class 1", 0.5), ClassScore(2, 3, "class 3", 0.2), ClassScore(3, 0, "class 0", 0.1),
        ClassScore(4, 4, "class 4", 0.1), ClassScore(5, 2, "class 2", 0.05),
    ))


def test_predict_map_is_each_images_first_channel():
    output = np.arange(2 * 3 * 3 * 2, dtype=np.float64).reshape(2, 3, 3, 2)
    loaded = SimpleNamespace(predict=lambda batch: output, output_kind="map", class_names=None)
    results = predict(loaded, np.zeros((2, 3, 3, 3), np.uint8))
    assert len(results) == 2
    for k, result in enumerate(results):
        assert result.top5 == () and result.output_map.dtype == np.float32
        np.testing.assert_array_equal(result.output_map, output[k, ..., 0])


def _images_and_analyses(tmp_path, tiny_model_file, n: int):
    """``n`` small images of a tiny project and its Analyses (an empty cache)."""
    from generator.analyses import Analyses
    from generator.cache import Cache
    from generator.config import load_config
    from generator.images import load_images

    from tiny import edit_config, make_project, write_images

    project = make_project(tmp_path, tiny_model_file)
    names = write_images(project / "images", n=n, size=36)
    edit_config(project, images={"files": names})
    config = load_config(project / "site_config.yaml")
    images = load_images([project / "images" / name for name in names], config.images.size)
    return images, Analyses(config, Cache(project / "cache"))


def test_images_analyses_over_more_than_a_chunk_with_part_cached(tmp_path, tiny_model_file):
    """11 images (two chunks of 8 and 3), one image's c1 already cached: every image's activations at each layer
    and its prediction are its own, as one image alone through the model gives them."""
    images, analyses = _images_and_analyses(tmp_path, tiny_model_file, 11)
    cached = analyses.activations(images[9:10], ["c1"])[images[9].slug]["c1"]
    every = analyses.activations(images, ["c1", "c2"])
    predictions = analyses.predictions(images)
    assert list(every) == list(predictions) == [im.slug for im in images]
    np.testing.assert_array_equal(every[images[9].slug]["c1"], cached)
    for im in images:
        alone = layer_activations(analyses.model, im.pixels[None], ["c1", "c2"])
        for name in ("c1", "c2"):
            np.testing.assert_allclose(every[im.slug][name], alone[name][0], rtol=1e-5, atol=1e-6)
        (expected,) = predict(analyses.model, im.pixels[None])
        got = predictions[im.slug]
        assert [s.id for s in got.top5] == [s.id for s in expected.top5]
        np.testing.assert_allclose([s.probability for s in got.top5], [s.probability for s in expected.top5],
                                   rtol=1e-5)


def test_activation_groups_of_several_images_side_by_side_are_each_images_own(tmp_path, tiny_model_file, monkeypatch):
    """Five images' groups, one already cached, the rest factorised in threads: each is what its activations alone
    give, in image order, and every factorisation ran on one BLAS thread (its bytes as on any machine)."""
    from threadpoolctl import threadpool_info

    from generator.analysis import groups

    images, analyses = _images_and_analyses(tmp_path, tiny_model_file, 5)
    config = analyses.config
    rng = np.random.default_rng(4)
    activations = {im.slug: (rng.random((6, 6, 8)) ** 3).astype(np.float32) for im in images}
    first = analyses.activation_groups(images[2:3], "c2", activations)[images[2].slug]
    threads, factorise = [], groups.activation_groups

    def recorded(*args):
        threads.append({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
        return factorise(*args)

    monkeypatch.setattr(groups, "activation_groups", recorded)
    found = analyses.activation_groups(images, "c2", activations)
    assert list(found) == [im.slug for im in images] and len(threads) == 4 and all(t == {1} for t in threads)
    for im in images:
        alone = factorise(activations[im.slug], config.groups.count, config.exciters.seed)
        np.testing.assert_array_equal(found[im.slug].maps, alone.maps)
        np.testing.assert_array_equal(found[im.slug].directions, alone.directions)
        assert (found[im.slug].error, found[im.slug].random_error) == (alone.error, alone.random_error)
    np.testing.assert_array_equal(found[images[2].slug].maps, first.maps)
