"""The recipe quality measures: activation ratio and plausibility, on known cases."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from generator.analysis.exciters.quality import (  # noqa: E402
    exciter_quality, layer_vectors, quality,
)
from generator.results import RecipeQuality, quality_summary  # noqa: E402
from tiny import exciter_model  # noqa: E402


def loaded(model):
    return SimpleNamespace(features=model, preprocess=lambda images: images)


def test_an_exciter_equal_to_the_best_example_scores_one():
    model = exciter_model()
    photos = np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
    vectors = layer_vectors(loaded(model), "c3", photos)
    channel = int(np.argmax(vectors.max(axis=0)))
    best = int(np.argmax(vectors[:, channel]))
    (found,) = exciter_quality(loaded(model), "c3", photos[best : best + 1], [channel], [photos[best : best + 1]])
    assert found.ratio == pytest.approx(1.0, abs=1e-6) and found.plausibility == pytest.approx(1.0, abs=1e-6)
    (against_all,) = exciter_quality(loaded(model), "c3", photos[best : best + 1], [channel], [photos])
    assert against_all.ratio == pytest.approx(1.0, abs=1e-6)  # the best of the three is the exciter itself
    assert against_all.plausibility < 1.0


def test_layer_vectors_are_the_channel_means():
    model = exciter_model()
    photos = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    maps = keras.Model(model.input, model.get_layer("c2").output)(photos)
    np.testing.assert_allclose(layer_vectors(loaded(model), "c2", photos),
                               keras.ops.convert_to_numpy(maps).mean(axis=(1, 2)), rtol=1e-5)


def test_numbers_by_hand():
    examples = np.array([[2.0, 0.0], [4.0, 2.0]])  # best value of channel 0: 4; mean vector (3, 1)
    found = quality(np.array([1.0, 3.0]), examples, 0)
    assert found.ratio == pytest.approx(0.25)
    assert found.plausibility == pytest.approx(6.0 / (math.sqrt(10) * math.sqrt(10)))
    assert math.isnan(quality(np.array([1.0, 3.0]), -examples, 0).ratio)  # no example fires: undefined
    assert math.isnan(quality(np.zeros(2), examples, 0).plausibility)


def test_quality_summary_takes_medians_of_defined_values():
    found = [RecipeQuality(1.0, 0.5), RecipeQuality(3.0, float("nan")), RecipeQuality(float("nan"), 0.7)]
    assert quality_summary(found) == {"units": 3, "median_ratio": 2.0, "median_plausibility": pytest.approx(0.6)}
