"""The model as a graph of named layers: layer records, lookups, channel checks, cuts and walks.

Every analysis finds layers and checks channels here, so a wrong name or channel reads the same
wherever it is caught: ``<where>: the model has no layer 'x'; did you mean ...?`` and ``<where>:
channel 9 is out of range for layer 'x', which has channels 0 to 7``, where ``<where>`` is the
config key (``config key 'units[0].layer'``) or the analysis (``exciters``).

Layers are always addressed by name, never by position in ``model.layers``. The record functions
need no Keras (the records are cached, so a rebuild checks the config without loading the model);
the rest import it when called.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from generator.errors import GeneratorError, shown
from generator.flat_model import PATH_SEPARATOR, SEPARATOR, own_name, path
from generator.results import LayerInfo

CONV_TYPES = ("Conv2D",)  # what circuits walk between
# Layers whose channels are units (exciters, maps, examples, pages): every convolution.
UNIT_TYPES = (*CONV_TYPES, "DepthwiseConv2D", "SeparableConv2D")


# --- records ---------------------------------------------------------------------------------


def summarise(model) -> tuple[LayerInfo, ...]:
    """One record per layer, in graph order, like ``model.summary()``, with the layers each one reads."""
    parents = inbound(model)
    return tuple(layer_info(layer, parents[layer.name]) for layer in model.layers)


def layer_info(layer, inputs: Sequence[str] = ()) -> LayerInfo:
    """The record of one Keras layer."""
    shape = layer.output.shape if hasattr(layer, "output") else None
    shape = tuple(None if d is None else int(d) for d in shape) if shape is not None else None
    channels = int(shape[-1]) if shape and len(shape) == 4 and shape[-1] else 0
    return LayerInfo(layer.name, type(layer).__name__, shape, int(layer.count_params()), channels, tuple(inputs))


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


def check_channels(layer: LayerInfo, channels: Sequence[int], where: str) -> None:
    for channel in channels:
        if not 0 <= channel < layer.channels:
            raise GeneratorError(
                f"{where}: channel {channel} is out of range for layer {layer.name!r}, "
                f"which has channels 0 to {layer.channels - 1}"
            )


def conv_layer_names(layers: Sequence[LayerInfo]) -> list[str]:
    return [r.name for r in layers if r.type in UNIT_TYPES]


# --- the Keras model ---------------------------------------------------------------------------


def model_layer(model, name: str, where: str):
    """The Keras layer named ``name``, with the same message as :func:`find_layer` when it is missing."""
    names = [layer.name for layer in model.layers]
    return model.get_layer(_named([LayerInfo(n, "", None, 0, 0) for n in names], name, where).name)


def model_channels(model, name: str, channels: Sequence[int], where: str):
    """The Keras layer named ``name`` after checking that it has ``channels``."""
    layer = model_layer(model, name, where)
    check_channels(layer_info(layer), [int(c) for c in channels], where)
    return layer


def cut(model, outputs):
    """The part of ``model`` from its input to ``outputs`` (a tensor or a list of tensors)."""
    import keras

    return keras.Model(model.input, outputs)


def inbound(model) -> dict[str, list[str]]:
    """Map each layer name to the names of the layers whose outputs it reads (in order), through bare
    operations (``x + y`` in a functional model is an Add operation, not a layer: its inputs' layers count)."""
    import keras

    producer = {id(op.output): op for op in getattr(model, "operations", model.layers)}  # a Sequential: layers only

    def parents(op) -> list[str]:
        found = []
        for t in keras.tree.flatten(op.input):
            source = producer.get(id(t))
            if isinstance(source, keras.layers.Layer):
                found.append(source.name)
            elif source is not None:
                found.extend(parents(source))
        return found

    return {layer.name: parents(layer) for layer in model.layers}


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
    branch, a merge, the model output) the answer is None.
    """
    parents = inbound(model)
    model_layer(model, layer, "circuits")
    while True:
        consumers = [name for name, inputs in parents.items() if layer in inputs]
        if len(consumers) != 1 or len(parents[consumers[0]]) != 1:
            return None
        layer = consumers[0]
        if type(model.get_layer(layer)).__name__ in CONV_TYPES:
            return layer
