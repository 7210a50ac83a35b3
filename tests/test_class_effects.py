"""Class effects: gradient x activation of each logit over a unit's channel, for all units of a layer at once."""

import numpy as np
import pytest

from generator.analysis.activations import layer_activations
from generator.analysis.class_effects import class_effects, class_names
from generator.models import LoadedModel, ModelSpec

from tiny import tiny_classifier


def loaded(model):
    return LoadedModel(ModelSpec("tiny", "x"), model, lambda x: x / 127.5 - 1, "classes", None,
                       class_names=lambda p: [[(int(i), f"class{i}", float(r[i]))] for r, i in zip(p, p.argmax(1))],
                       network=model)


@pytest.fixture(scope="module")
def tiny():
    model = tiny_classifier()
    pixels = np.random.default_rng(0).integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    return loaded(model), pixels


def test_a_linear_head_gives_its_weights_times_the_mean_activation(tiny):
    model, pixels = tiny
    effects = class_effects(model, "c3", pixels)
    kernel = model.network.get_layer("head").kernel.numpy()  # (8 channels, 5 classes)
    mean = layer_activations(model, pixels, ["c3"])["c3"].mean(axis=(0, 1, 2))  # over images and positions
    assert effects.shape == (5, 8)
    np.testing.assert_allclose(effects, (kernel * mean[:, None]).T, rtol=1e-4, atol=1e-6)


def test_an_earlier_layer_matches_finite_differences_of_scaling_the_channel(tiny):
    model, pixels = tiny
    net = model.network
    effects = class_effects(model, "c2", pixels)
    acts = layer_activations(model, pixels, ["c2"])["c2"]
    head = net.get_layer("head")

    def logits(a):  # the network after c2, to the head's pre-activation
        h = net.get_layer("gap")(net.get_layer("c3")(net.get_layer("p1")(a)))
        return (h.numpy().astype(np.float64) @ head.kernel.numpy()) + head.bias.numpy()

    eps = 1e-3
    for c in range(acts.shape[-1]):
        scale = np.ones(acts.shape[-1], np.float32)
        up, down = scale.copy(), scale.copy()
        up[c], down[c] = 1 + eps, 1 - eps
        numeric = (logits(acts * up) - logits(acts * down)).mean(axis=0) / (2 * eps)
        np.testing.assert_allclose(effects[:, c], numeric, rtol=2e-2, atol=2e-3)


def test_class_names_come_from_the_models_decoder(tiny):
    model, _ = tiny
    assert class_names(model, 3) == ["class0", "class1", "class2"]
