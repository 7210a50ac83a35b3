"""The FLOP account's formulas: a hand count on tiny models, and TensorFlow's profiler's count."""

from __future__ import annotations

import keras
import pytest

from generator.analysis import flops

from tiny import tiny_classifier


def one_conv() -> keras.Model:
    """8x8x3 -> 3x3 conv, 4 filters, 'same', no bias."""
    x = keras.Input((None, None, 3))
    return keras.Model(x, keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="c")(x))


def two_convs() -> keras.Model:
    """A 'same' conv (4 filters) then a stride-2 'valid' conv (5 filters), no biases."""
    x = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="c")(x)
    return keras.Model(x, keras.layers.Conv2D(5, 3, strides=2, use_bias=False, name="s")(y))


def test_one_conv_by_hand():
    # 8 x 8 positions x 4 filters, each 3 x 3 x 3 multiply-adds of 2 FLOPs.
    assert flops.forward_flops(one_conv(), 8) == 2 * 8 * 8 * 4 * 3 * 3 * 3 == 13824
    assert flops.step_flops(one_conv(), 8) == 2 * 13824
    assert flops.forward_flops(one_conv(), 8, "c", channels=1) == 13824 // 4  # a sliced kernel: one filter


def test_a_classifier_by_hand():
    # 16 px: c1 16x16x4 (3x3x3), c2 16x16x6 (3x3x4), pool to 8x8, c3 8x8x8 (3x3x6), head 8 -> 5.
    c1, c2, c3, head = 2 * 256 * 4 * 27, 2 * 256 * 6 * 36, 2 * 64 * 8 * 54, 2 * 8 * 5
    model = tiny_classifier()
    assert flops.forward_flops(model, 16) == c1 + c2 + c3 + head
    assert flops.forward_flops(model, 16, "c2") == c1 + c2
    assert flops.forward_flops(model, 16, "c3", channels=2) == c1 + c2 + c3 // 4


def test_two_convs_by_hand():
    # c: 8x8x4 of 27; s: 3x3 positions x 5 filters of 3x3x4.
    assert flops.forward_flops(two_convs(), 8) == 2 * 64 * 4 * 27 + 2 * 9 * 5 * 36 == 17064


def profiled(fn, shape) -> int:
    """TensorFlow's profiler's float operations of ``fn`` traced on a float32 input of ``shape``."""
    tf = pytest.importorskip("tensorflow")
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    graph = convert_variables_to_constants_v2(tf.function(fn).get_concrete_function(tf.TensorSpec(shape))).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's profiler")
def test_against_tensorflows_profiler():
    import tensorflow as tf

    def input_gradient(model):
        def gradient(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                total = tf.reduce_sum(model(x))
            return tape.gradient(total, x)

        return gradient

    assert profiled(two_convs(), (1, 8, 8, 3)) == flops.forward_flops(two_convs(), 8) == 17064
    assert profiled(one_conv(), (1, 13, 11, 3)) == 2 * 13 * 11 * 4 * 27
    # A sum's input gradient needs no forward pass: the graph holds the transposed conv alone, the
    # forward's multiply-adds (the profiler counts a strided conv's by input positions instead: not compared).
    assert profiled(input_gradient(one_conv()), (1, 8, 8, 3)) == flops.step_flops(one_conv(), 8) // 2


def test_matmul():
    assert flops.matmul_flops(2, 3, 4) == 48
