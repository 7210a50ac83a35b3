"""Circuits through BatchNormalization, Add, Concatenate, depthwise and separable convs.

Every number is checked against autodiff of a linearised Keras copy of the graph
(``linear_reference``), read at the centre of the target map. BatchNorm statistics span five
orders of magnitude and one gamma is negative (seeded BatchNorm has scale 1 and hides a missing
fold).
"""

import keras
import numpy as np
import pytest

from generator.analysis.circuits import circuit, direct_inputs, expanded_weights, layer_links
from generator.results import Unit

from linear_reference import centre, gradients, linear_copy, support
from tiny import seeded

L = keras.layers
GAMMA = np.array([1e-3, -2.0, 30.0, 0.5], dtype="float32")
VARIANCE = np.array([1e-2, 100.0, 1e-3, 0.3], dtype="float32")


def far_from_one(model, *names):
    """BatchNorm layers ``names`` (4 channels each) get scales 0.01, -0.2, 950, 0.9 and nonzero shifts."""
    for name in names:
        layer = model.get_layer(name)
        layer.set_weights([GAMMA, np.full(4, 3.0, "float32"), np.full(4, -1.0, "float32"), VARIANCE])
    return model


def scale(model, name):
    bn = model.get_layer(name)
    return bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)


def bn_model():
    image = keras.Input((12, 12, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", name="a")(image)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    return far_from_one(seeded(keras.Model(image, L.Conv2D(3, 3, padding="same", name="b")(x)), seed=3), "bn")


def residual_model(size=12, stride=1):
    """a -> [m1 (stride) -> bn -> relu -> m2] + [shortcut 1x1 (stride)] -> relu -> c."""
    image = keras.Input((size, size, 3), name="image")
    a = L.Conv2D(4, 3, padding="same", name="a")(image)
    m = L.Conv2D(4, 3, strides=stride, padding="same", activation="relu", name="m1")(a)
    m = L.BatchNormalization(name="bn")(m)
    m = L.Conv2D(4, 3, padding="same", name="m2")(m)
    short = L.Conv2D(4, 1, strides=stride, padding="same", name="short")(a) if stride > 1 else a
    x = L.ReLU(name="relu")(L.Add(name="add")([m, short]))
    return far_from_one(seeded(keras.Model(image, L.Conv2D(3, 3, padding="same", name="c")(x)), seed=4), "bn")


def inception_model():
    """stem -> four branches (1x1; 1x1 -> 3x3; max-pool -> 1x1; BatchNorm of the stem itself) -> concat -> t."""
    image = keras.Input((14, 14, 3), name="image")
    stem = L.Conv2D(4, 3, padding="same", activation="relu", name="stem")(image)
    b1 = L.Conv2D(3, 1, name="b1")(stem)
    b2 = L.Conv2D(3, 3, padding="same", name="b2")(L.Conv2D(2, 1, activation="relu", name="b2_reduce")(stem))
    b3 = L.Conv2D(2, 1, name="b3")(L.MaxPooling2D(3, strides=1, padding="same", name="pool")(stem))
    b4 = L.BatchNormalization(name="bn")(stem)
    mix = L.Concatenate(name="mix")([b1, b2, b3, b4])
    return far_from_one(seeded(keras.Model(image, L.Conv2D(5, 3, padding="same", name="t")(mix)), seed=5), "bn")


def depthwise_model():
    """a -> bn -> depthwise (x2) -> bn2 -> relu -> pointwise p -> separable s."""
    image = keras.Input((12, 12, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", name="a")(image)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(L.BatchNormalization(name="bn")(x))
    x = L.ReLU(name="relu")(L.BatchNormalization(name="bn2")(x))
    x = L.Conv2D(4, 1, name="p")(x)
    model = seeded(keras.Model(image, L.SeparableConv2D(3, 3, depth_multiplier=2, padding="same", name="s")(x)), 6)
    return far_from_one(model, "bn")


def check_direct(model, target, channel, sources):
    """Direct inputs of ``target`` channel ``channel`` equal the gradients of the linear copy whose inputs are ``sources``."""
    carried = direct_inputs(model, target, [channel])
    assert list(carried.sources) == sources
    copy = linear_copy(model, sources, target)
    for name, gradient in zip(sources, gradients(copy, channel, centre(copy))):
        got = carried.sources[name].weights[:, :, 0]
        top, left, h, w = support(gradient)
        assert (h, w) == got.shape[:2], name
        np.testing.assert_allclose(got, gradient[top:top + h, left:left + w], rtol=1e-5,
                                   atol=1e-6 * np.abs(gradient).max())
    return carried


def check_expanded(model, source, target, channels, image_size=None):
    """Expanded weights equal the gradient of the linear copy from ``source``, over the union of the paths' fields."""
    got = expanded_weights(model, source, target, channels, image_size=image_size)
    copy = linear_copy(model, [source], target)
    for k, channel in enumerate(channels):
        gradient = gradients(copy, channel, centre(copy))[0]
        top, left, h, w = support(gradient)
        assert (h, w) == got.shape[:2]
        np.testing.assert_allclose(got[..., k], gradient[top:top + h, left:left + w], rtol=1e-5,
                                   atol=1e-6 * np.abs(gradient).max())
    return got


# --- BatchNormalization between two convs ----------------------------------------------------


def test_batchnorm_is_folded_into_direct_weights():
    model = bn_model()
    s = scale(model, "bn")
    assert s.min() < -0.1 and np.abs(s).max() / np.abs(s).min() > 1e4
    kernel = model.get_layer("b").kernel.numpy()
    for channel in range(3):
        carried = check_direct(model, "b", channel, ["a"])
        np.testing.assert_allclose(carried.sources["a"].weights[:, :, 0], kernel[..., channel] * s, rtol=1e-6)
    c = circuit(model, Unit("b", 1), top_k=4)
    raw = np.sqrt((kernel[..., 1] ** 2).sum(axis=(0, 1)))
    assert [w.unit.channel for w in c.direct.inputs] == list(np.argsort(-raw * np.abs(s), kind="stable"))
    assert [w.unit.channel for w in c.direct.inputs][0] == 2                       # scale 950 dominates
    flipped = next(w for w in c.direct.inputs if w.unit.channel == 1)              # negative scale: signs swap
    assert flipped.excitatory == pytest.approx(s[1] * np.minimum(kernel[..., 1, 1], 0).sum(), rel=1e-5)
    assert flipped.inhibitory == pytest.approx(s[1] * np.maximum(kernel[..., 1, 1], 0).sum(), rel=1e-5)
    assert c.direct.note == ("BatchNormalization scales gamma / sqrt(variance + epsilon) folded in (a negative one "
                             "flips the sign): 'bn'")
    links = layer_links(model, "b")
    np.testing.assert_allclose(links.incoming, np.sqrt(((kernel * s[:, None]) ** 2).sum(axis=(0, 1))), rtol=1e-5)
    assert links.incoming_layer == "a" and layer_links(model, "a").outgoing_layer == "b"


def test_batchnorm_is_folded_into_expanded_weights():
    check_expanded(bn_model(), "image", "b", [0, 2])


# --- Add: residual blocks --------------------------------------------------------------------


def test_residual_direct_inputs_come_from_both_paths():
    model = residual_model()
    carried = check_direct(model, "c", 2, ["a", "m2"])
    kernel = model.get_layer("c").kernel.numpy()[..., 2]
    for name in ("a", "m2"):                                     # the Add hands the kernel to both paths
        np.testing.assert_array_equal(carried.sources[name].weights[:, :, 0], kernel)
    c = circuit(model, Unit("c", 2), top_k=3, earlier_layer="a")
    assert c.direct.layers == ("a", "m2") and len(c.direct.inputs) == 8
    assert c.direct.note == "paths summed at Add 'add'"
    assert c.expanded.supported and c.edges == ()                # 'a' is itself a direct layer: no edges


def test_residual_expanded_weights_sum_the_paths():
    model = residual_model()
    got = check_expanded(model, "a", "c", [0, 2])
    assert got.shape[:2] == (7, 7)                              # c 3x3 after m2 3x3 after m1 3x3
    identity = expanded_weights(model, "a", "c", [0], window=3)[..., 0]
    through_block = expanded_weights(model, "m2", "c", [0])[..., 0]
    assert not np.allclose(identity, through_block)             # the residual path adds to the block's path
    c = circuit(model, Unit("c", 0), top_k=2, earlier_layer="m1")
    assert c.direct.layers == ("a", "m2") and {e.target.layer for e in c.edges} == {"m2"}
    assert c.expanded.note == ("BatchNormalization scales gamma / sqrt(variance + epsilon) folded in (a negative "
                               "one flips the sign): 'bn'; paths summed at Add 'add'")


@pytest.mark.parametrize("size", [21, 22])
def test_strided_paths_line_up_at_odd_and_even_sizes(size):
    """Stride 2 'same' pads one row less on top for even sizes: the paths' fields then shift against each other."""
    model = residual_model(size, stride=2)
    got = check_expanded(model, "a", "c", [1])
    assert list(direct_inputs(model, "c", [1]).sources) == ["m2", "short"]
    free = residual_model(None, stride=2)
    free.set_weights(model.get_weights())
    np.testing.assert_allclose(expanded_weights(free, "a", "c", [1], image_size=size), got, rtol=1e-6)
    if size % 2 == 0:   # with the size unknown, sizes are taken as multiples of the stride
        np.testing.assert_allclose(expanded_weights(free, "a", "c", [1]), got, rtol=1e-6)


def test_circuit_edges_across_a_strided_merge_use_the_image_size():
    """The edges 'a' -> 'c' of a unit after 'c' cross the strided block: at an odd size on a model of free
    input size, they are the fixed-size model's only with ``image_size`` (its paths shift otherwise)."""
    def after_block(size):
        block = residual_model(size, stride=2)
        return seeded(keras.Model(block.input, L.Conv2D(2, 3, padding="same", name="e")(block.output)), seed=5)

    fixed, free = after_block(21), after_block(None)
    free.set_weights(fixed.get_weights())
    want = circuit(fixed, Unit("e", 1), top_k=2, earlier_layer="a")
    assert want.direct.layers == ("c",) and len(want.edges) == 4
    between = expanded_weights(fixed, "a", "c", [t.unit.channel for t in want.direct.top])
    pairs = [(w.unit.channel, k) for k in range(2) for w in want.expanded.top]
    assert [e.norm for e in want.edges] == pytest.approx([np.linalg.norm(between[:, :, i, k]) for i, k in pairs], rel=1e-6)
    assert [e.net for e in want.edges] == pytest.approx([between[:, :, i, k].sum() for i, k in pairs], rel=1e-5)
    got = circuit(free, Unit("e", 1), top_k=2, earlier_layer="a", image_size=21)
    assert [(e.source, e.target) for e in got.edges] == [(e.source, e.target) for e in want.edges]
    assert [e.norm for e in got.edges] == pytest.approx([e.norm for e in want.edges], rel=1e-6)
    unsized = circuit(free, Unit("e", 1), top_k=2, earlier_layer="a")
    assert [e.norm for e in unsized.edges] != pytest.approx([e.norm for e in want.edges], rel=1e-3)


# --- Concatenate: an Inception-like block ----------------------------------------------------


def test_inception_unit_lists_inputs_from_every_branch():
    model = inception_model()
    carried = check_direct(model, "t", 3, ["stem", "b1", "b2", "b3"])
    kernel = model.get_layer("t").kernel.numpy()[..., 3]             # channels: b1 0-2, b2 3-5, b3 6-7, bn 8-11
    np.testing.assert_array_equal(carried.sources["b2"].weights[:, :, 0], kernel[..., 3:6])
    np.testing.assert_allclose(carried.sources["stem"].weights[:, :, 0], kernel[..., 8:] * scale(model, "bn"),
                               rtol=1e-6)
    c = circuit(model, Unit("t", 3), top_k=12, earlier_layer="stem")
    assert c.direct.layers == ("stem", "b1", "b2", "b3")
    assert sorted(str(w.unit) for w in c.direct.inputs) == sorted(
        [f"stem:{i}" for i in range(4)] + [f"b1:{i}" for i in range(3)] + [f"b2:{i}" for i in range(3)]
        + ["b3:0", "b3:1"])
    assert "channels followed to their own branch at Concatenate 'mix'" in c.direct.note
    assert c.expanded.supported and c.edges == ()


def test_inception_expanded_weights_route_each_branch():
    model = inception_model()
    got = check_expanded(model, "stem", "t", [0, 4])
    assert got.shape[:2] == (5, 5)
    check_expanded(model, "b2_reduce", "t", [1])                    # one branch only: the others do not depend on it
    c = circuit(model, Unit("t", 0), top_k=3, earlier_layer="b2_reduce")
    assert {e.target.layer for e in c.edges} <= {"b2"} and all(e.source.layer == "b2_reduce" for e in c.edges)


# --- depthwise and separable convs -----------------------------------------------------------


def test_a_depthwise_channel_has_one_input():
    model = depthwise_model()
    kernel = model.get_layer("dw").kernel.numpy()       # (3, 3, 4, 2)
    for channel in (0, 5, 7):
        carried = check_direct(model, "dw", channel, ["a"])
        assert list(np.flatnonzero(carried.sources["a"].reached)) == [channel // 2]
    c = circuit(model, Unit("dw", 5), top_k=3)
    assert [str(w.unit) for w in c.direct.inputs] == ["a:2"]
    np.testing.assert_allclose(c.direct.top_kernels[..., 0], kernel[:, :, 2, 1] * scale(model, "bn")[2], rtol=1e-6)
    assert c.direct.note.startswith("'dw' is a DepthwiseConv2D: its channel c = k*2 + j reads input channel k alone")
    assert [str(link.unit) for link in layer_links(model, "dw").incoming_of(5, 3)] == ["a:2"]


def test_pointwise_and_separable_weights():
    model = depthwise_model()
    check_direct(model, "p", 3, ["dw"])
    carried = check_direct(model, "s", 1, ["p"])                   # depthwise and pointwise folded into one kernel
    assert carried.sources["p"].weights.shape == (3, 3, 1, 4)
    assert circuit(model, Unit("s", 1), top_k=2).direct.note.startswith("'s' is a SeparableConv2D")
    check_expanded(model, "a", "s", [0, 2])


# --- what cannot be made linear --------------------------------------------------------------


@pytest.mark.parametrize("between, named", [
    (L.LayerNormalization(name="ln"), "LayerNormalization layer 'ln', which divides each position by its own spread "
                                      "over channels: no fixed weight folds it"),
    (L.Activation("swish", name="act"), "Activation layer 'act' with activation 'silu', which cannot be made linear"),
])
def test_layers_that_cannot_be_folded_are_named_in_one_line(between, named):
    image = keras.Input((8, 8, 3), name="image")
    x = between(L.Conv2D(4, 3, name="a")(image))
    model = seeded(keras.Model(image, L.Conv2D(2, 3, name="b")(x)))
    c = circuit(model, Unit("b", 0), top_k=3, earlier_layer="a")
    assert not c.supported and "\n" not in c.direct.reason
    assert c.direct.reason == (f"circuits: direct inputs of b: the path goes through {named}; paths are made linear "
                               f"through conv, pooling, padding, ReLU, BatchNormalization, Add and Concatenate layers")
    assert layer_links(model, "b").incoming is None


# --- real architectures ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("make, source, target, size, after_merge", [
    (keras.applications.ResNet50, "conv2_block2_3_conv", "conv3_block1_2_conv", 64, "conv3_block1_1_conv"),  # Adds
    (keras.applications.InceptionV3, "conv2d_12", "conv2d_19", 75, "conv2d_19"),  # Concatenate, BN scale=False
])
def test_keras_applications_match_autodiff(make, source, target, size, after_merge):
    rng = np.random.default_rng(0)
    model = make(weights=None, include_top=False, input_shape=(size, size, 3))
    for layer in model.layers:                            # scales from 1e-3 to 1e3, half of them negative
        if isinstance(layer, L.BatchNormalization):
            *weights, variance = layer.get_weights()
            n = variance.shape[0]
            if layer.gamma is not None:
                weights[0] = (rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-2, 1, n)).astype("float32")
            layer.set_weights([*weights, (10.0 ** rng.uniform(-3, 2, n)).astype("float32")])
    check_expanded(model, source, target, [0, 5])
    assert len(circuit(model, Unit(after_merge, 2), top_k=3).direct.layers) == 4


def test_a_note_names_every_layer_of_a_kind_and_the_circuit_keeps_its_unit():
    image = keras.Input((10, 10, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", name="a")(image)
    x = L.Conv2D(4, 3, padding="same", name="m")(L.ReLU(name="r1")(L.BatchNormalization(name="bn1")(x)))
    x = L.ReLU(name="r2")(L.BatchNormalization(name="bn2")(x))
    model = far_from_one(seeded(keras.Model(image, L.Conv2D(2, 3, padding="same", name="c")(x)), seed=6), "bn1", "bn2")
    alone = circuit(model, Unit("c", 1), top_k=2)
    assert alone.unit == Unit("c", 1) and alone.expanded is None
    c = circuit(model, Unit("c", 1), top_k=2, earlier_layer="a")
    assert c.unit == Unit("c", 1)
    names = c.expanded.note.rpartition(": ")[2]
    assert names in ("'bn1', 'bn2'", "'bn2', 'bn1'"), c.expanded.note


# --- an expression (x + y) instead of a layer ---------------------------------------------------


def _expression_model(pool: bool) -> keras.Model:
    """a -> b; (a + b written as an expression) [-> max-pool] -> c: Keras records the sum as an operation."""
    inputs = keras.Input((12, 12, 3))
    a = L.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = L.Conv2D(4, 3, padding="same", name="b")(a)
    x = a + b
    x = L.MaxPooling2D(2, name="pool")(x) if pool else x
    return seeded(keras.Model(inputs, L.Conv2D(5, 3, padding="same", name="c")(x)), seed=4)


@pytest.mark.parametrize("pool", [False, True])
def test_a_path_through_an_expression_is_refused_in_one_line_naming_it(pool):
    """The records see through ``a + b`` (both convs read), the weights cannot: refused, never half the paths."""
    model = _expression_model(pool)
    reader = "pool" if pool else "c"
    c = circuit(model, Unit("c", 1), top_k=5, earlier_layer="a")
    assert not c.direct.supported and c.expanded is None and c.edges == ()
    assert c.direct.reason.startswith(f"circuits: direct inputs of c: {reader!r} reads operation ")
    assert "(Add, an expression such as x + y, not a layer)" in c.direct.reason
    assert c.direct.reason.endswith("write it as keras.layers.Add()") and "\n" not in c.direct.reason
