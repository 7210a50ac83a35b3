"""The graph between two layers made linear, and weights carried back through it.

Distill's recipe ("Visualizing Weights", and the circuits of InceptionV1): ReLU -> identity,
max-pool -> average-pool, biases dropped, BatchNormalization kept as its per-channel scale
``gamma / sqrt(moving_variance + epsilon)`` (its shift is a bias). What remains between two layers
is linear, so the weight of an earlier activation on a later one is a derivative of that linear
map: ``Add`` hands the weights to each of its inputs (paths that meet again sum, a residual
connection included), ``Average`` the same divided by the count, ``Concatenate`` hands each input
its own range of channels.

Weights travel back from a start layer over the graph in reverse topological order, in numpy (no
autodiff, the same on every Keras backend), call by call (:func:`generator.analysis.graph.calls`): a
layer the model uses several times (one ReLU after three convs) is crossed on each call that lies on
the path, each at its own input size. A :class:`Field` holds the weights on one layer's
output for a patch of positions and where that patch lies: spatially (``spatial=True``, expanded
weights) each window op spreads them over its taps; per channel only (``spatial=False``, direct
weights) pooling and padding pass them unchanged, so a kernel stays a kernel.

A layer's own activation is not on the path: weights are those on its pre-activation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property

import keras
import numpy as np

from generator.analysis import graph
from generator.errors import GeneratorError
from generator.geometry import pair, same_padding_lead

L = keras.layers
KERNEL_LAYERS = (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D)
_POOLS = (L.MaxPooling2D, L.AveragePooling2D)
_IDENTITIES = (L.ReLU, L.Dropout, L.SpatialDropout2D, L.GaussianNoise, L.GaussianDropout, L.Identity)
_LINEARISED_ACTIVATIONS = {"relu", "relu6", "linear"}  # ReLU layers (max_value too) likewise
_HOW = "paths are made linear through conv, pooling, padding, ReLU, BatchNormalization, Add and Concatenate layers"


class UnsupportedCircuit(GeneratorError):
    """The requested circuit is not defined for this model (one line for the user)."""


@dataclass(frozen=True)
class Field:
    """Weights on one layer's output: ``weights[y, x, k, c]`` is the weight of its activation
    (corner + (y, x), channel c) on the k-th target, where ``corner`` is counted from ``stride``
    times the target position. ``reached`` marks the channels that some path reaches (a depthwise
    target reaches one), whatever their weight."""

    weights: np.ndarray  # (h, w, n, C)
    reached: np.ndarray  # (C,) bool
    corner: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)


def _name(activation) -> str:
    return getattr(activation, "__name__", repr(activation))


def refusal(layer: keras.layers.Layer, own_activation: bool = True) -> str | None:
    """Why ``layer`` cannot be made linear, or None when it can (``own_activation=False``: a
    target's activation does not count, its weights are those on its pre-activation)."""
    what = f"{type(layer).__name__} layer {layer.name!r}"
    if isinstance(layer, L.LayerNormalization):
        return f"{what}, which divides each position by its own spread over channels: no fixed weight folds it"
    if isinstance(layer, (L.Activation, *KERNEL_LAYERS)) and (own_activation or isinstance(layer, L.Activation)):
        activation = _name(layer.activation)
        if activation not in _LINEARISED_ACTIVATIONS:
            return f"{what} with activation {activation!r}, which cannot be made linear"
    if isinstance(layer, L.Conv2D) and layer.groups != 1:
        return f"{what} with groups={layer.groups}"
    if isinstance(layer, L.BatchNormalization) and layer.axis not in (-1, 3):
        return f"{what} over axis {layer.axis}"
    if isinstance(layer, L.Concatenate) and layer.axis not in (-1, 3):
        return f"{what} along axis {layer.axis}, not the channels"
    supported = (L.InputLayer, L.Activation, *KERNEL_LAYERS, *_POOLS, *_IDENTITIES, L.ZeroPadding2D,
                 L.Cropping2D, L.BatchNormalization, L.Add, L.Average, L.Concatenate)
    return None if isinstance(layer, supported) else f"{what}, which is not one of them"


def dense_kernel(layer: keras.layers.Layer) -> np.ndarray:
    """The (kh, kw, C_in, C_out) kernel of a conv layer as one plain convolution.

    DepthwiseConv2D: output channel ``c = k*m + j`` reads input channel k alone (depth multiplier
    m), so the kernel is zero off those pairs. SeparableConv2D (depthwise, then pointwise):
    ``sum_j depthwise[:, :, i, j] * pointwise[0, 0, i*m + j, o]``.
    """
    if isinstance(layer, L.Conv2D):
        return np.asarray(layer.kernel.numpy())
    separable = isinstance(layer, L.SeparableConv2D)
    depthwise = np.asarray((layer.depthwise_kernel if separable else layer.kernel).numpy())  # (kh, kw, C_in, m)
    kh, kw, c_in, m = depthwise.shape
    if separable:
        pointwise = np.asarray(layer.pointwise_kernel.numpy())[0, 0].reshape(c_in, m, -1)
        return np.einsum("abij,ijo->abio", depthwise, pointwise)
    dense = np.zeros((kh, kw, c_in, c_in * m), dtype=depthwise.dtype)
    for k in range(c_in):
        dense[:, :, k, k * m:(k + 1) * m] = depthwise[:, :, k]
    return dense


def kernel_reach(layer: keras.layers.Layer, reached: np.ndarray) -> np.ndarray:
    """The input channels of a conv layer that its ``reached`` output channels read."""
    c_in = layer.input.shape[-1]
    if isinstance(layer, L.DepthwiseConv2D):
        return reached.reshape(c_in, -1).any(axis=1)
    return np.full(c_in, reached.any())


class _Lengths:
    """Input lengths of calls along each spatial axis (a shared pooling layer may see several): static where
    the model fixes them, else worked out from ``image_size`` (None: unknown)."""

    def __init__(self, model: keras.Model, every: Mapping[str, graph.Call], image_size: int | None):
        self.model, self.every, self.image_size = model, every, image_size

    @cached_property
    def _shapes(self) -> dict[str, tuple]:
        windows = [call for call in self.every.values() if isinstance(call.layer, (*KERNEL_LAYERS, *_POOLS))]
        probe = keras.Model(self.model.inputs, [call.inputs[0] for call in windows])
        shape = (1, self.image_size, self.image_size, self.model.inputs[0].shape[-1])
        specs = probe.compute_output_spec(keras.KerasTensor(shape))
        return {call.key: tuple(spec.shape) for call, spec in zip(windows, specs)}

    def __call__(self, call: graph.Call, axis: int) -> int | None:
        n = call.inputs[0].shape[1 + axis]
        if n is None and self.image_size is not None:
            n = self._shapes[call.key][1 + axis]
        return n


def _lead(layer, span: int, stride: int, n: int | None) -> int:
    """Rows (or columns) a window layer pads before its input."""
    return 0 if str(layer.padding).lower() == "valid" else same_padding_lead(n, stride, span)


def _per_channel(v: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``v @ matrix`` on the last (channel) axis of ``v``, as one matrix product."""
    return (v.reshape(-1, v.shape[-1]) @ matrix).reshape(v.shape[:-1] + matrix.shape[1:])


def _window(field: Field, call: graph.Call, lengths: _Lengths, channels_in: int,
            tap: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """Weights on a window op's input from those on its output.

    Output position d reads input ``s*d + r*t - lead`` with tap t (stride s, dilation r), so
    ``out[s*y + r*t] += tap(t)`` for ``weights[y]``, and the patch's corner moves to ``s*corner - lead``.
    """
    layer = call.layer
    pooling = isinstance(layer, _POOLS)
    size = pair(layer.pool_size if pooling else layer.kernel_size)
    strides = pair(layer.strides)
    dilation = (1, 1) if pooling else pair(layer.dilation_rate)
    h, w, n, _ = field.weights.shape
    (kh, kw), (sh, sw), (rh, rw) = size, strides, dilation
    out = np.zeros((sh * (h - 1) + rh * (kh - 1) + 1, sw * (w - 1) + rw * (kw - 1) + 1, n, channels_in),
                   dtype=field.weights.dtype)
    for a, b in np.ndindex(kh, kw):
        out[rh * a:rh * a + sh * (h - 1) + 1:sh, rw * b:rw * b + sw * (w - 1) + 1:sw] += tap(a, b)
    corner = tuple(s * c - _lead(layer, r * (k - 1) + 1, s, lengths(call, axis))
                   for axis, (s, c, r, k) in enumerate(zip(strides, field.corner, dilation, size)))
    return replace(field, weights=out, corner=corner,
                   stride=(field.stride[0] * sh, field.stride[1] * sw))


def _back(call: graph.Call, field: Field, parents: list[graph.Call], spatial: bool, lengths: _Lengths) -> list[Field]:
    """The fields on each input of ``call`` (in ``parents`` order) from the field on its output."""
    layer, v = call.layer, field.weights
    if isinstance(layer, KERNEL_LAYERS):
        kernel = dense_kernel(layer).astype(v.dtype)
        moved = _window(field, call, lengths, kernel.shape[2], lambda a, b: _per_channel(v, kernel[a, b].T))
        return [replace(moved, reached=kernel_reach(layer, field.reached))]
    if isinstance(layer, _POOLS) and spatial:
        area = layer.pool_size[0] * layer.pool_size[1]
        return [_window(field, call, lengths, v.shape[3], lambda a, b: v / area)]
    if isinstance(layer, (L.ZeroPadding2D, L.Cropping2D)) and spatial:
        sign = -1 if isinstance(layer, L.ZeroPadding2D) else 1
        edges = layer.padding if sign < 0 else layer.cropping
        moved = tuple(c + sign * pair(e)[0] for c, e in zip(field.corner, edges))
        return [replace(field, corner=moved)]
    if isinstance(layer, L.BatchNormalization):
        return [replace(field, weights=v * batchnorm_scale(layer).astype(v.dtype))]
    if isinstance(layer, L.Add):
        return [field] * len(parents)
    if isinstance(layer, L.Average):
        return [replace(field, weights=v / len(parents))] * len(parents)
    if isinstance(layer, L.Concatenate):
        widths = [p.outputs[0].shape[-1] for p in parents]
        return [replace(field, weights=v[..., end - n:end], reached=field.reached[end - n:end])
                for n, end in zip(widths, np.cumsum(widths))]
    return [field]


def batchnorm_scale(layer: keras.layers.BatchNormalization) -> np.ndarray:
    """``gamma / sqrt(moving_variance + epsilon)`` per channel (gamma 1 without ``scale``)."""
    scale = 1 / np.sqrt(np.asarray(layer.moving_variance.numpy()) + layer.epsilon)
    return scale * np.asarray(layer.gamma.numpy()) if layer.gamma is not None else scale


def _combine(a: Field | None, b: Field, layer: str) -> Field:
    """Two fields on the same layer (paths that meet again), summed on the union of their patches."""
    if a is None:
        return b
    if a.stride != b.stride:
        raise UnsupportedCircuit(f"circuits: paths reach layer {layer!r} at different strides ({a.stride} and "
                                 f"{b.stride}), so their weights do not line up")
    top, left = (min(p, q) for p, q in zip(a.corner, b.corner))
    bottom, right = (max(p + s, q + t) for p, q, s, t in zip(a.corner, b.corner, a.weights.shape, b.weights.shape))
    out = np.zeros((bottom - top, right - left) + a.weights.shape[2:], dtype=a.weights.dtype)
    for f in (a, b):
        y, x = f.corner[0] - top, f.corner[1] - left
        out[y:y + f.weights.shape[0], x:x + f.weights.shape[1]] += f.weights
    return Field(out, a.reached | b.reached, (top, left), a.stride)


@dataclass(frozen=True)
class Carried:
    """Where weights carried back ended: a field per source layer, the layers they crossed, and the
    layers without inputs (the model input) that some path reached before any source."""

    sources: dict[str, Field]
    crossed: tuple[keras.layers.Layer, ...]
    dead_ends: tuple[str, ...]


def _region(inbound: Mapping[str, list[str]], starts, is_source: Callable[[str], bool]):
    """(layers between the starts and the sources, sources found, dead ends: layers with no input)."""
    region, sources, dead, stack = set(), set(), set(), list(starts)
    while stack:
        name = stack.pop()
        if name in region or name in sources:
            continue
        if is_source(name):
            sources.add(name)
        elif not inbound[name]:
            dead.add(name)
        else:
            region.add(name)
            stack.extend(inbound[name])
    consumers: dict[str, list[str]] = {}
    for name in region:
        for parent in inbound[name]:
            consumers.setdefault(parent, []).append(name)
    leading, stack = set(), list(sources)  # the region's layers from which a path reaches a source
    while stack:
        for name in consumers.get(stack.pop(), ()):
            if name not in leading:
                leading.add(name)
                stack.append(name)
    return leading, sources, dead


def carry_back(model: keras.Model, starts: dict[str, Field], is_source: Callable[[keras.layers.Layer], bool],
               *, spatial: bool, image_size: int | None = None, where: str = "") -> Carried:
    """Carry the fields on ``starts``' outputs back to the nearest layers where ``is_source`` holds.

    Paths that reach no source are left out; a layer on the way that cannot be made linear raises
    UnsupportedCircuit (``where``: the message's prefix). Each start's own activation is not on
    the path.
    """
    every = graph.calls(model)
    inbound = {key: list(call.parents) for key, call in every.items()}
    region, sources, dead = _region(inbound, starts, lambda key: is_source(every[key].layer))
    _check_called_once(every, sources, where)
    pending = {key: sum(inbound[m].count(key) for m in region) for key in region | sources}
    fields, lengths, crossed = dict(starts), _Lengths(model, every, image_size), []
    ready = [key for key in starts if key in region and not pending[key]]
    while ready:
        key = ready.pop()
        call = every[key]
        reason = refusal(call.layer, own_activation=key not in starts)  # a conv start: the expanded target
        if reason:
            raise UnsupportedCircuit(f"circuits: {where}the path goes through {reason}; {_HOW}")
        check_reads_layers(call, where)
        crossed.append(call.layer)
        parents = inbound[key]
        for parent, field in zip(parents, _back(call, fields.pop(key), [every[p] for p in parents], spatial, lengths)):
            if parent in pending:
                fields[parent] = _combine(fields.get(parent), field, parent)
                pending[parent] -= 1
                if not pending[parent] and parent in region:
                    ready.append(parent)
    in_order = [key for key in every if key in sources]
    return Carried({key: fields[key] for key in in_order}, tuple(crossed), tuple(sorted(dead)))


def check_reads_layers(call: graph.Call, where: str = "") -> None:
    """Refuse a call that reads the output of an operation that is not a layer (``x + y`` in a functional
    model is recorded as an operation): the graph's records see through it, the weights cannot."""
    for tensor in call.inputs:
        operation = tensor._keras_history[0]
        if not isinstance(operation, keras.layers.Layer):
            kind = type(operation).__name__
            advice = f": write it as keras.layers.{kind}()" if hasattr(keras.layers, kind) else ""
            raise UnsupportedCircuit(f"circuits: {where}{call.layer.name!r} reads operation {operation.name!r} ({kind}, "
                                     f"an expression such as x + y, not a layer); {_HOW}{advice}")


def _check_called_once(every: Mapping[str, graph.Call], sources: set[str], where: str) -> None:
    """Weights end on a source layer's units: a source the model calls several times has no single
    activation per unit, so the circuit is refused (weights pass through shared layers on the way)."""
    grouped = graph.calls_by_layer(dict(every))
    for key in (key for key in every if key in sources):  # in graph order: the same line every build
        layer = every[key].layer
        own = grouped[layer.name]
        if len(own) > 1:
            calls = ", ".join(call.key for call in own)
            raise UnsupportedCircuit(
                f"circuits: {where}the path reaches {type(layer).__name__} layer {layer.name!r}, which the model calls "
                f"{len(own)} times ({calls}), so its units are not one activation each; circuits end on layers "
                f"called once (a shared activation or pooling on the way is followed call by call)")
