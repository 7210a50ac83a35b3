"""The model as a graph of named layers: layer records, lookups, channel checks, cuts and walks.

Every analysis finds layers and checks channels here, so a wrong name or channel reads the same
wherever it is caught: ``<where>: the model has no layer 'x'; did you mean ...?`` and ``<where>:
channel 9 is out of range for layer 'x', which has channels 0 to 7``, where ``<where>`` is the
config key (``config key 'units[0].layer'``) or the analysis (``exciters``).

Layers are always addressed by name, never by position in ``model.layers``. The record functions
need no Keras (the records are cached, so a rebuild checks the config without loading the model);
the rest import it when called.

A layer object that the model calls several times (one ``ReLU`` after three convs, a shared conv
block) has one *call* per use, each with its own input and output (Keras' inbound nodes). The graph
is walked by calls: a layer's first call is keyed by its name, its k-th by ``name@k``. Weights pass
through every call of a shared layer on the path; an analysis that reads a layer's output needs a
layer called once, since ``layer.output`` of a shared layer is one of several activations.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from generator.errors import GeneratorError, shown
from generator.flat_model import PATH_SEPARATOR, SEPARATOR, own_name, path
from generator.results import LayerInfo

CONV_TYPES = ("Conv2D",)  # what circuits walk between
# Layers whose channels are units (exciters, maps, examples, pages): every convolution.
UNIT_TYPES = (*CONV_TYPES, "DepthwiseConv2D", "SeparableConv2D")


# --- records ---------------------------------------------------------------------------------


def summarise(model) -> tuple[LayerInfo, ...]:
    """One record per layer, in graph order, like ``model.summary()``, with the layers its calls read
    (a layer called several times: its first call's output shape, and how many calls)."""
    every = calls(model)
    per_layer = calls_by_layer(every)
    records = []
    for layer in model.layers:
        own = per_layer.get(layer.name, [])
        output = own[0].outputs[0] if own else None
        records.append(layer_info(layer, read_layers(own, every), output, len(own) or 1))
    return tuple(records)


def layer_info(layer, inputs: Sequence[str] = (), output=None, calls: int = 1) -> LayerInfo:
    """The record of one Keras layer (``output``: the tensor whose shape it shows; default its own)."""
    output = output if output is not None else getattr(layer, "output", None)
    shape = output.shape if output is not None else None
    shape = tuple(None if d is None else int(d) for d in shape) if shape is not None else None
    channels = int(shape[-1]) if shape and len(shape) == 4 and shape[-1] else 0
    return LayerInfo(layer.name, type(layer).__name__, shape, int(layer.count_params()), channels, tuple(inputs), calls)


def upstream(layers: Sequence[LayerInfo], name: str) -> set[str]:
    """Names of every layer that ``name`` depends on, from the records alone."""
    return ancestors({r.name: list(r.inputs) for r in layers}, name)


def find_layer(layers: Sequence[LayerInfo], name: str, where: str, *, conv: bool = False,
               channels: bool = True) -> LayerInfo:
    """The record of layer ``name``; unknown names get the closest ones suggested.

    A layer inside a nested model is found by its name (``base--conv1``), its path (``base/conv1``) or,
    where no other layer has it, its own name (``conv1``). ``conv``: it must be a convolution;
    ``channels``: it must have an image-shaped output.
    """
    record = _named(layers, name, where)
    if conv and record.type not in UNIT_TYPES:
        raise GeneratorError(
            f"{where}: layer {record.name!r} is a {record.type} layer, not a convolution with channels to analyse; "
            f"conv layers: {', '.join(conv_layer_names(layers)) or 'none'}"
        )
    if channels and not record.channels:
        raise GeneratorError(f"{where}: layer {record.name!r} ({record.type}) has no image-shaped output with channels to analyse")
    if channels and record.calls > 1:
        allowed = f"conv layers called once: {', '.join(conv_layer_names(layers)) or 'none'}" if conv else \
            "choose a layer the model calls once"
        raise GeneratorError(shared_refusal(where, record.name, record.calls, record.inputs, allowed))
    return record


def _named(layers: Sequence[LayerInfo], name: str, where: str) -> LayerInfo:
    """The record ``name`` addresses, or one line: the paths an ambiguous name could mean, the closest names."""
    by_name = {r.name: r for r in layers}
    written = name.replace(PATH_SEPARATOR, SEPARATOR)
    found = [by_name[written]] if written in by_name else [r for r in layers if own_name(r.name) == name]
    if len(found) == 1:
        return found[0]
    if found:
        raise GeneratorError(f"{where}: layer name {shown(name)} is ambiguous: layers of nested models share it; "
                             f"name one by its path: {', '.join(repr(path(r.name)) for r in found)}")
    known = dict.fromkeys([*by_name, *(path(n) for n in by_name), *(own_name(n) for n in by_name)])
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else "; run 'python -m generator layers' to list them"
    raise GeneratorError(f"{where}: the model has no layer {shown(name)}{hint}")


def shared_refusal(where: str, name: str, count: int, reads: Sequence[str], allowed: str) -> str:
    """The one line for a layer called several times where an analysis needs its one output."""
    return (f"{where}: layer {name!r} is called {count} times by the model (on the outputs of "
            f"{', '.join(map(repr, reads))}), so it has no single output to analyse; {allowed}")


def check_channels(layer: LayerInfo, channels: Sequence[int], where: str) -> None:
    for channel in channels:
        if not 0 <= channel < layer.channels:
            raise GeneratorError(
                f"{where}: channel {channel} is out of range for layer {layer.name!r}, "
                f"which has channels 0 to {layer.channels - 1}"
            )


def conv_layer_names(layers: Sequence[LayerInfo]) -> list[str]:
    """The conv layers whose units can be analysed: those the model calls once."""
    return [r.name for r in layers if r.type in UNIT_TYPES and r.calls == 1]


# --- the Keras model ---------------------------------------------------------------------------


def model_layer(model, name: str, where: str):
    """The Keras layer named ``name``, called once by the model, with the same messages as
    :func:`find_layer` when it is missing or called several times."""
    names = [layer.name for layer in model.layers]
    name = _named([LayerInfo(n, "", None, 0, 0) for n in names], name, where).name
    every = calls(model)
    own = calls_by_layer(every).get(name, [])
    if len(own) > 1:
        raise GeneratorError(shared_refusal(where, name, len(own), read_layers(own, every),
                                            "choose a layer the model calls once"))
    return model.get_layer(name)


def layer_output(model, name: str, where: str):
    """The output tensor of the layer named ``name`` in ``model``'s own graph (called once: :func:`model_layer`)."""
    return calls(model)[model_layer(model, name, where).name].outputs[0]


def model_channels(model, name: str, channels: Sequence[int], where: str):
    """The Keras layer named ``name`` after checking that it has ``channels``."""
    layer = model_layer(model, name, where)
    check_channels(layer_info(layer), [int(c) for c in channels], where)
    return layer


@dataclass(frozen=True)
class Call:
    """One use of a layer in the model's graph: its key (:func:`calls`), the layer, the tensors it reads
    and makes, and the keys of the calls whose outputs it reads (through bare operations)."""

    key: str
    layer: object
    inputs: tuple
    outputs: tuple
    parents: tuple[str, ...]


CALL_MARK = "@"  # the k-th call (k >= 2) of layer 'x' is keyed 'x@k'


def calls(model) -> dict[str, Call]:
    """Every call of a layer of ``model.layers`` in the model's own graph, in the order of ``model.layers`` and,
    per layer, in the order the model calls it: keyed by the layer's name for its first call, ``name@k`` for
    its k-th. Nodes of other graphs that a layer belongs to (a layer reused in another model) are left out."""
    own = getattr(model, "_functional", None) or model  # a Sequential keeps its graph in a functional model
    by_depth = getattr(own, "_nodes_by_depth", None)
    if by_depth is None:  # a Sequential never built on an Input: a chain of layers called once
        chain = [layer.name for layer in model.layers]
        return {name: Call(name, layer, (layer.input,), (layer.output,), tuple(chain[i - 1:i]))
                for i, (name, layer) in enumerate(zip(chain, model.layers))}
    nodes: dict[int, list] = {}
    for depth in by_depth.values():
        for node in depth:
            nodes.setdefault(id(node.operation), []).append(node)
    keys: dict[int, str] = {}  # id(node) -> key, in order
    ordered = []
    for layer in model.layers:
        for k, node in enumerate(sorted(nodes.get(id(layer), []), key=layer._inbound_nodes.index)):
            keys[id(node)] = layer.name if k == 0 else f"{layer.name}{CALL_MARK}{k + 1}"
            ordered.append(node)

    def parents(node) -> list[str]:
        found = []
        for tensor in node.input_tensors:
            operation, index, _ = tensor._keras_history
            source = operation._inbound_nodes[index]
            found += [keys[id(source)]] if id(source) in keys else parents(source)
        return found

    return {keys[id(n)]: Call(keys[id(n)], n.operation, tuple(n.input_tensors), tuple(n.output_tensors),
                              tuple(parents(n))) for n in ordered}


def calls_by_layer(every: dict[str, Call]) -> dict[str, list[Call]]:
    """The calls of :func:`calls` grouped by layer name, each layer's in call order."""
    grouped: dict[str, list[Call]] = {}
    for call in every.values():
        grouped.setdefault(call.layer.name, []).append(call)
    return grouped


def read_layers(own: Sequence[Call], every: dict[str, Call]) -> list[str]:
    """The names of the layers whose outputs ``own`` calls read, each once, in order."""
    return list(dict.fromkeys(every[key].layer.name for call in own for key in call.parents))


def cut(model, outputs):
    """The part of ``model`` from its input to ``outputs`` (a tensor or a list of tensors)."""
    import keras

    return keras.Model(model.input, outputs)


def crossing(model, tensor) -> list:
    """The tensors that the part of ``model`` after ``tensor`` reads besides it: each one an output of a layer
    that ``tensor`` does not feed (or the model's input), read by a layer it does. With ``tensor`` they give
    the model's output without running again what comes before (HED's side outputs; none in a plain chain)."""
    feeds: dict[int, bool] = {}

    def parents(t) -> list:
        operation, node_index, _ = t._keras_history
        return list(operation._inbound_nodes[node_index].input_tensors) if operation._inbound_nodes else []

    def fed(t) -> bool:
        if id(t) not in feeds:
            feeds[id(t)] = t is tensor or any(fed(p) for p in parents(t))
        return feeds[id(t)]

    found: dict[int, object] = {}
    stack = [model.output]
    while stack:
        t = stack.pop()
        if t is tensor or id(t) in found:
            continue
        if fed(t):
            stack.extend(parents(t))
        else:
            found[id(t)] = t
    return list(found.values())


def inbound(model) -> dict[str, list[str]]:
    """Map each call (:func:`calls`) to the calls whose outputs it reads (in order), through bare operations
    (``x + y`` in a functional model is an Add operation, not a layer: its inputs' layers count)."""
    return {key: list(call.parents) for key, call in calls(model).items()}


def ancestors(parents: dict[str, list[str]], name: str) -> set[str]:
    """Names of every layer that ``name`` depends on, through any path (``parents``: :func:`inbound`)."""
    seen: set[str] = set()
    stack = list(parents[name])
    while stack:
        parent = stack.pop()
        if parent not in seen:
            seen.add(parent)
            stack.extend(parents[parent])
    return seen


def next_conv_layer(model, layer: str) -> str | None:
    """The nearest Conv2D downstream of ``layer`` along a plain chain.

    Each step must have exactly one consumer that reads only this layer; otherwise (a
    branch, a merge, the model output, a conv layer the model calls several times) the answer is None.
    """
    model_layer(model, layer, "circuits")
    every = calls(model)
    while True:
        consumers = [key for key, call in every.items() if layer in call.parents]
        if len(consumers) != 1 or len(every[consumers[0]].parents) != 1:
            return None
        layer = consumers[0]
        if type(every[layer].layer).__name__ in CONV_TYPES:
            return layer if len(calls_by_layer(every)[every[layer].layer.name]) == 1 else None
