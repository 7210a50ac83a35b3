"""Circuits: which filters of an earlier layer feed a chosen filter, and by how much.

Adjacent conv layers are read straight off the kernel: output channel ``o`` of a Conv2D is
``sum_{dy, dx, i} kernel[dy, dx, i, o] * input[y*s + dy - pad, x*s + dx - pad, i]`` (Keras
convolution is cross-correlation), so ``kernel[:, :, :, o]`` is the filter's incoming weight.

For layers further apart we use Distill's *expanded weights* ("Visualizing Weights"): make
the path between the layers linear (ReLU -> identity, MaxPool -> AvgPool, biases and
BatchNorm shifts dropped) and take the weight of every source activation on one target
activation. A linear chain of window ops is itself one window op whose kernel is the
composition of the layer kernels, so we compose them in numpy, walking back from the
target: no autodiff, and the same result on every Keras backend.

Layers are always addressed by name, never by position in ``model.layers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from generator.errors import GeneratorError

_PLAIN_CHAINS_ONLY = "expanded weights are only defined for plain chains of conv/pool/relu layers"
_LINEARISED_ACTIVATIONS = {"relu", "linear"}


class UnsupportedCircuit(GeneratorError):
    """The requested circuit is not defined for this model (one line for the user)."""


@dataclass(frozen=True)
class InputWeight:
    """How strongly one input channel feeds a filter.

    norm: Frobenius norm of its (kh, kw) kernel; excitatory: sum of its positive weights;
    inhibitory: sum of its negative weights (<= 0).
    """

    channel: int
    norm: float
    excitatory: float
    inhibitory: float


# --- the graph ------------------------------------------------------------------------------


def _layer(model: keras.Model, name: str) -> keras.layers.Layer:
    try:
        return model.get_layer(name)
    except ValueError:
        raise UnsupportedCircuit(f"circuits: the model has no layer named {name!r}") from None


def _inbound(model: keras.Model) -> dict[str, list[str]]:
    """Map each layer name to the names of the layers whose outputs it reads (in order)."""
    producer = {id(layer.output): layer.name for layer in model.layers}
    return {
        layer.name: [producer[id(t)] for t in keras.tree.flatten(layer.input) if id(t) in producer]
        for layer in model.layers
    }


def _ancestors(inbound: dict[str, list[str]], name: str) -> set[str]:
    """Names of every layer that ``name`` depends on, through any path."""
    seen: set[str] = set()
    stack = list(inbound[name])
    while stack:
        parent = stack.pop()
        if parent not in seen:
            seen.add(parent)
            stack.extend(inbound[parent])
    return seen


def previous_conv_layer(model: keras.Model, layer: str) -> str | None:
    """The nearest Conv2D upstream of ``layer`` through single-input layers.

    None when the walk reaches the model input or a layer with several inputs (Add, ...).
    """
    inbound = _inbound(model)
    _layer(model, layer)
    while len(inbound[layer]) == 1:
        layer = inbound[layer][0]
        if isinstance(model.get_layer(layer), keras.layers.Conv2D):
            return layer
    return None


def next_conv_layer(model: keras.Model, layer: str) -> str | None:
    """The nearest Conv2D downstream of ``layer`` along a plain chain.

    Each step must have exactly one consumer that reads only this layer; otherwise (a
    branch, a merge, the model output) the answer is None.
    """
    inbound = _inbound(model)
    _layer(model, layer)
    while True:
        consumers = [name for name, parents in inbound.items() if layer in parents]
        if len(consumers) != 1 or len(inbound[consumers[0]]) != 1:
            return None
        layer = consumers[0]
        if isinstance(model.get_layer(layer), keras.layers.Conv2D):
            return layer


# --- adjacent layers: the kernel --------------------------------------------------------------


def _numpy(variable: keras.Variable) -> np.ndarray:
    return np.asarray(variable.numpy())


def _check_channels(layer: keras.layers.Layer, channels: Sequence[int]) -> None:
    count = layer.output.shape[-1]
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise UnsupportedCircuit(
            f"circuits: layer {layer.name!r} has {count} channels; channel {bad[0]} does not exist"
        )


def incoming_kernel(model: keras.Model, layer: str, channel: int) -> np.ndarray:
    """The (kh, kw, C_in) slice ``kernel[:, :, :, channel]`` of a Conv2D layer."""
    conv = _layer(model, layer)
    if not isinstance(conv, keras.layers.Conv2D):
        raise UnsupportedCircuit(
            f"circuits: {layer!r} is a {type(conv).__name__}, not a Conv2D layer; it has no kernel"
        )
    _check_channels(conv, [channel])
    return _numpy(conv.kernel)[:, :, :, channel]


def rank_inputs(kernel_slice: np.ndarray, top_k: int) -> list[InputWeight]:
    """The ``top_k`` input channels of a (kh, kw, C_in) kernel slice, strongest first.

    Strength is the Frobenius norm ``sqrt(sum_{dy, dx} w[dy, dx, i]**2)``; equal norms keep
    the lower channel index first.
    """
    norms = np.sqrt(np.sum(np.square(kernel_slice), axis=(0, 1)))
    excitatory = np.sum(np.maximum(kernel_slice, 0), axis=(0, 1))
    inhibitory = np.sum(np.minimum(kernel_slice, 0), axis=(0, 1))
    order = np.argsort(-norms, kind="stable")[:top_k]
    return [
        InputWeight(int(i), float(norms[i]), float(excitatory[i]), float(inhibitory[i]))
        for i in order
    ]


def kernel_norms(model: keras.Model, layer: str) -> np.ndarray:
    """Frobenius norms of every (input channel, output channel) kernel of a Conv2D: shape (C_in, C_out).

    Column ``o`` ranks the inputs of unit ``o``; row ``i`` ranks the units that input ``i`` feeds.
    """
    conv = _layer(model, layer)
    if not isinstance(conv, keras.layers.Conv2D):
        raise UnsupportedCircuit(f"circuits: {layer!r} is a {type(conv).__name__}, not a Conv2D layer; it has no kernel")
    return np.sqrt(np.sum(np.square(_numpy(conv.kernel)), axis=(0, 1)))


# --- any distance: expanded weights --------------------------------------------------------


def _name(activation) -> str:
    return getattr(activation, "__name__", repr(activation))


def _refusal(layer: keras.layers.Layer) -> str | None:
    """Why ``layer`` cannot be linearised, or None when it can."""
    what = f"{type(layer).__name__} layer {layer.name!r}"
    if isinstance(layer, keras.layers.Conv2D):
        activation = _name(layer.activation)
        if activation not in _LINEARISED_ACTIVATIONS:
            return f"{what} with activation {activation!r}"
        if layer.groups != 1:
            return f"{what} with groups={layer.groups}"
        return None
    if isinstance(layer, keras.layers.Activation):
        activation = _name(layer.activation)
        if activation not in _LINEARISED_ACTIVATIONS:
            return f"{what} with activation {activation!r}"
        return None
    if isinstance(layer, keras.layers.BatchNormalization):
        return None if layer.axis in (-1, 3) else f"{what} over axis {layer.axis}"
    supported = (
        keras.layers.ReLU,
        keras.layers.MaxPooling2D,
        keras.layers.AveragePooling2D,
        keras.layers.ZeroPadding2D,
    )
    return None if isinstance(layer, supported) else what


def chain_between(model: keras.Model, source: str, target: str) -> list[keras.layers.Layer]:
    """The layers strictly after ``source`` up to and including ``target``, in order.

    Refused (UnsupportedCircuit) unless ``source`` is upstream of ``target`` and every layer
    on the way has exactly one input and can be linearised: Conv2D (activation relu or
    linear, any stride, padding, dilation; not grouped), ReLU / Activation('relu'),
    MaxPooling2D, AveragePooling2D, ZeroPadding2D and BatchNormalization (kept as its
    per-channel scale ``gamma / sqrt(moving_variance + epsilon)``; the shift is a bias).
    """
    _layer(model, source)
    layer = _layer(model, target)
    inbound = _inbound(model)

    def refuse(reason: str) -> UnsupportedCircuit:
        return UnsupportedCircuit(f"circuits: {target} <- {source}: {reason}")

    if source not in _ancestors(inbound, target):
        raise refuse(f"{source!r} is not upstream of {target!r}")
    chain = []
    while layer.name != source:
        parents = inbound[layer.name]
        if len(parents) != 1:
            raise refuse(f"the path goes through {type(layer).__name__} layer "
                         f"{layer.name!r}; {_PLAIN_CHAINS_ONLY}")
        reason = _refusal(layer)
        if reason:
            raise refuse(f"the path goes through {reason}; {_PLAIN_CHAINS_ONLY}")
        chain.append(layer)
        layer = model.get_layer(parents[0])
    return chain[::-1]


def _per_channel(v: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``v @ matrix`` on the last (channel) axis of ``v``, as one matrix product."""
    return (v.reshape(-1, v.shape[-1]) @ matrix).reshape(v.shape[:-1] + matrix.shape[1:])


def _back_through_window(v, channels_in, kernel_size, strides, dilation, tap) -> np.ndarray:
    """Carry weights ``v`` on a window op's output back onto its input.

    The op reads input offset ``s*d + r*t`` for output offset ``d`` and tap ``t`` (stride
    s, dilation r), so ``out[s*d + r*t] += tap(t)``, where ``tap(t)`` is ``v`` pushed
    through tap t's channel weights. ``v`` is (h, w, n, C_out); the result is
    (s*(h-1) + r*(k-1) + 1, ..., n, C_in) per spatial axis.
    """
    (kh, kw), (sh, sw), (rh, rw) = kernel_size, strides, dilation
    h, w, n, _ = v.shape
    out = np.zeros((sh * (h - 1) + rh * (kh - 1) + 1, sw * (w - 1) + rw * (kw - 1) + 1,
                    n, channels_in), dtype=v.dtype)
    for a, b in np.ndindex(kh, kw):
        rows = slice(rh * a, rh * a + sh * (h - 1) + 1, sh)
        cols = slice(rw * b, rw * b + sw * (w - 1) + 1, sw)
        out[rows, cols] += tap(a, b)
    return out


def _back_through(layer: keras.layers.Layer, v: np.ndarray) -> np.ndarray:
    """Weights on ``layer``'s input, given weights ``v`` (h, w, n, C_out) on its output.

    ``v[y, x, k, o]`` is the weight of the layer's output (y, x, o) on the k-th selected
    target channel. Conv: ``tap(t) = v @ kernel[t].T``. Pooling (max taken as average):
    ``tap = v / (ph * pw)``, channel by channel. BatchNorm: ``v * scale`` per channel. ReLU
    and zero padding are the identity on weights (padding only moves the border, and the
    expanded weights are those of a position away from it).
    """
    if isinstance(layer, keras.layers.Conv2D):
        kernel = _numpy(layer.kernel).astype(v.dtype)  # (kh, kw, C_in, C_out)
        return _back_through_window(v, kernel.shape[2], layer.kernel_size, layer.strides,
                                    layer.dilation_rate,
                                    lambda a, b: _per_channel(v, kernel[a, b].T))
    if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        area = layer.pool_size[0] * layer.pool_size[1]
        return _back_through_window(v, v.shape[3], layer.pool_size, layer.strides, (1, 1),
                                    lambda a, b: v / area)
    if isinstance(layer, keras.layers.BatchNormalization):
        scale = 1 / np.sqrt(_numpy(layer.moving_variance) + layer.epsilon)
        if layer.gamma is not None:
            scale = scale * _numpy(layer.gamma)
        return v * scale.astype(v.dtype)
    return v


def _centre_window(v: np.ndarray, window: int) -> np.ndarray:
    """Crop or zero-pad the two spatial axes of ``v`` to ``window`` around their centre.

    Keeps rows ``start .. start + window - 1`` with ``start = floor((h - window) / 2)``
    (likewise columns); rows outside ``v`` are zeros.
    """
    h, w = v.shape[:2]
    padded = np.pad(v, [(window, window), (window, window)] + [(0, 0)] * (v.ndim - 2))
    top, left = (h - window) // 2 + window, (w - window) // 2 + window
    return padded[top : top + window, left : left + window]


def expanded_weights(
    model: keras.Model,
    source: str,
    target: str,
    channels: Sequence[int],
    window: int | None = None,
) -> np.ndarray:
    """Distill's expanded weights of ``source`` activations on ``target`` channels.

    With the chain linearised (see ``chain_between``), target activation ``(p, c)`` is
    ``sum_{d, i} W[d, i, c] * source[S*p - P + d, i]``: one window op with stride S, offset P
    and kernel W, the composition of the layer kernels. ``W[..., channels]`` is returned,
    shape (Rh, Rw, C_source, len(channels)), with (Rh, Rw) the receptive field of one target
    position on ``source``: ``W[dy, dx, i, k]`` is the derivative of target channel
    ``channels[k]`` at a position away from the borders with respect to source channel
    ``i`` at offset (dy, dx) from the top-left of its receptive field. Biases and the ReLUs
    do not enter; for adjacent conv layers (undilated) ``W`` is ``kernel[:, :, :, channels]``.

    All channels are carried back in one pass: starting from the one-hot selection
    (1, 1, n, C_target), each layer maps weights on its output to weights on its input.
    ``window`` crops (or zero-pads) the result to window x window around the receptive
    field's centre (see ``_centre_window``); strided layers can make the receptive field
    even-sized, so its centre then falls between two source positions.
    """
    chain = chain_between(model, source, target)
    channels = [int(c) for c in channels]
    _check_channels(chain[-1], channels)
    if window is not None and window < 1:
        raise UnsupportedCircuit(f"circuits: the window must be a positive size, not {window}")
    v = np.eye(chain[-1].output.shape[-1], dtype=np.float32)[channels][None, None]
    for layer in reversed(chain):
        v = _back_through(layer, v)
    if window is not None:
        v = _centre_window(v, window)
    return np.ascontiguousarray(v.transpose(0, 1, 3, 2))
