"""Exciters on a tiny seeded conv model: they raise (or lower) their unit, are deterministic and batch-invariant."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

from generator.seeding import seed_weights
from generator.analysis import backend, exciters  # noqa: E402
from generator.analysis.exciters import lucid, render, render_exciters  # noqa: E402
from generator.analysis.views import Batches, deepdream  # noqa: E402
from generator.config import ExciterParams  # noqa: E402
from generator.errors import GeneratorError  # noqa: E402

from tiny import exciter_model, geometry_model  # noqa: E402

PARAMS = ExciterParams(steps=5, size=32, batch_size=4, seed=3, precision="float32")
LUCID = dataclasses.replace(PARAMS, method="lucid", steps=12)


def preprocess(x):
    """Grey to zero, so that every unit of the random model fires somewhere on both start images."""
    return (x - 128.0) / 10.0


@pytest.fixture(scope="module")
def model():
    return exciter_model()


def test_gradient_ascent_raises_every_unit(model):
    done = []
    result = render_exciters(model, "c2", range(8), PARAMS, preprocess, done.append)
    assert result.images.shape == (8, 32, 32, 3) and result.images.dtype == np.uint8
    assert result.activation.shape == result.start_activation.shape == (8,)
    assert np.all(result.activation > result.start_activation * 1.5 + 1e-3), (result.start_activation, result.activation)
    assert done == [4, 4]
    assert len({img.tobytes() for img in result.images}) == 8  # one image per unit, not one shared


def test_negative_lowers_every_unit(model):
    result = render_exciters(model, "c2", range(8), dataclasses.replace(PARAMS, negative=True), preprocess)
    assert np.all(result.activation < result.start_activation), (result.start_activation, result.activation)


@pytest.mark.parametrize("layer", ["c1", "pool"])
def test_first_layer_and_non_conv_layer(model, layer):
    """c1 reads the model input directly; pool is not a conv, so its channels are gathered."""
    result = render_exciters(model, layer, [0, 7, 3], PARAMS, preprocess)
    assert np.all(result.activation > result.start_activation * 1.2 + 1e-3), (result.start_activation, result.activation)


def test_neuron_objective(model):
    result = render_exciters(model, "c3", range(8), dataclasses.replace(PARAMS, objective="neuron"), preprocess)
    assert np.all(result.activation > result.start_activation + 1.0), (result.start_activation, result.activation)


def test_deterministic(model):
    a = render_exciters(model, "c2", [0, 3, 6], PARAMS, preprocess)
    b = render_exciters(model, "c2", [0, 3, 6], PARAMS, preprocess)
    assert a.images.tobytes() == b.images.tobytes()
    np.testing.assert_array_equal(a.activation, b.activation)
    c = render_exciters(model, "c2", [0, 3, 6], dataclasses.replace(PARAMS, seed=4), preprocess)
    assert a.images.tobytes() != c.images.tobytes()


@pytest.mark.parametrize("params", [PARAMS, LUCID], ids=["gradient_ascent", "lucid"])
def test_unit_image_does_not_depend_on_its_batch(model, params):
    batched = render_exciters(model, "c2", [5, 1, 2], dataclasses.replace(params, batch_size=2), preprocess)
    alone = render_exciters(model, "c2", [1], params, preprocess)
    assert batched.images.shape[0] == 3
    np.testing.assert_allclose(batched.activation[1], alone.activation[0], rtol=1e-4)
    diff = np.abs(batched.images[1].astype(int) - alone.images[0].astype(int))
    assert diff.max() <= 1, diff.max()
    assert np.abs(batched.images[0].astype(int) - alone.images[0].astype(int)).max() > 1  # other units differ


def test_sliced_conv_matches_gathered_output(model):
    """The kernel-sliced path (batch narrower than the layer) computes what the cut model outputs."""
    layer = model.get_layer("c2")
    x = ops.convert_to_tensor(np.random.default_rng(0).normal(size=(3, 12, 12, 3)).astype("float32"))
    channels = ops.convert_to_tensor(np.array([6, 0, 6], "int32"))
    sliced = exciters.unit_maps(model, layer, 3)(x, channels)
    gathered = exciters.unit_maps(model, layer, 8)(x, channels)
    full = keras.Model(model.input, layer.output)(x)
    np.testing.assert_allclose(ops.convert_to_numpy(sliced), ops.convert_to_numpy(gathered), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(sliced)[1], ops.convert_to_numpy(full)[1, ..., 0], rtol=1e-5, atol=1e-5)


def test_lucid_raises_every_unit_deterministically(model):
    a = render_exciters(model, "c2", range(8), LUCID, preprocess)
    assert a.images.shape == (8, 32, 32, 3) and a.images.dtype == np.uint8
    assert np.all(a.activation > a.start_activation * 1.5 + 1e-3), (a.start_activation, a.activation)
    b = render_exciters(model, "c2", range(8), LUCID, preprocess)
    assert a.images.tobytes() == b.images.tobytes()


def test_lucid_negative_ends_below_positive(model):
    """Lucid starts near grey, where units barely fire, so compare with the positive run instead."""
    low = render_exciters(model, "c2", [0, 4, 5], dataclasses.replace(LUCID, negative=True), preprocess)
    high = render_exciters(model, "c2", [0, 4, 5], LUCID, preprocess)
    assert np.all(low.activation < high.activation * 0.5), (low.activation, high.activation)


def test_irfft2_matches_numpy():
    rng = np.random.default_rng(0)
    real, imag = rng.normal(size=(2, 3, 10, 6)).astype("float32"), rng.normal(size=(2, 3, 10, 6)).astype("float32")
    got = ops.convert_to_numpy(exciters.irfft2(ops.convert_to_tensor(real), ops.convert_to_tensor(imag), 10))
    np.testing.assert_allclose(got, np.fft.irfft2(real + 1j * imag, s=(10, 10)), atol=1e-5)


def test_lucid_transform_without_randomness_is_the_padded_view():
    """Scale 1, no rotation, no jitter: canvas pixel (x, y) shows image pixel (x - 12, y - 12), as Lucid's pad 12."""
    t = exciters.lucid_transforms(dataclasses.replace(LUCID, steps=200), (0,), LUCID.size + 12)
    plain = t[(np.abs(t[:, 0] - 1) < 1e-6) & (np.abs(t[:, 1]) < 1e-6)]
    assert len(plain) > 0
    offsets = plain[:, [2, 5]]  # input = padded image (pad 6), so image x = input x - 6
    assert np.all((offsets >= -6) & (offsets <= 6)) and np.all(offsets == np.round(offsets))
    assert np.all(np.abs(t[:, [0, 1, 3, 4]]) <= 1 / 0.9 + 1e-6) and np.all(t[:, 6:] == 0)


def test_bfloat16_on_the_first_layer(model):
    params = dataclasses.replace(PARAMS, precision="bfloat16")
    result = render_exciters(model, "c1", [0, 1, 2], params, preprocess)
    assert np.all(result.activation > result.start_activation)


def test_bfloat16_reaches_what_float32_reaches(model):
    fp32 = render_exciters(model, "c2", range(8), PARAMS, preprocess)
    params = dataclasses.replace(PARAMS, precision="bfloat16")
    bf16 = render_exciters(model, "c2", range(8), params, preprocess)
    assert bf16.images.dtype == np.uint8 and bf16.activation.dtype == np.float32
    assert np.all(bf16.activation > bf16.start_activation * 1.5 + 1e-3)
    np.testing.assert_allclose(bf16.activation, fp32.activation, rtol=0.1, atol=0.02)
    assert model.get_layer("c2").compute_dtype == "float32"  # the caller's model is left alone


def test_the_renders_of_a_layer_share_its_bfloat16_copy(model, monkeypatch):
    """One copy of the model up to a layer in bfloat16 for every render that climbs it (units, directions, views),
    the same images as a copy made for the render alone."""
    params = dataclasses.replace(PARAMS, precision="bfloat16")
    backend.cut_at_precision.cache_clear()
    copies = []
    to_bfloat16 = backend.at_precision
    monkeypatch.setattr(backend, "at_precision", lambda net, precision: copies.append(net) or to_bfloat16(net, precision))
    units = render_exciters(model, "c3", [1, 2], params, preprocess)
    directions = exciters.render_directions(model, "c3", np.eye(8, dtype=np.float32)[[1, 2]], params, preprocess)
    render_exciters(model, "c2", [1], params, preprocess)
    deepdream(model, "c3", np.full((1, 16, 16, 3), 128, np.uint8), preprocess, 1, 1.0, Batches(1, "bfloat16"))
    assert [net.output.shape[-1] for net in copies] == [8, model.get_layer("c2").filters]  # c3 once, then c2
    backend.cut_at_precision.cache_clear()
    again = render_exciters(model, "c3", [1, 2], params, preprocess)
    assert len(copies) == 3
    np.testing.assert_array_equal(units.images, again.images)
    np.testing.assert_array_equal(directions.images, again.images)  # a one-hot direction: its channel's image


def test_a_bfloat16_render_that_gives_nan_is_rendered_again_in_float32_with_one_warning(model, monkeypatch, caplog,
                                                                                         request):
    """Whatever makes a backend's bfloat16 give NaN (here a NaN kernel in the bfloat16 copy only), the exciters
    come back as float32 renders them, the progress counts each unit once, and one line says so."""
    to_bfloat16 = backend.at_precision

    def with_nan_kernel(net, precision):
        copy = to_bfloat16(net, precision)
        kernel = copy.get_layer("c1").kernel
        kernel.assign(np.full(kernel.shape, np.nan, "float32"))
        return copy

    monkeypatch.setattr(backend, "at_precision", with_nan_kernel)
    backend.cut_at_precision.cache_clear()  # a bfloat16 copy made before would be reused
    request.addfinalizer(backend.cut_at_precision.cache_clear)  # and this NaN one must not be
    done = []
    with caplog.at_level(logging.WARNING, logger="generator"):
        bf16 = render_exciters(model, "c3", range(8), dataclasses.replace(PARAMS, precision="bfloat16"), preprocess,
                               done.append)
    fp32 = render_exciters(model, "c3", range(8), PARAMS, preprocess)
    assert [r.getMessage() for r in caplog.records] == [
        f"exciters: bfloat16 gave NaN or infinite values at layer c3 on Keras' {keras.backend.backend()} backend; "
        f"rendering them in float32 instead"]
    assert done == [4, 4]
    np.testing.assert_array_equal(bf16.images, fp32.images)
    np.testing.assert_array_equal(bf16.activation, fp32.activation)
    np.testing.assert_array_equal(bf16.start_activation, fp32.start_activation)


def test_a_second_run_reports_only_the_units_the_first_did_not():
    done = []
    again = render._after(done.append, 5)  # the first run reported 5 units before it stopped
    for n in (4, 4, 4):
        again(n)
    assert done == [3, 4]


@pytest.mark.parametrize("params, hint", [(PARAMS, " or a smaller exciters.step_size"),
                                          (LUCID, "")])  # step_size is the lab's recipe's alone
def test_exciters_that_overflow_float32_are_one_error_line(params, hint):
    net = geometry_model()  # all-ones kernels, no activation: nothing turns an infinity back into a number
    kernel = net.get_layer("c1").kernel
    kernel.assign(np.full(kernel.shape, 1e38, "float32"))
    with pytest.raises(GeneratorError) as raised:
        render_exciters(net, "c3", [0, 1], params, preprocess)
    assert str(raised.value) == ("exciters: the exciters of layer 'c3' came out NaN or infinite in float32 (the "
                                 f"model's values overflow on them); pick another layer{hint}")


def test_fixed_size_model():
    seed_weights(2)
    x = inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(x)
    fixed = keras.Model(inputs, x)
    for params in (PARAMS, dataclasses.replace(LUCID, size=24)):  # lucid pads its 24 px image to the model's 32
        result = render_exciters(fixed, "c1", [0, 1], dataclasses.replace(params, steps=3), preprocess)
        assert result.images.shape == (2, params.size, params.size, 3)
    with pytest.raises(GeneratorError, match="takes 32x32 images; set exciters size to 32"):
        render_exciters(fixed, "c1", [0], dataclasses.replace(PARAMS, size=40), preprocess)


def test_bad_layer_and_channel(model):
    with pytest.raises(GeneratorError, match="^exciters: the model has no layer 'c22'; did you mean 'c2'"):
        render_exciters(model, "c22", [0], PARAMS, preprocess)
    with pytest.raises(GeneratorError, match="^exciters: channel 8 is out of range for layer 'c2', which has channels 0 to 7$"):
        render_exciters(model, "c2", [1, 8], PARAMS, preprocess)


def test_precision_auto_follows_the_cpu(tmp_path):
    from generator.analysis.precision import resolve_precision

    assert resolve_precision("float32") == "float32" and resolve_precision("bfloat16") == "bfloat16"
    with_bf16, without = tmp_path / "with", tmp_path / "without"
    with_bf16.write_text("flags\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("flags\t: fpu sse avx2 avx512f\n")
    assert resolve_precision("auto", with_bf16) == "bfloat16"
    assert resolve_precision("auto", without) == "float32"
    assert resolve_precision("auto", tmp_path / "missing") == "float32"


def _silenced(model, channel: int):
    """A copy of ``model`` whose c2 unit ``channel`` is 0 everywhere on grey (a very negative bias)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    bias = clone.get_layer("c2").bias
    bias.assign(ops.convert_to_numpy(bias) - np.eye(8, dtype="float32")[channel] * 3.0)
    return clone


def test_redirected_maps_are_the_pre_activation(model):
    layer = model.get_layer("c2")
    x = ops.convert_to_tensor(np.random.default_rng(0).normal(size=(8, 12, 12, 3)).astype("float32"))
    pre = keras.Model(model.input, model.get_layer("c1").output)(x)
    expected = ops.convert_to_numpy(ops.conv(pre, layer.kernel, 1, "valid") + layer.bias)
    for channels in ([1, 6], [1, 6, 0, 2, 3, 4, 5, 7]):  # sliced, and the whole layer
        maps = exciters.unit_maps(model, layer, len(channels), redirect_relu=True)
        got = ops.convert_to_numpy(maps(x[: len(channels)], ops.convert_to_tensor(np.array(channels, "int32"))))
        np.testing.assert_allclose(got[1], expected[1, ..., 6], rtol=1e-5, atol=1e-5)
        assert got.min() < 0  # not through the ReLU


def test_redirected_relu_layer_is_its_input():
    seed_weights(5)
    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    x = keras.layers.ReLU(name="relu")(x)
    model = keras.Model(inputs, x)
    images = ops.convert_to_tensor(np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32"))
    channels = ops.convert_to_tensor(np.array([3, 1], "int32"))
    got = ops.convert_to_numpy(exciters.unit_maps(model, model.get_layer("relu"), 2, redirect_relu=True)(images, channels))
    before = ops.convert_to_numpy(keras.Model(inputs, model.get_layer("conv").output)(images))
    np.testing.assert_allclose(got[0], before[0, ..., 3], rtol=1e-5, atol=1e-6)
    assert got.min() < 0


@pytest.mark.parametrize("target", ["conv-sliced", "conv-whole", "relu-layer", "pool"])
def test_switched_redirect_gives_the_bits_of_either_objective(target):
    """Lucid's one compiled step: an objective made with ``redirect_relu=SWITCH`` gives, for redirect true and
    false, the values and input gradients of the objectives made with True and False, bit for bit (units, all
    channels, a direction); on a target without a ReLU it is the plain objective either way."""
    from generator.analysis.exciters.objectives import SWITCH, direction_objective, unit_objective

    seed_weights(7)
    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(x)
    x = keras.layers.Conv2D(4, 3, name="lin")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    net = keras.Model(inputs, x)
    layer, width = {"conv-sliced": ("conv", 2), "conv-whole": ("conv", 6), "relu-layer": ("relu", 2),
                    "pool": ("pool", 2)}[target]
    layer = net.get_layer(layer)
    images = ops.convert_to_tensor(np.random.default_rng(1).normal(0, 40, (width, 12, 12, 3)).astype("float32"))
    channels = ops.convert_to_tensor(np.arange(width, dtype="int32") % 4)
    weights = ops.convert_to_tensor(np.random.default_rng(2).normal(size=(width, 3)).astype("float32"))
    makers = [lambda r: unit_objective(net, layer, width, preprocess, "channel", r),
              lambda r: direction_objective(net, layer, np.array([0, 1, 3]), preprocess, "channel", r)]
    for make, targets in zip(makers, (channels, weights)):
        switched = backend.compile_step(backend.value_and_grad(make(SWITCH)))  # compiled, as Lucid's step runs it
        for redirect in (False, True):
            fixed = backend.compile_step(backend.value_and_grad(make(redirect)))(images, targets)
            got = switched(images, targets, ops.convert_to_tensor(redirect))
            for a, b in zip(got, fixed):
                assert ops.convert_to_numpy(a).tobytes() == ops.convert_to_numpy(b).tobytes()
        plain = backend.value_and_grad(make(False))(images, targets)[1]
        redirected = backend.value_and_grad(make(True))(images, targets)[1]
        assert np.array_equal(ops.convert_to_numpy(plain), ops.convert_to_numpy(redirected)) == (target == "pool")


def test_lucid_lifts_a_unit_that_is_zero_on_its_start(model, monkeypatch):
    """Lucid's ReLU gradient override: a unit at 0 everywhere on the start image still rises (without it, not)."""
    silenced, params = _silenced(model, 2), dataclasses.replace(LUCID, steps=30)
    result = render_exciters(silenced, "c2", [2, 5], params, preprocess)
    assert result.start_activation[0] == 0 and result.activation[0] > 0.05, result.activation
    assert result.activation[1] > result.start_activation[1]
    monkeypatch.setattr(lucid, "_REDIRECT_STEPS", 0)
    assert render_exciters(silenced, "c2", [2], params, preprocess).activation[0] == 0


def test_lucid_leaves_no_unit_of_a_real_layer_at_zero():
    """The defect of issue 10: on the default model Lucid left units at 0 that the lab's recipe raised."""
    from pathlib import Path

    from generator.config import ModelSection
    from generator.models import load_model

    hed = load_model(ModelSection(name="vgg16-hed", weights="bundled"), Path("."))
    params = ExciterParams(steps=32, size=48, batch_size=32, seed=0, precision="float32")
    lab = render_exciters(hed.features, "block3_conv2", range(32), params, hed.preprocess)
    lucid = render_exciters(hed.features, "block3_conv2", range(32), dataclasses.replace(params, method="lucid"),
                            hed.preprocess)
    assert np.sum(lab.activation > 0) >= 28  # the lab's recipe raises nearly all of them
    stuck = np.flatnonzero((lucid.activation <= 0) & (lab.activation > 0))
    assert stuck.size == 0, (stuck, lucid.activation[stuck])


@pytest.mark.parametrize("params", [PARAMS, LUCID], ids=["gradient_ascent", "lucid"])
def test_one_hot_direction_is_the_channel_exciter(model, params):
    channels = [1, 4, 6]
    by_channel = render_exciters(model, "c2", channels, params, preprocess)
    by_direction = exciters.render_directions(model, "c2", np.eye(8, dtype="float32")[channels], params, preprocess)
    assert by_direction.images.tobytes() == by_channel.images.tobytes()
    np.testing.assert_array_equal(by_direction.activation, by_channel.activation)


@pytest.mark.parametrize("params", [PARAMS, dataclasses.replace(PARAMS, precision="bfloat16")],
                         ids=["float32", "bfloat16"])
def test_a_unit_rendered_with_a_direction_gets_the_image_it_gets_alone(model, params):
    """The build renders a layer's featured unit and its configured directions in one batch (the unit as its
    one-hot direction): the unit's pixels and values are those of its own render of the same width."""
    mix = np.zeros(8, "float32")
    mix[[2, 5]] = 0.5
    alone = render_exciters(model, "c2", [1, 2], params, preprocess)
    both = exciters.render_directions(model, "c2", np.stack([np.eye(8, dtype="float32")[1], mix]), params, preprocess)
    assert both.images[0].tobytes() == alone.images[0].tobytes()
    np.testing.assert_array_equal(both.activation[0], alone.activation[0])
    np.testing.assert_array_equal(both.start_activation[0], alone.start_activation[0])
    assert both.images[1].tobytes() != alone.images[1].tobytes()  # the mix is not channel 2's exciter


def test_direction_raises_its_dot_product(model):
    directions = np.zeros((2, 8), "float32")
    directions[0, [2, 5]] = 0.5
    directions[1, [0, 3, 7]] = [1.0, -0.5, 0.25]
    result = exciters.render_directions(model, "c2", directions, PARAMS, preprocess)
    assert np.all(result.activation > result.start_activation + 1e-3), (result.start_activation, result.activation)
    result = exciters.render_directions(model, "c2", directions, LUCID, preprocess)  # its images are what it optimised
    maps = keras.Model(model.input, model.get_layer("c2").output)(preprocess(result.images.astype("float32")))
    dots = np.einsum("bhwc,bc->b", ops.convert_to_numpy(maps), directions) / np.prod(maps.shape[1:3])
    np.testing.assert_allclose(dots, result.activation, rtol=0.05, atol=0.05)  # the reported value is the dot product
    with pytest.raises(GeneratorError, match="has 8 weights, one per channel"):
        exciters.render_directions(model, "c2", np.ones((1, 5)), PARAMS, preprocess)


@pytest.mark.parametrize("side, centre", [(9, 4), (8, 4)])
def test_neuron_objective_reads_the_centre_position_not_a_corner(side, centre):
    """A 1x1 conv summing the colours: the neuron objective is the sum at (side // 2, side // 2) only."""
    x = inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, name="sum")
    model = keras.Model(inputs, conv(x))
    conv.set_weights([np.stack([np.ones((1, 1, 3)), np.zeros((1, 1, 3))], -1).astype("float32")])
    images = np.zeros((2, side, side, 3), "float32")
    images[0, centre, centre] = 1.0
    images[1, 0, 0] = 1.0  # a corner: invisible to the neuron objective
    channels = ops.convert_to_tensor(np.array([0, 0], "int32"))
    for width in (1, 2):
        neuron = exciters.unit_objective(model, conv, width, lambda v: v, "neuron")
        channel = exciters.unit_objective(model, conv, width, lambda v: v, "channel")
        np.testing.assert_allclose(ops.convert_to_numpy(neuron(images, channels[:2])), [3.0, 0.0])
        np.testing.assert_allclose(ops.convert_to_numpy(channel(images, channels[:2])), [3 / side**2] * 2, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown exciter objective 'pixel'"):
        exciters.unit_objective(model, conv, 1, lambda v: v, "pixel")


def test_a_result_gives_one_exciter_per_unit_with_its_transparency_in_bytes():
    images = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)
    alpha = np.array([[[0.0, 0.5], [0.999, 1.0]], [[0.002, 0.25], [0.75, 0.1]]])
    result = exciters.ExciterResult(images, np.array([1.5, -2.0], np.float32), np.array([0.25, 3.0], np.float32), alpha)
    first, second = result.exciters()
    np.testing.assert_array_equal(first.image, images[0])
    assert (first.activation, first.start_activation, second.activation, second.start_activation) == (1.5, 0.25, -2.0, 3.0)
    assert type(first.activation) is float and first.alpha.dtype == np.uint8
    np.testing.assert_array_equal(first.alpha, [[0, 128], [255, 255]])
    np.testing.assert_array_equal(second.alpha, [[1, 64], [191, 26]])
    plain = exciters.ExciterResult(images, np.zeros(2, np.float32), np.zeros(2, np.float32)).exciters()
    assert [e.alpha for e in plain] == [None, None] and len(plain) == 2


@pytest.mark.parametrize("name", ["c2", "pool"])
def test_channel_maps_are_the_layers_own_channels(model, name):
    """Sliced (conv) or cut (pooling), channel_maps gives the layer's maps of the asked channels, in order."""
    layer = model.get_layer(name)
    x = ops.convert_to_tensor(np.random.default_rng(1).normal(size=(2, 12, 12, 3)).astype("float32"))
    channels = ops.convert_to_tensor(np.array([5, 1], "int32"))
    got = ops.convert_to_numpy(exciters.channel_maps(model, layer, 2)(x, channels))
    full = ops.convert_to_numpy(keras.Model(model.input, layer.output)(x))
    np.testing.assert_allclose(got, full[..., [5, 1]], rtol=1e-5, atol=1e-5)


def test_lucid_spectrum_scale_is_size_over_frequency():
    """Lucid's 1/f scale: size / max(|f|, 1/size), |f| in cycles a pixel (the DC term as the lowest frequency)."""
    scale = exciters.spectrum_scale(4)
    assert scale.shape == (4, 3) and scale.dtype == np.float32
    np.testing.assert_allclose(scale, [[16, 16, 8], [16, 4 / np.sqrt(0.125), 4 / np.sqrt(0.3125)],
                                       [8, 4 / np.sqrt(0.3125), 4 / np.sqrt(0.5)],
                                       [16, 4 / np.sqrt(0.125), 4 / np.sqrt(0.3125)]], rtol=1e-6)


def test_units_and_directions_of_a_layer_render_in_one_batch_and_cache_apart(tmp_path, monkeypatch):
    """``exciters_with_directions``: the units of a layer with directions and the directions in one render (the
    units as one-hot rows), another layer's units as ``exciters`` renders them; each image then read back from
    the cache by ``exciters`` and ``direction_exciters`` alone, with nothing rendered, and the unit's image the
    one its own render of that width gives."""
    from generator.analyses import Analyses
    from generator.cache import Cache
    from generator.config import load_config
    from generator.results import Unit
    from tiny import make_project, tiny_classifier

    tiny_classifier().save(tmp_path / "tiny.keras")
    config = load_config(make_project(tmp_path, tmp_path / "tiny.keras") / "site_config.yaml")
    analyses = Analyses(config, Cache(tmp_path / "cache"))
    params = config.exciters.params()
    mix = np.zeros(8, "float32")
    mix[[2, 5]] = [0.25, -0.75]
    calls = []
    render_directions = exciters.render_directions
    monkeypatch.setattr(exciters, "render_directions", lambda net, layer, vectors, *a: calls.append(
        (layer, np.array(vectors))) or render_directions(net, layer, vectors, *a))
    units = [Unit("c3", 5), Unit("c2", 1)]
    found, (drawn,) = analyses.exciters_with_directions(units, [("c3", mix)], params, "exciters")
    assert [layer for layer, _ in calls] == ["c3"]
    np.testing.assert_array_equal(calls[0][1], np.stack([np.eye(8, dtype="float32")[5], mix]))
    assert list(found) == [Unit("c2", 1), Unit("c3", 5)] and drawn.image.shape == (32, 32, 3)

    monkeypatch.setattr(exciters, "render_directions", None)  # from here on, a render fails
    monkeypatch.setattr(exciters, "render_exciters", None)
    again = Analyses(config, Cache(tmp_path / "cache"))
    cached = again.exciters(units, params, "exciters")
    assert all(cached[u].image.tobytes() == found[u].image.tobytes() for u in units)
    (direction,) = again.direction_exciters("c3", [mix], params, "directions")
    assert direction.image.tobytes() == drawn.image.tobytes() and direction.activation == drawn.activation
    model = analyses.model
    alone = render_exciters(model.features, "c3", [5], params, model.preprocess, width=2)  # (padded to 2 images)
    assert alone.images[0].tobytes() == found[Unit("c3", 5)].image.tobytes()
