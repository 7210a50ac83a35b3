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

import keras
import numpy as np

from generator.analysis import graph
from generator.errors import GeneratorError
from generator.results import Circuit, CircuitEdge, CircuitInput, CircuitWeights, LayerLinks, Unit

_PLAIN_CHAINS_ONLY = "expanded weights are only defined for plain chains of conv/pool/relu layers"
_LINEARISED_ACTIVATIONS = {"relu", "linear"}
_NO_SINGLE_INPUT = ("No single conv layer feeds {layer} directly: it is the first conv layer, or its input comes "
                    "from a merge (Add, Concatenate), where weights alone do not say which unit feeds it")


class UnsupportedCircuit(GeneratorError):
    """The requested circuit is not defined for this model (one line for the user)."""


# --- a featured unit's circuit --------------------------------------------------------------------


def circuit(model: keras.Model, unit: Unit, top_k: int, earlier_layer: str = "", window: int | None = None) -> Circuit:
    """The inputs of ``unit``: direct weights from the conv layer before it, ranked by kernel norm,
    and (with ``earlier_layer``) expanded weights from an earlier conv layer plus the edges
    earlier -> previous between the top inputs of both, for the circuit diagram.

    Where weights cannot say which unit feeds it (a merge on the way, the first conv layer) the
    result is not supported and says why.
    """
    previous = graph.previous_conv_layer(model, unit.layer)
    if previous is None:
        return Circuit(unit, CircuitWeights("", False, _NO_SINGLE_INPUT.format(layer=unit.layer)))
    try:
        chain_between(model, previous, unit.layer)
    except UnsupportedCircuit as e:
        return Circuit(unit, CircuitWeights(previous, False, str(e)))
    direct = circuit_weights(previous, incoming_kernel(model, unit.layer, unit.channel), top_k)
    if not earlier_layer:
        return Circuit(unit, direct)
    try:
        weights = expanded_weights(model, earlier_layer, unit.layer, [unit.channel], window)[..., 0]
        expanded = circuit_weights(earlier_layer, weights, top_k)
        return Circuit(unit, direct, expanded, _edges(model, expanded, direct, window))
    except UnsupportedCircuit as e:
        return Circuit(unit, direct, CircuitWeights(earlier_layer, False, str(e)))


def _edges(model: keras.Model, earlier: CircuitWeights, direct: CircuitWeights, window: int | None
           ) -> tuple[CircuitEdge, ...]:
    """Expanded weights between the top inputs of two layers (none when they are the same layer)."""
    if earlier.layer == direct.layer:
        return ()
    targets = [w.unit for w in direct.top]
    between = expanded_weights(model, earlier.layer, direct.layer, [t.channel for t in targets], window)
    return tuple(
        CircuitEdge(w.unit, t, float(np.linalg.norm(between[:, :, w.unit.channel, k])),
                    float(between[:, :, w.unit.channel, k].sum()))
        for k, t in enumerate(targets) for w in earlier.top
    )


def circuit_weights(layer: str, weights: np.ndarray, top_k: int) -> CircuitWeights:
    """Every input channel of a (h, w, C_in) weight slice from ``layer``, ranked by norm, and the top-k kernels."""
    ranked = rank_inputs(weights, layer)
    top = [w.unit.channel for w in ranked[:top_k]]
    return CircuitWeights(layer, True, inputs=ranked, top_kernels=np.ascontiguousarray(weights[..., top]))


def layer_links(model: keras.Model, layer: str) -> LayerLinks:
    """Kernel norms between ``layer`` and the conv layers just before and after it (plain chains only)."""
    sides = {}
    for side, neighbour, source, target in (
        ("incoming", graph.previous_conv_layer(model, layer), None, layer),
        ("outgoing", graph.next_conv_layer(model, layer), layer, None),
    ):
        if neighbour is None:
            continue
        try:
            chain_between(model, source or neighbour, target or neighbour)
        except UnsupportedCircuit:
            continue
        sides[side] = kernel_norms(model, target or neighbour)
        sides[f"{side}_layer"] = neighbour
    return LayerLinks(**sides)


# --- adjacent layers: the kernel --------------------------------------------------------------


def _numpy(variable: keras.Variable) -> np.ndarray:
    return np.asarray(variable.numpy())


def _conv(model: keras.Model, layer: str) -> keras.layers.Conv2D:
    conv = graph.model_layer(model, layer, "circuits")
    if not isinstance(conv, keras.layers.Conv2D):
        raise UnsupportedCircuit(f"circuits: {layer!r} is a {type(conv).__name__}, not a Conv2D layer; it has no kernel")
    return conv


def incoming_kernel(model: keras.Model, layer: str, channel: int) -> np.ndarray:
    """The (kh, kw, C_in) slice ``kernel[:, :, :, channel]`` of a Conv2D layer."""
    conv = _conv(model, layer)
    graph.check_channels(graph.layer_info(conv), [channel], "circuits")
    return _numpy(conv.kernel)[:, :, :, channel]


def rank_inputs(kernel_slice: np.ndarray, layer: str, top_k: int | None = None) -> tuple[CircuitInput, ...]:
    """The ``top_k`` (default: all) input channels of ``layer`` in a (kh, kw, C_in) kernel slice, strongest first.

    Strength is the Frobenius norm ``sqrt(sum_{dy, dx} w[dy, dx, i]**2)``; equal norms keep
    the lower channel index first.
    """
    norms = np.sqrt(np.sum(np.square(kernel_slice), axis=(0, 1)))
    excitatory = np.sum(np.maximum(kernel_slice, 0), axis=(0, 1))
    inhibitory = np.sum(np.minimum(kernel_slice, 0), axis=(0, 1))
    order = np.argsort(-norms, kind="stable")[:top_k]
    return tuple(
        CircuitInput(Unit(layer, int(i)), rank + 1, float(norms[i]), float(excitatory[i]), float(inhibitory[i]))
        for rank, i in enumerate(order)
    )


def kernel_norms(model: keras.Model, layer: str) -> np.ndarray:
    """Frobenius norms of every (input channel, output channel) kernel of a Conv2D: shape (C_in, C_out).

    Column ``o`` ranks the inputs of unit ``o``; row ``i`` ranks the units that input ``i`` feeds.
    """
    return np.sqrt(np.sum(np.square(_numpy(_conv(model, layer).kernel)), axis=(0, 1)))


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
    graph.model_layer(model, source, "circuits")
    layer = graph.model_layer(model, target, "circuits")
    inbound = graph.inbound(model)

    def refuse(reason: str) -> UnsupportedCircuit:
        return UnsupportedCircuit(f"circuits: {target} <- {source}: {reason}")

    if source not in graph.ancestors(inbound, target):
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
    graph.check_channels(graph.layer_info(chain[-1]), channels, "circuits")
    if window is not None and window < 1:
        raise UnsupportedCircuit(f"circuits: the window must be a positive size, not {window}")
    v = np.eye(chain[-1].output.shape[-1], dtype=np.float32)[channels][None, None]
    for layer in reversed(chain):
        v = _back_through(layer, v)
    if window is not None:
        v = _centre_window(v, window)
    return np.ascontiguousarray(v.transpose(0, 1, 3, 2))
