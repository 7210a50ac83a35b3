"""Circuits: which filters of earlier layers feed a chosen filter, and by how much.

*Direct* weights read the kernel of the unit's conv layer (Keras convolution is
cross-correlation, so ``kernel[:, :, :, o]`` is output channel o's incoming weight) and follow each
input channel back to the conv layer that made it: through pooling, padding and ReLU unchanged,
through BatchNormalization times its scale ``gamma / sqrt(var + eps)``, through ``Add`` to every
input (a unit after a residual block lists the units of both paths), through ``Concatenate`` to
the branch that made that channel (a unit after an Inception block lists units of every branch).
A DepthwiseConv2D channel reads one input channel; a SeparableConv2D's two kernels fold into one.

For layers further apart we use Distill's *expanded weights* ("Visualizing Weights"): make the
graph between the layers linear (:mod:`generator.analysis.linearised`) and take the weight of every
source activation on one target activation, summed over the paths. A linear graph of window ops is
itself one window op, whose kernel we compose in numpy walking back from the target: no autodiff.

Layers are always addressed by name, never by position in ``model.layers``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np

from generator.analysis import graph
from generator.analysis.linearised import (
    KERNEL_LAYERS, Carried, Field, UnsupportedCircuit, carry_back, check_reads_layers, dense_kernel, kernel_reach,
)
from generator.results import Circuit, CircuitEdge, CircuitInput, CircuitWeights, LayerLinks, Unit

__all__ = ["UnsupportedCircuit", "circuit", "direct_inputs", "expanded_weights", "layer_links", "rank_inputs"]


# --- a featured unit's circuit --------------------------------------------------------------------


def circuit(model: keras.Model, unit: Unit, top_k: int, earlier_layer: str = "", window: int | None = None,
            image_size: int | None = None) -> Circuit:
    """The inputs of ``unit``: direct weights from the conv layers just before it, ranked by norm
    over all of them, and (with ``earlier_layer``) expanded weights from an earlier layer plus the
    edges earlier -> direct between the top inputs of both, for the circuit diagram.

    Where weights cannot say which unit feeds it (a layer on the way that cannot be made linear,
    the first conv layer) the result is not supported and says why. ``image_size`` places the
    paths of a merge after strided "same" layers in models of any input size.
    """
    try:
        carried = direct_inputs(model, unit.layer, [unit.channel])
    except UnsupportedCircuit as e:
        return Circuit(unit, CircuitWeights((), False, str(e)))
    kernels = {name: (w[..., 0], listed) for name, (w, listed) in _kernels(carried, reached_only=True).items()}
    direct = circuit_weights(kernels, top_k, _note(carried.crossed, model.get_layer(unit.layer)))
    if not earlier_layer:
        return Circuit(unit, direct)
    try:
        weights, crossed = _expanded(model, earlier_layer, unit.layer, [unit.channel], window, image_size)
        expanded = circuit_weights({earlier_layer: (weights[..., 0], None)}, top_k, _note(crossed))
        return Circuit(unit, direct, expanded, _edges(model, expanded, direct, window, image_size))
    except UnsupportedCircuit as e:
        return Circuit(unit, direct, CircuitWeights((earlier_layer,), False, str(e)))


def _edges(model: keras.Model, earlier: CircuitWeights, direct: CircuitWeights, window: int | None,
           image_size: int | None) -> tuple[CircuitEdge, ...]:
    """Expanded weights between the top inputs of the earlier layer and those of each direct layer
    downstream of it (none when the earlier layer is itself a direct one)."""
    (source,) = earlier.layers
    if source in direct.layers:
        return ()
    edges = []
    for layer in direct.layers:
        targets = [w.unit for w in direct.top if w.unit.layer == layer]
        if not targets or source not in graph.ancestors(graph.inbound(model), layer):
            continue
        between = expanded_weights(model, source, layer, [t.channel for t in targets], window, image_size)
        edges += [CircuitEdge(w.unit, t, float(np.linalg.norm(between[:, :, w.unit.channel, k])),
                              float(between[:, :, w.unit.channel, k].sum()))
                  for k, t in enumerate(targets) for w in earlier.top]
    return tuple(edges)


def circuit_weights(sources: Mapping[str, tuple[np.ndarray, np.ndarray | None]], top_k: int,
                    note: str = "") -> CircuitWeights:
    """Every input channel of (h, w, C) weight slices, one per source layer, ranked together by norm,
    and the top-k kernels. Each slice comes with the channels to list (None: all)."""
    units, slices = [], []
    for layer, (weights, listed) in sources.items():
        channels = range(weights.shape[-1]) if listed is None else np.flatnonzero(listed)
        units += [Unit(layer, int(c)) for c in channels]
        slices.append(weights if listed is None else weights[..., listed])
    weights = slices[0] if len(slices) == 1 else np.concatenate(slices, axis=-1)
    ranked = rank_inputs(weights, units)
    position = {u: i for i, u in enumerate(units)}
    top = [position[w.unit] for w in ranked[:top_k]]
    layers = tuple(layer for layer in sources if any(u.layer == layer for u in units))
    return CircuitWeights(layers, True, inputs=ranked, top_kernels=np.ascontiguousarray(weights[..., top]),
                          note=note)


def _note(crossed: Sequence[keras.layers.Layer], target: keras.layers.Layer | None = None) -> str:
    """One line on what the weights include beyond a kernel: folded scales, merges, depthwise kernels."""
    parts = []
    if isinstance(target, keras.layers.SeparableConv2D):
        parts.append(f"{target.name!r} is a SeparableConv2D: its depthwise and pointwise kernels are folded "
                     f"into one kernel per input channel")
    elif isinstance(target, keras.layers.DepthwiseConv2D):
        parts.append(f"{target.name!r} is a DepthwiseConv2D: its channel c = k*{target.depth_multiplier} + j "
                     f"reads input channel k alone, through one kernel")
    for kind, text in (
        (keras.layers.BatchNormalization, "BatchNormalization scales gamma / sqrt(variance + epsilon) folded in "
                                          "(a negative one flips the sign):"),
        (keras.layers.Add, "paths summed at Add"),
        (keras.layers.Average, "paths averaged at Average"),
        (keras.layers.Concatenate, "channels followed to their own branch at Concatenate"),
    ):
        names = list(dict.fromkeys(repr(layer.name) for layer in crossed if isinstance(layer, kind)))  # a shared layer once
        if names:
            parts.append(f"{text} {', '.join(names)}")
    return "; ".join(parts)


def layer_links(model: keras.Model, layer: str) -> LayerLinks:
    """Direct-weight norms between ``layer`` and the conv layer that feeds it and the one it feeds,
    where one conv layer alone is on that side (BatchNormalization folded in)."""
    sides = {}
    incoming = _single_source_norms(model, layer)
    if incoming:
        sides["incoming_layer"], sides["incoming"] = incoming
    after = graph.next_conv_layer(model, layer)
    outgoing = _single_source_norms(model, after) if after else None
    if outgoing and outgoing[0] == layer:
        sides["outgoing_layer"], sides["outgoing"] = after, outgoing[1]
    return LayerLinks(**sides)


def _single_source_norms(model: keras.Model, layer: str) -> tuple[str, np.ndarray] | None:
    """(the one conv layer feeding ``layer``, norms (C_source, C_layer) of every direct weight), or None."""
    try:
        carried = direct_inputs(model, layer, range(model.get_layer(layer).output.shape[-1]))
    except UnsupportedCircuit:
        return None
    if len(carried.sources) != 1:
        return None
    ((source, (weights, _)),) = _kernels(carried, reached_only=False).items()
    return source, np.sqrt(np.sum(np.square(weights), axis=(0, 1)))


# --- adjacent layers: the kernel --------------------------------------------------------------


def _conv(model: keras.Model, layer: str) -> keras.layers.Layer:
    conv = graph.model_layer(model, layer, "circuits")
    if not isinstance(conv, KERNEL_LAYERS):
        raise UnsupportedCircuit(f"circuits: {layer!r} is a {type(conv).__name__}, not a conv layer; it has no kernel")
    return conv


def direct_inputs(model: keras.Model, layer: str, channels: Sequence[int]) -> Carried:
    """The kernel of ``channels`` of conv layer ``layer`` carried back, per input channel, to the conv
    layers that make those channels: a :class:`~generator.analysis.linearised.Field` of shape
    (kh, kw, len(channels), C_source) per source layer, ``reached`` marking the channels read."""
    conv = _conv(model, layer)
    channels = [int(c) for c in channels]
    graph.check_channels(graph.layer_info(conv), channels, "circuits")
    selected = np.zeros(conv.output.shape[-1], dtype=bool)
    selected[channels] = True
    kernel = dense_kernel(conv)[:, :, :, channels].transpose(0, 1, 3, 2)
    check_reads_layers(graph.calls(model)[layer], f"direct inputs of {layer}: ")
    parents = graph.inbound(model)[layer]
    carried = parents and carry_back(model, {parents[0]: Field(kernel, kernel_reach(conv, selected))},
                                     lambda candidate: isinstance(candidate, KERNEL_LAYERS), spatial=False,
                                     where=f"direct inputs of {layer}: ")
    if not carried or carried.dead_ends:
        raise UnsupportedCircuit(f"No conv layer feeds {layer}: a path from the model input reaches it without "
                                 f"passing a conv layer")
    return carried


def _kernels(carried: Carried, reached_only: bool) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Each source's (kh, kw, C_source, n) weights and the channels to list (None: all of them)."""
    return {name: (np.ascontiguousarray(f.weights.transpose(0, 1, 3, 2)),
                   f.reached if reached_only and not f.reached.all() else None)
            for name, f in carried.sources.items()}


def rank_inputs(weights: np.ndarray, units: Sequence[Unit], top_k: int | None = None) -> tuple[CircuitInput, ...]:
    """The ``top_k`` (default: all) inputs in a (kh, kw, len(units)) weight slice, strongest first.

    Strength is the Frobenius norm ``sqrt(sum_{dy, dx} w[dy, dx, i]**2)``; equal norms keep the
    earlier unit (lower channel) first.
    """
    norms = np.sqrt(np.sum(np.square(weights), axis=(0, 1)))
    excitatory = np.sum(np.maximum(weights, 0), axis=(0, 1))
    inhibitory = np.sum(np.minimum(weights, 0), axis=(0, 1))
    order = np.argsort(-norms, kind="stable")[:top_k]
    return tuple(
        CircuitInput(units[i], rank + 1, float(norms[i]), float(excitatory[i]), float(inhibitory[i]))
        for rank, i in enumerate(order)
    )


# --- any distance: expanded weights --------------------------------------------------------


def _centre_window(v: np.ndarray, window: int) -> np.ndarray:
    """Crop or zero-pad the two spatial axes of ``v`` to ``window`` around their centre.

    Keeps rows ``start .. start + window - 1`` with ``start = floor((h - window) / 2)``
    (likewise columns); rows outside ``v`` are zeros.
    """
    h, w = v.shape[:2]
    padded = np.pad(v, [(window, window), (window, window)] + [(0, 0)] * (v.ndim - 2))
    top, left = (h - window) // 2 + window, (w - window) // 2 + window
    return padded[top : top + window, left : left + window]


def expanded_weights(model: keras.Model, source: str, target: str, channels: Sequence[int],
                     window: int | None = None, image_size: int | None = None) -> np.ndarray:
    """Distill's expanded weights of ``source`` activations on ``target`` channels.

    With the graph between them linearised (:mod:`generator.analysis.linearised`), target activation
    ``(p, c)`` is ``sum_{d, i} W[d, i, c] * source[S*p + P + d, i]``: one window op with stride S,
    offset P and kernel W, the composition of the layer kernels summed over the paths.
    ``W[..., channels]`` is returned, shape (Rh, Rw, C_source, len(channels)), with (Rh, Rw) the
    receptive field of one target position on ``source`` (the union over the paths):
    ``W[dy, dx, i, k]`` is the derivative of target channel ``channels[k]`` at a position away from
    the borders with respect to source channel ``i`` at offset (dy, dx) from the top-left of that
    field. Biases and ReLUs do not enter; for adjacent conv layers (undilated) ``W`` is
    ``kernel[:, :, :, channels]``.

    All channels are carried back in one pass, starting from the one-hot selection (1, 1, n,
    C_target). ``window`` crops (or zero-pads) the result to window x window around the field's
    centre (see ``_centre_window``); strided layers can make the field even-sized, so its centre then
    falls between two source positions. ``image_size``: see :func:`circuit`.
    """
    return _expanded(model, source, target, channels, window, image_size)[0]


def _expanded(model, source, target, channels, window, image_size) -> tuple[np.ndarray, tuple]:
    """:func:`expanded_weights` and the layers crossed on the way."""
    graph.model_layer(model, source, "circuits")
    layer = graph.model_channels(model, target, channels, "circuits")
    if source not in graph.ancestors(graph.inbound(model), target):
        raise UnsupportedCircuit(f"circuits: {target} <- {source}: {source!r} is not upstream of {target!r}")
    if window is not None and window < 1:
        raise UnsupportedCircuit(f"circuits: the window must be a positive size, not {window}")
    one_hot = np.eye(layer.output.shape[-1], dtype=np.float32)[[int(c) for c in channels]][None, None]
    start = Field(one_hot, one_hot[0, 0].any(axis=0))
    carried = carry_back(model, {target: start}, lambda candidate: candidate.name == source, spatial=True,
                         image_size=image_size, where=f"{target} <- {source}: ")
    v = carried.sources[source].weights
    if window is not None:
        v = _centre_window(v, window)
    return np.ascontiguousarray(v.transpose(0, 1, 3, 2)), carried.crossed
