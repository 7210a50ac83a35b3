"""Circuits on tiny seeded models: kernels, input ranking and expanded weights on chains.

Expanded weights are checked against autodiff of a linearised Keras copy of the path (no bias, no
activation, AvgPool for MaxPool; ``linear_reference``), read at one target position. Merges,
BatchNorm and depthwise convs: ``test_circuits_merges.py``.
"""

import keras
import numpy as np
import pytest

from generator.analysis.circuits import (
    UnsupportedCircuit,
    direct_inputs,
    expanded_weights,
    layer_links,
    rank_inputs,
)
from generator.analysis.graph import next_conv_layer
from generator.errors import GeneratorError
from generator.results import CircuitInput, Unit

from linear_reference import gradients, linear_copy
from tiny import plain_model, residual_model, seeded, strided_model

L = keras.layers


@pytest.fixture(scope="module")
def plain():
    return plain_model()


@pytest.fixture(scope="module")
def strided():
    return strided_model()


@pytest.fixture(scope="module")
def residual():
    return residual_model()


def kernel(model, name):
    return model.get_layer(name).get_weights()[0]


def brute_force(model, source, target, channels, position):
    """d target[position, channels] / d source[y, x, i] by autodiff of a linear copy.

    Shape (H, W, C_source, len(channels)) over the whole source map.
    """
    copy = linear_copy(model, [source], target)
    return np.stack([gradients(copy, c, position)[0] for c in channels], axis=-1)


def units(layer, n):
    return [Unit(layer, i) for i in range(n)]


def direct_kernel(model, layer, channel):
    """The one source layer of ``layer``'s direct inputs and its (kh, kw, C) weights on ``channel``."""
    ((source, field),) = direct_inputs(model, layer, [channel]).sources.items()
    return source, field.weights[:, :, 0]


def test_layer_walks(plain, strided, residual):
    assert next_conv_layer(plain, "c2") == "c3"
    assert next_conv_layer(plain, "c3") is None
    assert next_conv_layer(strided, "image") == "s1"
    assert next_conv_layer(residual, "a") is None          # 'a' feeds both 'b' and the Add
    assert list(direct_inputs(plain, "c3", [0]).sources) == ["c2"]
    assert [layer.name for layer in direct_inputs(plain, "c3", [0]).crossed] == ["p1"]
    assert list(direct_inputs(residual, "c", [0]).sources) == ["a", "b"]   # both paths of the Add
    with pytest.raises(UnsupportedCircuit) as e:
        direct_inputs(plain, "c1", [0])
    assert str(e.value) == "No conv layer feeds c1: a path from the model input reaches it without passing a conv layer"


def test_incoming_kernel_and_ranking(plain):
    full = kernel(plain, "c2")
    for channel in range(5):
        source, sliced = direct_kernel(plain, "c2", channel)
        assert source == "c1"
        np.testing.assert_array_equal(sliced, full[:, :, :, channel])
        ranked = rank_inputs(sliced, units("c1", 4), top_k=3)
        norms = [float(np.linalg.norm(sliced[:, :, i])) for i in range(4)]
        order = sorted(range(4), key=lambda i: (-norms[i], i))[:3]
        assert [r.unit for r in ranked] == [Unit("c1", i) for i in order]
        for r in ranked:
            weights = sliced[:, :, r.unit.channel]
            assert r.norm == pytest.approx(norms[r.unit.channel], rel=1e-6)
            assert r.excitatory == pytest.approx(weights[weights > 0].sum(), rel=1e-6)
            assert r.inhibitory == pytest.approx(weights[weights < 0].sum(), rel=1e-6)
            assert r.inhibitory <= 0 <= r.excitatory


def test_rank_inputs_breaks_ties_by_lower_channel():
    slice_ = np.zeros((1, 1, 4), dtype="float32")
    slice_[0, 0] = [1.0, -2.0, 2.0, 1.0]
    assert rank_inputs(slice_, units("a", 4)) == (
        CircuitInput(Unit("a", 1), 1, 2.0, 0.0, -2.0), CircuitInput(Unit("a", 2), 2, 2.0, 2.0, 0.0),
        CircuitInput(Unit("a", 0), 3, 1.0, 1.0, 0.0), CircuitInput(Unit("a", 3), 4, 1.0, 1.0, 0.0))


def test_incoming_kernel_refuses_non_conv_and_bad_channel(plain):
    with pytest.raises(UnsupportedCircuit, match="MaxPooling2D"):
        direct_inputs(plain, "p1", [0])
    with pytest.raises(GeneratorError, match="channel 9 is out of range for layer 'c2', which has channels 0 to 4"):
        direct_inputs(plain, "c2", [9])
    with pytest.raises(GeneratorError, match="no layer 'nope'"):
        direct_inputs(plain, "nope", [0])


def test_adjacent_layers_give_the_kernel_itself(plain):
    np.testing.assert_array_equal(expanded_weights(plain, "c1", "c2", [4, 1]),
                                  kernel(plain, "c2")[:, :, :, [4, 1]])
    np.testing.assert_array_equal(expanded_weights(plain, "p1", "c3", [0]),
                                  kernel(plain, "c3")[:, :, :, [0]])


def test_across_a_pool_is_the_kernel_spread_over_2x2_cells(plain):
    expected = np.repeat(np.repeat(kernel(plain, "c3"), 2, axis=0), 2, axis=1) / 4
    np.testing.assert_allclose(expanded_weights(plain, "c2", "c3", range(6)), expected, rtol=1e-6)


# (source, target, target position, top-left of its receptive field on the source map)
BRUTE_FORCE_CASES = [
    ("plain", "c1", "c2", (8, 8), (7, 7)),       # 3x3 'same': rows 7..9
    ("plain", "c2", "c3", (4, 4), (6, 6)),       # p1 rows 3..5 -> c2 rows 6..11
    ("plain", "c1", "c3", (4, 4), (5, 5)),       # ... -> c1 rows 5..12
    ("strided", "s1", "s2", (4, 4), (3, 3)),     # pad rows 4..6 -> s1 rows 3..5, cols 3 and 5
    ("strided", "image", "s2", (4, 4), (6, 6)),  # stride 2: image rows 6..12
]


@pytest.mark.parametrize("model_name, source, target, position, corner", BRUTE_FORCE_CASES)
def test_expanded_weights_match_brute_force(request, model_name, source, target, position, corner):
    model = request.getfixturevalue(model_name)
    channels = [2, 0]
    got = expanded_weights(model, source, target, channels)
    full = brute_force(model, source, target, channels, position)
    (top, left), (h, w) = corner, got.shape[:2]
    np.testing.assert_allclose(got, full[top:top + h, left:left + w], rtol=1e-4, atol=1e-5)
    assert np.abs(full).sum() == pytest.approx(np.abs(got).sum(), rel=1e-4)  # nothing outside


def test_batchnorm_enters_as_its_scale(strided):
    bn = strided.get_layer("bn")
    scale = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    dilated = np.zeros((3, 3, 4, 3), dtype="float32")       # dilation 2 along x: taps 0 and 2
    dilated[:, ::2] = kernel(strided, "s2")
    np.testing.assert_allclose(expanded_weights(strided, "s1", "s2", [1]),
                               (dilated * scale[:, None])[:, :, :, [1]], rtol=1e-6)


def test_independent_of_biases_and_relu(plain):
    before = expanded_weights(plain, "c1", "c3", [0, 5])
    no_relu = plain_model(activation=None)                          # same seed, same weights
    np.testing.assert_array_equal(expanded_weights(no_relu, "c1", "c3", [0, 5]), before)
    new_biases = plain_model()
    rng = np.random.default_rng(7)
    new_biases.set_weights([rng.normal(size=w.shape) * 10 if w.ndim == 1 else w
                            for w in plain.get_weights()])
    np.testing.assert_array_equal(expanded_weights(new_biases, "c1", "c3", [0, 5]), before)


def test_channels_are_batched(plain):
    both = expanded_weights(plain, "c1", "c3", [3, 0])
    singles = [expanded_weights(plain, "c1", "c3", [c])[..., 0] for c in (3, 0)]
    np.testing.assert_array_equal(both, np.stack(singles, axis=-1))


def test_window_crops_and_pads_around_the_centre(plain):
    full = expanded_weights(plain, "c1", "c3", [1])                 # 8x8
    assert full.shape == (8, 8, 4, 1)
    cropped = expanded_weights(plain, "c1", "c3", [1], window=3)
    np.testing.assert_array_equal(cropped, full[2:5, 2:5])
    padded = expanded_weights(plain, "c1", "c3", [1], window=9)     # one zero row/col on top/left
    np.testing.assert_array_equal(padded[1:, 1:], full)
    assert not padded[0].any() and not padded[:, 0].any()


def test_backwards_paths_are_refused(plain):
    with pytest.raises(UnsupportedCircuit, match="'c3' is not upstream of 'c1'"):
        expanded_weights(plain, "c3", "c1", [0])
    with pytest.raises(UnsupportedCircuit, match="not upstream"):
        expanded_weights(plain, "c2", "c2", [0])


def test_unsupported_layers_are_named():
    image = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(3, 3, name="a")(image)
    x = L.Conv2D(2, 1, activation="relu", name="b")(x)
    x = L.Conv2D(2, 1, activation="sigmoid", name="c")(x)
    x = L.Conv2D(2, 1, name="d")(x)
    x = L.UpSampling2D(name="up")(x)
    model = keras.Model(image, L.Conv2D(2, 1, name="e")(x))
    with pytest.raises(UnsupportedCircuit) as e:
        expanded_weights(model, "d", "e", [0])
    assert str(e.value) == ("circuits: e <- d: the path goes through UpSampling2D layer 'up', which is not one of "
                            "them; paths are made linear through conv, pooling, padding, ReLU, "
                            "BatchNormalization, Add and Concatenate layers")
    with pytest.raises(UnsupportedCircuit, match="^circuits: d <- b: the path goes through Conv2D layer 'c' with "
                                                 "activation 'sigmoid', which cannot be made linear;"):
        expanded_weights(model, "b", "d", [0])
    assert expanded_weights(model, "b", "c", [0]).shape == (1, 1, 2, 1)   # the target's own activation is off the path
    assert expanded_weights(model, "a", "c", [0]).shape == (1, 1, 3, 1)   # relu of 'b' is linearised


def test_rank_inputs_ties_stay_in_channel_order_among_many():
    """Quicksort is not stable beyond 16 items: 40 equal norms must still come out 0, 1, 2, ..."""
    slice_ = np.ones((3, 3, 40), dtype="float32")
    slice_[..., 7] = 2.0
    ranked = rank_inputs(slice_, units("a", 40), top_k=40)
    assert [w.unit.channel for w in ranked] == [7, *[c for c in range(40) if c != 7]]
    assert ranked[0].norm == pytest.approx(6.0) and ranked[1].norm == pytest.approx(3.0)


def test_layer_links_are_the_frobenius_norms_of_every_kernel(plain):
    links = layer_links(plain, "c2")
    assert (links.incoming_layer, links.outgoing_layer) == ("c1", "c3")
    assert links.incoming.shape == (4, 5) and links.outgoing.shape == (5, 6)
    np.testing.assert_allclose(links.incoming, np.sqrt((kernel(plain, "c2") ** 2).sum(axis=(0, 1))), rtol=1e-6)
    np.testing.assert_allclose(links.outgoing, np.sqrt((kernel(plain, "c3") ** 2).sum(axis=(0, 1))), rtol=1e-6)
    assert layer_links(plain, "c1").incoming is None


def test_layer_records_and_lookups(plain):
    from generator.analysis.graph import check_channels, conv_layer_names, find_layer, summarise

    records = summarise(plain)
    assert [r.name for r in records] == ["c1", "c2", "p1", "c3"]
    c2 = next(r for r in records if r.name == "c2")
    assert (c2.type, c2.output_shape, c2.params, c2.channels, c2.inputs) == (
        "Conv2D", (None, 16, 16, 5), 3 * 3 * 4 * 5 + 5, 5, ("c1",))
    p1 = next(r for r in records if r.name == "p1")
    assert p1.channels == 5 and p1.params == 0
    assert conv_layer_names(records) == ["c1", "c2", "c3"]
    assert find_layer(records, "c3", "config key 'units[0].layer'", conv=True).channels == 6
    c3 = find_layer(records, "c3", "x")
    check_channels(c3, [5], "config key 'units[0].channel'")
    for bad in (-1, 6):
        with pytest.raises(GeneratorError) as e:
            check_channels(c3, [bad], "config key 'units[0].channel'")
        assert str(e.value) == (f"config key 'units[0].channel': channel {bad} is out of range for layer 'c3', "
                                f"which has channels 0 to 5")
    with pytest.raises(GeneratorError) as e:
        find_layer(records, "c9", "config key 'feature_maps.layers[0]'")
    assert str(e.value) == "config key 'feature_maps.layers[0]': the model has no layer 'c9'; did you mean 'c3', 'c2', 'c1'?"
    with pytest.raises(GeneratorError) as e:
        find_layer(records, "zzzz", "config key 'browse.layers[0]'")
    assert str(e.value).endswith("no layer 'zzzz'; run 'python -m generator layers' to list them")
    with pytest.raises(GeneratorError) as e:
        find_layer(records, "p1", "config key 'units[0].layer'", conv=True)
    assert str(e.value) == ("config key 'units[0].layer': layer 'p1' is a MaxPooling2D layer, not a convolution with "
                            "channels to analyse; conv layers: c1, c2, c3")


def test_a_rectangular_pool_spreads_the_kernel_over_its_own_cells():
    """AvgPool (2, 3): each weight is spread over 2 x 3 cells at 1/6, compared with a linear copy."""
    image = keras.Input((8, 12, 3), name="image")
    x = L.Conv2D(2, 3, padding="same", name="k1")(image)
    x = L.MaxPooling2D((2, 3), name="pool")(x)                       # 4x4
    model = seeded(keras.Model(image, L.Conv2D(3, 3, padding="same", name="k2")(x)), seed=4)
    got = expanded_weights(model, "k1", "k2", [1])
    full = brute_force(model, "k1", "k2", [1], (2, 2))
    assert got.shape == (6, 9, 2, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got, full[2:8, 3:12], rtol=1e-4, atol=1e-6)


def test_channel_and_window_bounds(plain):
    with pytest.raises(GeneratorError) as e:
        expanded_weights(plain, "c1", "c2", [5])                     # c2 has channels 0..4
    assert str(e.value) == "circuits: channel 5 is out of range for layer 'c2', which has channels 0 to 4"
    assert expanded_weights(plain, "c1", "c2", [4]).shape == (3, 3, 4, 1)
    assert expanded_weights(plain, "c1", "c3", [1], window=1).shape == (1, 1, 4, 1)
    with pytest.raises(UnsupportedCircuit) as e:
        expanded_weights(plain, "c1", "c3", [1], window=0)
    assert str(e.value) == "circuits: the window must be a positive size, not 0"


def test_relu_and_linear_convs_are_linearised_other_activations_refused():
    image = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(2, 1, activation="relu", name="r")(image)
    x = L.Conv2D(2, 1, activation="linear", name="l")(x)
    x = L.Activation("relu", name="act")(x)
    x = L.Conv2D(2, 1, activation="tanh", name="t")(x)
    x = L.BatchNormalization(axis=1, name="bn1")(x)
    model = keras.Model(image, L.Conv2D(2, 1, name="end")(x))
    assert expanded_weights(model, "r", "act", [0]).shape == (1, 1, 2, 1)
    with pytest.raises(UnsupportedCircuit) as e:
        expanded_weights(model, "l", "end", [0])
    assert str(e.value) == ("circuits: end <- l: the path goes through BatchNormalization layer 'bn1' over axis 1; "
                            "paths are made linear through conv, pooling, padding, ReLU, BatchNormalization, Add "
                            "and Concatenate layers")
    assert expanded_weights(model, "act", "t", [0]).shape == (1, 1, 2, 1)   # its own tanh is off the path
