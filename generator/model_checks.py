"""The config checked against the model's layers before any analysis: one line per problem.

Works on the cached layer records (:class:`generator.results.LayerInfo`), so a rebuild checks
the config without loading the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from generator.analysis.graph import check_channels, conv_layer_names, find_layer, upstream
from generator.config import Config, resolve_path
from generator.config.directions import DirectionSpec, parse_direction
from generator.errors import GeneratorError
from generator.results import LayerInfo


def input_size(layers: Sequence[LayerInfo]) -> int | None:
    """The side of the square images a fixed-input model takes; None when it takes any size."""
    shape = layers[0].output_shape
    return shape[1] if shape and len(shape) == 4 else None


def check_config(config: Config, layers: Sequence[LayerInfo]) -> Config:
    """Every key that names a layer or channel, and every relation between such keys; the config back with
    each layer by its name in the model (:func:`full_names`)."""
    shape = layers[0].output_shape
    if not shape or len(shape) != 4 or shape[-1] not in (1, 3):
        raise GeneratorError(
            f"config key 'model.name': the model takes inputs of shape {_shape(shape)}; this generator analyses "
            f"image models taking RGB (height, width, 3) or grayscale (height, width, 1) images"
        )
    if shape[1] != shape[2]:
        raise GeneratorError(
            f"config key 'model.name': the model takes {shape[1]}x{shape[2]} images; only square inputs are supported"
        )
    if shape[-1] != 3:
        _check_rgb_recipes(config)
    size = input_size(layers)
    if size and size != config.images.size:
        allowed = "" if 16 <= size <= 1024 else " (outside the 16 to 1024 that images.size allows: this model is not supported)"
        raise GeneratorError(
            f"config key 'images.size': got {config.images.size}, but the model takes {size}x{size} images; "
            f"set images.size to {size}{allowed}"
        )
    config = full_names(config, layers)
    for i, name in enumerate(config.feature_maps.layers):
        find_layer(layers, name, f"config key 'feature_maps.layers[{i}]'")
    for key, names in (("feature_maps.layers", config.feature_maps.layers), ("browse.layers", config.browse.layers),
                       ("views.layers", config.views.layers), ("groups.layers", config.groups.layers)):
        _each_layer_once(names, key)
    keys = [(u.layer, u.channel) for u in config.units]  # one layer may be named by its own name and its path
    for i, unit in enumerate(config.units):
        record = find_layer(layers, unit.layer, f"config key 'units[{i}].layer'", conv=True)
        check_channels(record, [unit.channel], f"config key 'units[{i}].channel'")
        if keys.index(keys[i]) != i:
            raise GeneratorError(f"config key 'units[{i}]': unit {unit.layer}:{unit.channel} is already "
                                 f"units[{keys.index(keys[i])}]; list each unit once")
    if config.exciters.grid.layer:
        find_layer(layers, config.exciters.grid.layer, "config key 'exciters.grid.layer'", conv=True)
    if config.circuits.earlier_layer:
        _check_earlier_layer(config, layers)
    if config.attribution.layer:
        find_layer(layers, config.attribution.layer, "config key 'attribution.layer'", conv=True)
    browse_layers(config, layers)
    for i, name in enumerate(config.views.layers):
        find_layer(layers, name, f"config key 'views.layers[{i}]'")
    for i, name in enumerate(config.groups.layers):
        find_layer(layers, name, f"config key 'groups.layers[{i}]'")
    if config.classes.layer:  # its activations are cropped and factorised over positions
        find_layer(layers, config.classes.layer, "config key 'classes.layer'")
    configured_directions(config, layers)
    return config


def full_names(config: Config, layers: Sequence[LayerInfo]) -> Config:
    """``config`` with every layer it names written as the model names it: a layer inside a nested model may be
    given by its own name or its path (``conv1``, ``base/conv1``), and the pages, URLs and results all use
    ``base--conv1``. A model without nesting gets its config back unchanged."""
    def name(text: str, key: str) -> str:
        return text and find_layer(layers, text, f"config key {key!r}", channels=False).name

    def names(texts: Sequence[str], key: str) -> tuple[str, ...]:
        return tuple(t if t == "all" else name(t, f"{key}[{i}]") for i, t in enumerate(texts))

    def direction(text: str, key: str) -> str:
        spec = parse_direction(text, key)
        written = name(spec.layer, key)
        return text if written == spec.layer else f"{written}: {text.partition(':')[2].strip()}"

    # (in check_config's order: the first problem is the one reported)
    feature_maps = replace(config.feature_maps, layers=names(config.feature_maps.layers, "feature_maps.layers"))
    units = tuple(replace(u, layer=name(u.layer, f"units[{i}].layer")) for i, u in enumerate(config.units))
    grid = replace(config.exciters.grid, layer=name(config.exciters.grid.layer, "exciters.grid.layer"))
    return replace(
        config, feature_maps=feature_maps, units=units,
        circuits=replace(config.circuits, earlier_layer=name(config.circuits.earlier_layer, "circuits.earlier_layer")),
        attribution=replace(config.attribution, layer=name(config.attribution.layer, "attribution.layer")),
        browse=replace(config.browse, layers=names(config.browse.layers, "browse.layers")),
        views=replace(config.views, layers=names(config.views.layers, "views.layers")),
        groups=replace(config.groups, layers=names(config.groups.layers, "groups.layers")),
        exciters=replace(config.exciters, grid=grid, directions=tuple(
            direction(t, f"exciters.directions[{i}]") for i, t in enumerate(config.exciters.directions))),
        classes=replace(config.classes, layer=name(config.classes.layer, "classes.layer")),
    )


def _each_layer_once(names: Sequence[str], key: str) -> None:
    """A layer listed twice, once by its own name and once by its path (the config's check sees two names)."""
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise GeneratorError(f"config key '{key}[{i}]': layer {name} is already {key}[{names.index(name)}]; "
                                 f"list each layer once")


def _check_rgb_recipes(config: Config) -> None:
    """MACO with ImageNet's magnitude, a colour spectrum, needs an RGB model; a grayscale one takes its images'."""
    chosen = {"exciters.method": config.exciters.method, "groups.method": config.groups.method,
              "browse.thumbnail_method": config.browse.thumbnail_method,
              **{f"units[{i}].method": u.method for i, u in enumerate(config.units)}}
    for key, method in chosen.items():
        if method == "maco" and config.exciters.maco_spectrum == "imagenet":
            raise GeneratorError(f"config key 'exciters.maco_spectrum': got imagenet for maco ({key}), a colour "
                                 f"spectrum; a grayscale model needs images (its images' spectrum) or auto")


def configured_directions(config: Config, layers: Sequence[LayerInfo]) -> list[tuple[DirectionSpec, np.ndarray]]:
    """``exciters.directions``, each with its (C,) weights over its layer's channels."""
    found = []
    for i, text in enumerate(config.exciters.directions):
        key = f"exciters.directions[{i}]"
        spec = parse_direction(text, key)
        found.append((spec, direction_vector(spec, layers, config.root, key)))
    return found


def direction_vector(spec: DirectionSpec, layers: Sequence[LayerInfo], root: Path, key: str) -> np.ndarray:
    """The (C,) float32 weights of ``spec`` over its layer's channels, checked against the layer records."""
    record = find_layer(layers, spec.layer, f"config key {key!r}")
    if spec.file:
        path = resolve_path(spec.file, root)
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise GeneratorError(f"config key {key!r}: cannot read {spec.file!r} as a .npy array ({e})") from None
        if vector.shape != (record.channels,) or not np.issubdtype(vector.dtype, np.number):
            raise GeneratorError(f"config key {key!r}: {spec.file!r} holds an array of shape {vector.shape}; "
                                 f"layer {spec.layer!r} needs {record.channels} numbers, one per channel")
        vector = vector.astype(np.float32)
    else:
        check_channels(record, [c for c, _ in spec.weights], f"config key {key!r}")
        vector = np.zeros(record.channels, np.float32)
        for channel, weight in spec.weights:
            vector[channel] += weight
    if not np.any(vector) or not np.all(np.isfinite(vector)):
        raise GeneratorError(f"config key {key!r}: the direction {spec.text!r} must have finite weights, not all 0")
    return vector


def _check_earlier_layer(config: Config, layers: Sequence[LayerInfo]) -> None:
    """``circuits.earlier_layer`` must be a conv layer upstream of every featured unit."""
    earlier = config.circuits.earlier_layer
    key = "config key 'circuits.earlier_layer'"
    find_layer(layers, earlier, key, conv=True)
    for unit in config.units:
        above = upstream(layers, unit.layer)
        if earlier not in above:
            allowed = [name for name in conv_layer_names(layers) if name in above]
            raise GeneratorError(
                f"{key}: layer {earlier!r} is not upstream of the featured unit {unit.layer}:{unit.channel}; "
                f"conv layers upstream of {unit.layer!r}: {', '.join(allowed) or 'none'}"
            )


def browse_layers(config: Config, layers: Sequence[LayerInfo]) -> list[str]:
    """The layers whose every unit gets a page: ``browse.layers``, or every conv layer for ``all``."""
    names = config.browse.layers
    if names == ("all",):
        return conv_layer_names(layers)
    for i, name in enumerate(names):
        find_layer(layers, name, f"config key 'browse.layers[{i}]'", conv=True)
    return list(names)


def _shape(shape) -> str:
    return "unknown" if shape is None else "(" + ", ".join("?" if d is None else str(d) for d in shape[1:]) + ")"


RESCALING_TYPES = ("Rescaling", "Normalization")


def rescaling_note(layers: Sequence[LayerInfo], preprocess: str) -> str:
    """A line for ``python -m generator layers`` where the model rescales its input itself; else ""."""
    found = [r for r in layers if r.type in RESCALING_TYPES]
    if not found:
        return ""
    first = found[0]
    advice = "preprocess: none is right" if preprocess == "none" else (
        f"model.preprocess is {preprocess!r}, so the pixels would be rescaled twice: use preprocess: none")
    return f"note: the model rescales its input itself (layer {first.name!r}, {first.type}); {advice}"


def shared_layer_notes(layers: Sequence[LayerInfo]) -> list[str]:
    """A line for ``python -m generator layers`` per layer that the model calls several times."""
    return [f"note: layer {r.name!r} is called {r.calls} times (on the outputs of {', '.join(map(repr, r.inputs))}): "
            f"circuits follow each call; its output (feature maps, units, views) is not analysed"
            for r in layers if r.calls > 1]
