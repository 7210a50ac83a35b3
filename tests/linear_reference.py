"""The autodiff reference for circuits (not a test module): a linearised Keras copy of the graph
between some source layers and a target, and its gradients.

The copy is built layer by layer from the model's graph, sharing no code with
``generator.analysis.linearised``: convs without bias and activation, MaxPool as AvgPool,
BatchNormalization with its mean and beta zeroed, ReLU and relu activations left out, merges as
they are. Each source layer's output becomes an Input of the copy, so the gradient with respect
to it is that layer's direct weight where the sources are the conv layers just before the target,
and the expanded weight where the source is one earlier layer.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

L = keras.layers


def _linear_layer(layer, call: int):
    """(a linear copy of ``layer``'s ``call``-th call, its weights), or (None, None) where it is the identity.
    Each call's copy is named for it: unique, and no default name taken from Keras' counters (a later
    keras.applications model would name its layers differently)."""
    config = {**layer.get_config(), "name": f"{layer.name}_call{call}"}
    if isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D)):
        copy = type(layer).from_config({**config, "activation": None, "use_bias": False})
        return copy, layer.get_weights()[:2 if isinstance(layer, L.SeparableConv2D) else 1]
    if isinstance(layer, L.MaxPooling2D):
        return L.AveragePooling2D(layer.pool_size, layer.strides, layer.padding), []
    if isinstance(layer, L.BatchNormalization):
        *gamma, _, _, variance = layer.get_weights()  # no gamma where scale=False
        return L.BatchNormalization.from_config(config), [*gamma, 0 * variance, 0 * variance, variance]
    if isinstance(layer, (L.ReLU, L.Activation)):
        assert isinstance(layer, L.ReLU) or config["activation"] in ("relu", "linear"), layer.name
        return None, None
    return type(layer).from_config(config), []


def linear_copy(model: keras.Model, sources: list[str], target: str, size: int | None = None) -> keras.Model:
    """Inputs: the outputs of ``sources`` (in that order), then the model input where a path reaches it
    without passing a source (a constant for the gradients); output: ``target``'s pre-activation, linearised.
    ``size``: the inputs' side, for a model of any input size whose layers keep the size.

    The graph is walked tensor by tensor through Keras' own history (each tensor's making call), so a
    layer used several times is copied once per call, on that call's input."""

    def input_for(tensor):
        shape = tensor.shape[1:]
        return keras.Input((size, size, shape[-1]) if size else shape)

    inputs = {name: input_for(model.get_layer(name).output) for name in sources}
    tensors = {}

    def copied(tensor):
        layer, index, _ = tensor._keras_history
        if layer.name in sources:
            return inputs[layer.name]
        if id(tensor) not in tensors:
            node = layer._inbound_nodes[index]
            if not node.input_tensors:  # the model input
                inputs[layer.name] = tensors[id(tensor)] = input_for(tensor)
                return tensors[id(tensor)]
            ins = [copied(t) for t in node.input_tensors]
            copy, weights = _linear_layer(layer, index)
            if copy is None:
                tensors[id(tensor)] = ins[0]
            else:
                tensors[id(tensor)] = copy(ins[0] if len(ins) == 1 else ins)
                copy.set_weights(weights)
        return tensors[id(tensor)]

    output = copied(model.get_layer(target).output)
    return keras.Model([inputs[name] for name in sources] + [inputs[n] for n in inputs if n not in sources], output)


def gradients(copy: keras.Model, channel: int, position: tuple[int, int]) -> list[np.ndarray]:
    """d copy[position, channel] / d each input, as (H, W, C) arrays, at zero input (the copy is linear)."""
    xs = [tf.zeros((1, *t.shape[1:])) for t in copy.inputs]

    # In a graph: eagerly, TensorFlow's Conv2D gradient also runs the kernels' gradient, which nobody
    # asked for, and oneDNN's Conv2DBackpropFilter corrupts the heap at some strided odd sizes (a native
    # abort in about half the runs); a graph prunes it.
    @tf.function
    def input_gradients(xs):
        with tf.GradientTape(watch_accessed_variables=False) as tape:  # the inputs only, not the kernels
            tape.watch(xs)
            out = copy(xs if len(xs) > 1 else xs[0], training=False)
            y = out[0, position[0], position[1], channel]
        return tape.gradient(y, xs)

    return [g.numpy()[0] for g in input_gradients(xs)]


def centre(copy: keras.Model) -> tuple[int, int]:
    h, w = copy.output.shape[1:3]
    return h // 2, w // 2


def support(gradient: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the box holding every nonzero of an (H, W, C) gradient."""
    rows, cols = np.nonzero(np.abs(gradient).sum(axis=-1))
    return rows.min(), cols.min(), rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
