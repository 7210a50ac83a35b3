"""CRAFT concepts (generator.analysis.concepts): against Xplique 2.0.2's CraftTf, and known answers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from generator.analysis import concepts
from generator.analysis.after_layer import LayerHead
from generator.analysis.concepts import ClassImages, ConceptSettings, class_concepts
from generator.errors import GeneratorError
from generator.models import LoadedModel, ModelSpec
from tiny import residual_model, tiny_classifier

L = keras.layers
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0]], np.uint8)


def loaded(model, preprocess=lambda x: x / 127.5 - 1, kind="classes"):
    return LoadedModel(ModelSpec("tiny", "x"), model, preprocess, kind, None, network=model)


def blue_mean_model(channels: int = 32):
    """pixels/255 -> 1x1 conv "c" (channel 2 is blue, the others red or green) -> its channel 2's mean."""
    x = inputs = keras.Input((None, None, 3))
    kernel = np.zeros((1, 1, 3, channels), np.float32)
    kernel[0, 0, [0 if c % 2 else 1 for c in range(channels)], range(channels)] = 1.0
    kernel[0, 0, :, 2] = [0, 0, 1]
    conv = L.Conv2D(channels, 1, activation="relu", name="c")
    x = L.GlobalAveragePooling2D()(conv(x))
    dense = L.Dense(1, name="score")
    model = keras.Model(inputs, dense(x))
    conv.set_weights([kernel, np.zeros(channels, np.float32)])
    dense.set_weights([np.eye(channels, 1, -2, dtype=np.float32), np.zeros(1, np.float32)])
    return model


def block_images(n: int = 8, size: int = 32, seed: int = 0) -> np.ndarray:
    """Images of four quadrants, each pure red, green, blue or black, one of them blue at least (the class's
    images: an image without blue leaves the score constant, and per-image Sobol indices undefined)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 3), np.uint8)
    for image in images:
        for quadrant in quadrants(size):
            image[quadrant] = COLOURS[rng.integers(4)]
        image[quadrants(size)[0]] = COLOURS[2]
    return images


def quadrants(size: int) -> list[tuple[slice, slice]]:
    """The four quadrants of a size x size image, row by row."""
    half = size // 2
    return [(slice(top, top + half), slice(left, left + half)) for top in (0, half) for left in (0, half)]


def patchwork(n: int, size: int = 32, seed: int = 4) -> np.ndarray:
    """Images in [-1, 1] of four quadrants of random colours, half of them striped."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 3), np.float32)
    for image in images:
        for rows, cols in quadrants(size):
            image[rows, cols] = rng.uniform(-1, 1, 3)
            if rng.random() < 0.5:
                image[rows.start:rows.stop:2, cols] *= -1
    return images


def test_a_score_that_is_one_channels_mean_has_one_concept_that_carries_it():
    model, pixels = blue_mean_model(), block_images()
    settings = ConceptSettings(concepts=4, crops=12, design=32, random_directions=40)
    found = class_concepts(loaded(model, lambda x: x / 255.0), "c", ClassImages("blue", 0, "folder", (), pixels),
                           settings)
    first = found.concepts[0]
    assert first.vector[2] > 0.99 and first.channels[0].channel == 2  # aligned with the blue channel
    assert first.importance > 0.95 and sum(c.importance for c in found.concepts) == pytest.approx(1.0)
    score = float(np.mean(model(pixels.astype("float32") / 255.0)))
    assert found.mean_score == pytest.approx(score, rel=0.02)
    assert first.deletion_drop == pytest.approx(score, rel=0.02)  # zeroing it takes the whole score
    assert all(abs(c.deletion_drop) < 0.02 * score for c in found.concepts[1:])
    assert 0 <= found.random_floor < 0.1 * score and found.deletion_correlation == 1.0
    assert found.head == "the model after c" and found.embedding.shape == (8, 2)
    assert first.maps.shape == (8, 32, 32) and found.dominant.shape == (8,)
    assert all(c.image < 8 and c.box[2] == c.box[3] == 10 for c in first.crops) and len(first.crops) == 10
    values = [c.value for c in first.crops]
    assert values == sorted(values, reverse=True)


def test_concepts_and_importances_agree_with_xplique_craft():
    xplique_concepts = pytest.importorskip("xplique.concepts")
    model = tiny_classifier(seed=3)
    scaled = keras.Input((None, None, 3))  # x10: activations large enough for Xplique's L1 penalty to leave them apart
    latent = keras.Model(scaled, model.get_layer("c3")(model.get_layer("p1")(model.get_layer("c2")(
        model.get_layer("c1")(scaled * 10.0)))))
    tail = keras.Sequential([keras.Input((None, None, 8)), L.GlobalAveragePooling2D(), L.Dense(5, activation="softmax")])
    tail.layers[-1].set_weights(model.get_layer("head").get_weights())
    pixels = patchwork(16)
    craft = xplique_concepts.CraftTf(latent, tail, number_of_concepts=4, batch_size=16, patch_size=16)
    crops, _, bank = craft.fit(pixels, class_id=1)
    reference = craft.estimate_importance(nb_design=32)

    resized = keras.ops.image.resize(crops, (32, 32), interpolation="bicubic")  # as Xplique reads them
    f = concepts.factorise(np.asarray(latent(resized)).mean(axis=(1, 2)), 4, seed=0, sparsity=0.01)
    cosines = (f.w @ (bank / np.linalg.norm(bank, axis=1, keepdims=True)).T)
    pairs = cosines.argmax(axis=1)
    assert sorted(pairs) == [0, 1, 2, 3] and cosines[range(4), pairs].min() >= 0.99

    def score(image, a):
        return np.asarray(tail(a))[:, 1]

    ours = concepts.sobol_importance(f.transform(np.asarray(latent(pixels))), f.w, score, 32)
    assert concepts.rank_agreement(ours, reference[pairs]) >= 0.9
    np.testing.assert_allclose(ours, reference[pairs], rtol=0.05, atol=1e-3)


def test_halton_design_and_jansen_estimator_match_xplique():
    pytest.importorskip("xplique")
    from xplique.attributions.global_sensitivity_analysis import HaltonSequenceRS, JansenEstimator

    masks = concepts.halton_masks(5, 16)
    np.testing.assert_array_equal(masks, np.asarray(HaltonSequenceRS()(5, nb_design=16)))
    outputs = np.sin(masks @ np.arange(1, 6)) + masks[:, 0] * masks[:, 3]
    np.testing.assert_allclose(concepts.jansen_total(outputs, 16, 5),
                               np.asarray(JansenEstimator()(masks, outputs.astype(np.float32), 16)), rtol=1e-4)


def test_the_head_of_a_residual_layer_holds_the_skip_path_and_reproduces_the_model():
    model = residual_model()
    head = LayerHead.of(loaded(model, lambda x: x, "map"), "b", None)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3)).astype(np.uint8)
    activations, held = head.encode(pixels)
    assert not head.exact and len(held) == 1 and "held at their values" in head.words
    expected = np.asarray(model(pixels.astype("float32"))).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(head.scores(activations, held), expected, rtol=1e-5)


def test_a_layer_that_does_not_reach_the_score_is_refused_in_one_line():
    x = inputs = keras.Input((None, None, 3))
    a = L.Conv2D(2, 1, name="a")(x)
    features = keras.Model(inputs, L.Conv2D(2, 1, name="unused")(a))  # as vgg16-hed's block5_pool
    model = LoadedModel(ModelSpec("two", "x"), features, lambda x: x, "map", None,
                        network=keras.Model(inputs, L.GlobalAveragePooling2D()(a)))
    with pytest.raises(GeneratorError, match="^classes.layer 'unused' does not reach the model's output"):
        LayerHead.of(model, "unused", None)
    with pytest.raises(GeneratorError, match=r"^classes.layer 'nope' is not a layer of the model; run 'python -m "
                                             r"generator layers' to list them$"):
        LayerHead.of(model, "nope", None)


def test_the_edge_detectors_output_has_concepts_at_its_last_side_layer():
    from generator.analysis.after_layer import last_spatial_layer
    from generator.config import ModelSection
    from generator.models import load_model
    from PIL import Image

    from tiny import REPO

    hed = load_model(ModelSection(name="vgg16-hed", weights="bundled"), REPO)
    layer = last_spatial_layer(hed)
    assert layer == "block5_conv3"  # block5_pool feeds no side output
    files = [REPO / "images" / name for name in ("chelsea.jpg", "rocket.jpg")]
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB").resize((64, 64))) for p in files])
    head = LayerHead.of(hed, layer, None)
    activations, held = head.encode(pixels)
    assert not head.exact and activations.shape == (2, 4, 4, 512)
    np.testing.assert_allclose(head.scores(activations, held), np.asarray(hed.predict(pixels.astype("float32"))).mean(
        axis=(1, 2, 3)), rtol=1e-4)
    settings = ConceptSettings(concepts=3, crops=2, design=4, random_directions=2)
    found = class_concepts(hed, layer, ClassImages("output", None, "all", tuple(files), pixels), settings)
    assert found.score == "the mean of the model's output map" and len(found.concepts) == 3
    assert "held at their values" in found.head and found.concepts[0].vector.shape == (512,)


def test_a_layer_called_twice_is_refused_and_not_the_default():
    from generator.analysis.after_layer import last_spatial_layer

    x = inputs = keras.Input((None, None, 3))
    shared = L.Conv2D(3, 1, activation="relu", name="shared")
    y = L.Conv2D(4, 1, activation="relu", name="once")(shared(shared(x)))
    model = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(y)))
    with pytest.raises(GeneratorError, match="^classes.layer"):
        LayerHead.of(loaded(model), "shared", 0)
    assert last_spatial_layer(loaded(model)) == "once"


def test_a_one_pixel_crop_is_that_pixel_everywhere():
    pixels = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(1, 8, 8, 3)
    crops = concepts.cut_crops(pixels, np.array([[0, 2, 3, 1, 1]]), 4)
    assert crops.shape == (1, 4, 4, 3)
    assert np.array_equal(crops[0], np.broadcast_to(pixels[0, 2, 3], (4, 4, 3)))


def test_the_images_scored_side_by_side_give_each_image_its_own_scores_in_order():
    rng = np.random.default_rng(0)
    coefficients, w = rng.random((5, 3, 3, 4)).astype(np.float32), rng.random((4, 6)).astype(np.float32)
    def head(image, a):  # a score that depends on the image and on its activations
        return a.sum(axis=(1, 2, 3)).astype(np.float64) * (image + 1)

    masks = concepts.halton_masks(4, 8)
    serial = [concepts.jansen_total(concepts.masked_scores(head, i, masks, u, w), 8, 4) for i, u in enumerate(coefficients)]
    np.testing.assert_array_equal(concepts.sobol_importance(coefficients, w, head, 8), np.mean(serial, axis=0))
    assert concepts.each_image(lambda i, u: (i, float(u.sum())), coefficients) == [
        (i, float(u.sum())) for i, u in enumerate(coefficients)]
    drops, mean_score = concepts.deletion_drops(coefficients, w, head)
    full = [head(i, (u @ w)[None])[0] for i, u in enumerate(coefficients)]
    assert drops.shape == (4,) and mean_score == pytest.approx(np.mean(full), rel=1e-6)
