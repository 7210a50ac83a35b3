"""Exciter objectives: one value per image, of that image's own unit (or direction).

Only the requested channels of the layer are computed where the layer allows it (a plain Conv2D: its
kernel is sliced to the batch's channels), else they are gathered from its output.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
from keras import ops

from generator.analysis import graph

SWITCH = "switch"  # ``redirect_relu`` chosen at each call: the objective takes a third argument, a boolean scalar


def unit_objective(
    model: keras.Model, layer: keras.layers.Layer, width: int, preprocess: Callable, kind: str,
    redirect_relu: bool | str = False,
) -> Callable:
    """``(images 0..255 (B, H, W, 3), channels (B,)) -> (B,)``: each image's own unit.

    ``kind`` "channel": the channel's mean over positions; "neuron": its value at the centre position.
    ``redirect_relu``: see :func:`channel_maps` (with :data:`SWITCH` the objective takes ``redirect`` third).
    """
    check_objective(kind)
    maps = unit_maps(model, layer, width, redirect_relu)

    def objective(images, channels, *redirect):
        return map_objective(maps(preprocess(images), channels, *redirect), kind)

    return objective


def check_objective(kind: str) -> None:
    if kind not in ("channel", "neuron"):
        raise ValueError(f"unknown exciter objective {kind!r}; allowed: channel, neuron")


def map_objective(m, kind: str):
    """(B, H, W) maps -> (B,) in float32: their mean over positions ("channel") or the centre ("neuron")."""
    m = ops.cast(m, "float32")
    if kind == "neuron":
        return m[:, m.shape[1] // 2, m.shape[2] // 2]
    return ops.mean(m, axis=(1, 2))


def direction_objective(
    model: keras.Model, layer: keras.layers.Layer, support: np.ndarray, preprocess: Callable, kind: str,
    redirect_relu: bool | str = False,
) -> Callable:
    """``(images 0..255 (B, H, W, 3), weights (B, K)) -> (B,)``: each image's activations at ``layer``'s
    channels ``support`` (K,) dotted with its own weights, as ``kind`` of :func:`unit_objective` says."""
    check_objective(kind)
    maps = channel_maps(model, layer, len(support), redirect_relu)
    support = ops.convert_to_tensor(support)

    def objective(images, weights, *redirect):
        y = maps(preprocess(images), support, *redirect)  # (B, H, W, K)
        return map_objective(ops.sum(ops.cast(y, "float32") * weights[:, None, None, :], axis=-1), kind)

    return objective


def unit_maps(model: keras.Model, layer: keras.layers.Layer, width: int,
              redirect_relu: bool | str = False) -> Callable:
    """``(model inputs (B, ...), channels (B,)) -> (B, H, W)``: image i's map of channel ``channels[i]``."""
    activation = _sliced_activation(layer, width, redirect_relu)
    if activation is not None:
        maps = _sliced_maps(model, layer, activation)
        return lambda inputs, channels, *redirect: own_channel(maps(inputs, channels, *redirect),
                                                               ops.arange(channels.shape[0], dtype="int32"))
    cut = _cut_maps(model, layer, redirect_relu)  # all channels: pick each image's own, with no gather in between
    return lambda inputs, channels, *redirect: own_channel(cut(inputs, *redirect), channels)


def channel_maps(model: keras.Model, layer: keras.layers.Layer, count: int,
                 redirect_relu: bool | str = False) -> Callable:
    """``(model inputs (B, ...), channels (K,)) -> (B, H, W, K)``: the maps of ``count`` channels.

    A plain Conv2D target is computed with its kernel sliced to the ``count`` channels, which skips the
    other channels' forward and backward work; any other layer is cut from the model and its channels
    gathered.

    ``redirect_relu``: the maps before the target's ReLU (a conv's relu activation, or a ReLU layer's
    input). For an objective that rises with the map this is Lucid's ReLU gradient override at the
    target: the gradient passes the ReLU wherever it would raise its input, also where the input is
    negative. Other targets are left as they are. :data:`SWITCH`: the maps take a third argument, a boolean
    scalar tensor: redirected where it is true, so that one compiled step serves the steps with the override and
    those without (the same values as either, bit for bit: only the branch taken runs).
    """
    activation = _sliced_activation(layer, count, redirect_relu)
    if activation is not None:
        return _sliced_maps(model, layer, activation)
    cut = _cut_maps(model, layer, redirect_relu)
    return lambda inputs, channels, *redirect: ops.take(cut(inputs, *redirect), channels, axis=-1)


def every_channel_maps(model: keras.Model, layer: keras.layers.Layer, redirect_relu: bool | str = False) -> Callable:
    """``(model inputs (B, ...)) -> (B, H, W, C)``: every channel's maps, as :func:`channel_maps` gives them."""
    count = graph.layer_info(layer).channels
    activation = _sliced_activation(layer, count, redirect_relu)
    if activation is not None:  # a plain conv before its redirected ReLU
        maps = _sliced_maps(model, layer, activation)
        return lambda inputs, *redirect: maps(inputs, None, *redirect)
    return _cut_maps(model, layer, redirect_relu)


def _sliced_activation(layer: keras.layers.Layer, count: int, redirect_relu: bool | str) -> Callable | None:
    """What follows the conv, ``(maps, *redirect) -> maps``, when ``layer`` is computed with its kernel sliced to
    ``count`` channels (none before a redirected ReLU), or None when it is not sliced."""
    if redirect_relu and _is_relu(getattr(layer, "activation", None)) and _plain_conv(layer):
        return _switched if redirect_relu == SWITCH else (lambda y: y)
    return (lambda y, *redirect: layer.activation(y)) if _sliceable(layer, count) else None


def _cut_maps(model: keras.Model, layer: keras.layers.Layer, redirect_relu: bool | str) -> Callable:
    """``(model inputs, *redirect) ->`` all of ``layer``'s maps: the model cut at the layer (before a ReLU layer's
    ReLU, for ``redirect_relu``)."""
    if redirect_relu and _relu_layer(layer):
        before = graph.cut(model, layer.input)
        if redirect_relu == SWITCH:
            return lambda inputs, redirect: _switched(before(inputs, training=False), redirect)
        return lambda inputs: before(inputs, training=False)
    cut = graph.cut(model, graph.layer_output(model, layer.name, "exciters"))
    return lambda inputs, *redirect: cut(inputs, training=False)


def _switched(y, redirect):
    """``y`` where ``redirect`` (a boolean scalar), else ReLU(``y``): only the branch taken runs, forward and back (a
    selection of both costs a step of every channel at block3 of VGG16 some 5 ms)."""
    return ops.cond(redirect, lambda: y, lambda: ops.relu(y))


def _sliced_maps(model: keras.Model, layer: keras.layers.Layer, activation: Callable) -> Callable:
    """A plain Conv2D's maps with its kernel sliced to the requested channels, through ``activation``."""
    trunk = (lambda inputs, training: inputs) if layer.input is model.input else graph.cut(model, layer.input)

    def picked(weights, channels):
        """``weights``' last axis at ``channels``; all of it for None (no gather: it costs a step of every channel
        some 2 ms at block3 of VGG16)."""
        return ops.cast(weights if channels is None else ops.take(weights, channels, axis=-1), layer.compute_dtype)

    def sliced_maps(inputs, channels, *redirect):
        dtype = layer.compute_dtype  # differs from the variables' under mixed precision
        x = ops.cast(trunk(inputs, training=False), dtype)  # the model input stays float32 when the target is the first layer
        y = ops.conv(x, picked(layer.kernel, channels), layer.strides, layer.padding, "channels_last", layer.dilation_rate)
        if layer.use_bias:
            y = y + picked(layer.bias, channels)
        return activation(y, *redirect)

    return sliced_maps


def own_channel(y, index):
    """(B, H, W, C), (B,) -> (B, H, W): channel ``index[i]`` of item i.

    A product with a one-hot mask, summed over channels: exactly the picked values, and on a GPU some
    60 times faster than take_along_axis, whose gradient is a scatter (1.2 ms against 72 per step of 128
    at block1's size on an H200).
    """
    mask = ops.cast(ops.one_hot(index, y.shape[-1]), y.dtype)
    return ops.sum(y * mask[:, None, None, :], axis=-1)


def _plain_conv(layer: keras.layers.Layer) -> bool:
    return (
        type(layer) is keras.layers.Conv2D
        and layer.groups == 1
        and layer.data_format == "channels_last"
        and len(getattr(layer, "_inbound_nodes", ())) == 1
    )


def _sliceable(layer: keras.layers.Layer, width: int) -> bool:
    return _plain_conv(layer) and width < layer.filters


def _is_relu(activation: object) -> bool:
    return activation is keras.activations.relu or getattr(activation, "__name__", "") == "relu"


def _relu_layer(layer: keras.layers.Layer) -> bool:
    """A ReLU layer (or Activation("relu")) with one input, whose input channels are its output's."""
    plain = type(layer) is keras.layers.ReLU and layer.max_value is None and not layer.negative_slope and not layer.threshold
    relu = plain or (type(layer) is keras.layers.Activation and _is_relu(layer.activation))
    return relu and len(getattr(layer, "_inbound_nodes", ())) == 1


def as_rgb(x):
    """Pixels (B, H, W, C) as the RGB the objectives take: a grayscale model's (C = 1) as three equal channels,
    which its luminance input reads back unchanged (so the image stays grey)."""
    return x if x.shape[-1] == 3 else ops.repeat(x, 3, axis=-1)