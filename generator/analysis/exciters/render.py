"""Rendering exciters: the recipe a render asks for, run over its items a batch at a time.

The loss of a batch is the sum of each image's own objective, so images never share gradients, and every
random number of a unit derives from (seed, channel): a unit's image does not depend on the batch it lands in but
for rounding, which can follow the batch's width (bfloat16; and float32 where oneDNN's kernels sum in an order
that depends on the batch or the thread count, as its AVX2 convolutions do: a grey level at most in the tests).
With ``precision="bfloat16"`` (the default ``auto`` picks it where the CPU has AVX512-BF16 or AMX) the network
runs in Keras' mixed_bfloat16, about twice as fast there.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Sequence

import keras
import numpy as np

from generator.analysis import backend, graph
from generator.analysis.exciters import lab, lucid, maco
from generator.analysis.exciters.batch import ExciterResult, Items, NonFinite, batch_width, run_batches
from generator.analysis.exciters.objectives import direction_objective, unit_objective
from generator.analysis.precision import resolve_precision
from generator.config import ExciterParams
from generator.errors import GeneratorError

RECIPES = ("gradient_ascent", "lucid", "maco")
log = logging.getLogger("generator")


def render_exciters(
    model: keras.Model,
    layer: str,
    channels: Sequence[int],
    params: ExciterParams,
    preprocess: Callable,
    progress: Callable[[int], None] | None = None,
    width: int = 0,
    spectrum: np.ndarray | None = None,
) -> ExciterResult:
    """Exciters of ``channels`` of the layer named ``layer``, in the order given.

    ``preprocess`` maps float RGB in 0..255 (a backend tensor, N, H, W, 3) to the model's input.
    ``progress(k)`` is called after each batch with the number of units that batch finished (an
    increment: ``tqdm.update`` fits). ``width``: the batch size (default :func:`batch_width`); parts of
    a layer rendered separately with its width, each starting at a multiple of it, get the images
    that one call over the whole layer gives. ``spectrum``: maco's magnitude (see :class:`Items`).
    """
    channels = [int(c) for c in channels]
    target = graph.model_channels(model, layer, channels, "exciters")

    def objective(model: keras.Model, target: keras.layers.Layer, width: int, redirect_relu: bool | str) -> Callable:
        return unit_objective(model, target, width, preprocess, params.objective, redirect_relu)

    items = Items([(c,) for c in channels], np.array(channels, "int32"), spectrum=spectrum)
    return render_items(model, target, items, params, objective, progress, width=width)


def render_directions(
    model: keras.Model,
    layer: str,
    directions: np.ndarray,
    params: ExciterParams,
    preprocess: Callable,
    progress: Callable[[int], None] | None = None,
    spectrum: np.ndarray | None = None,
) -> ExciterResult:
    """Exciters of ``directions`` (N, C), vectors over the channels of the layer named ``layer``.

    The objective is the dot product of the image's activations with its direction (their mean over
    positions, or at the centre for ``objective="neuron"``). A direction's random numbers are those of
    its strongest channel, so a one-hot direction gives the same image as that channel's exciter.
    ``spectrum``: as :func:`render_exciters`'.
    """
    directions = np.asarray(directions, np.float32)
    target = graph.model_layer(model, layer, "exciters")
    channels = graph.layer_info(target).channels
    if directions.ndim != 2 or directions.shape[1] != channels:
        raise GeneratorError(f"exciters: a direction over layer {layer!r} has {channels} weights, one per channel; "
                             f"got shape {directions.shape}")
    support = np.flatnonzero(np.any(directions != 0, axis=0)).astype("int32")

    def objective(model: keras.Model, target: keras.layers.Layer, width: int, redirect_relu: bool | str) -> Callable:
        return direction_objective(model, target, support, preprocess, params.objective, redirect_relu)

    items = Items([(int(np.argmax(np.abs(d))),) for d in directions], directions[:, support], spectrum=spectrum)
    return render_items(model, target, items, params, objective, progress)


def render_items(model: keras.Model, target: keras.layers.Layer, items: Items, params: ExciterParams,
                 make_objective: Callable, progress: Callable[[int], None] | None,
                 make_penalised: Callable | None = None, width: int = 0) -> ExciterResult:
    """One image per item of ``items``; ``make_objective(model, target, width, redirect_relu)``.

    ``make_penalised`` (same arguments) gives the ``(images, targets) -> (B,)`` that Lucid's recipe climbs
    instead (the objective less a penalty, in one pass through the network; the reported value stays
    ``make_objective``'s); it may couple the items of a group.

    A NaN or infinite value never leaves: a bfloat16 render that gives one is rendered again in float32 with
    one warning line, and a float32 one is a :class:`GeneratorError`.
    """
    if params.method not in RECIPES:
        raise ValueError(f"unknown exciter method {params.method!r}; allowed: {', '.join(RECIPES)}")
    if not items.keys:
        s = params.size
        return ExciterResult(np.zeros((0, s, s, 3), np.uint8), np.zeros(0, np.float32), np.zeros(0, np.float32))
    params = dataclasses.replace(params, precision=resolve_precision(params.precision))
    if params.precision != "float32":
        counted: list[int] = []
        try:
            return _render(model, target, items, params, make_objective, _tally(progress, counted), make_penalised,
                           width)
        except NonFinite:
            log.warning("exciters: %s gave NaN or infinite values at layer %s on Keras' %s backend; rendering them "
                        "in float32 instead", params.precision, target.name, keras.backend.backend())
            params, progress = dataclasses.replace(params, precision="float32"), _after(progress, sum(counted))
    try:
        return _render(model, target, items, params, make_objective, progress, make_penalised, width)
    except NonFinite:
        smaller_step = " or a smaller exciters.step_size" if params.method == "gradient_ascent" else ""  # its alone
        raise GeneratorError(f"exciters: the exciters of layer {target.name!r} came out NaN or infinite in float32 "
                             f"(the model's values overflow on them); pick another layer{smaller_step}") from None


def _render(model: keras.Model, target: keras.layers.Layer, items: Items, params: ExciterParams,
            make_objective: Callable, progress: Callable[[int], None] | None, make_penalised: Callable | None,
            width: int) -> ExciterResult:
    """:func:`render_items` at ``params.precision`` (resolved), whatever values come out."""
    canvas = _canvas(model, params)
    if params.precision != "float32":
        model = backend.cut_at_precision(model, target.name, params.precision)
        target = model.get_layer(target.name)

    width = width or batch_width(len(items.keys), params.batch_size, items.group)

    def objective(redirect_relu: bool | str = False, penalised: bool = False) -> Callable:
        make = make_penalised if penalised and make_penalised is not None else make_objective
        return make(model, target, width, redirect_relu)

    return run_batches(_recipe(objective, params, canvas, model.input.shape[-1], items.spectrum), items, width,
                       progress)


def _tally(progress: Callable[[int], None] | None, counted: list[int]) -> Callable[[int], None] | None:
    """``progress``, each increment also appended to ``counted``."""
    if progress is None:
        return None

    def report(n: int) -> None:
        counted.append(n)
        progress(n)

    return report


def _after(progress: Callable[[int], None] | None, counted: int) -> Callable[[int], None] | None:
    """``progress`` for a render run again: the first ``counted`` units, reported by the first run, are not
    reported twice."""
    if progress is None:
        return None
    seen = [0]

    def report(n: int) -> None:
        new = max(0, seen[0] + n - counted) - max(0, seen[0] - counted)
        seen[0] += n
        if new:
            progress(new)

    return report


def _canvas(model: keras.Model, params: ExciterParams) -> int:
    """The side of the image the model sees: size, or for lucid's transformed view size + 12 (maco resizes
    its crops to a fixed input of any size).

    A model with a fixed input size sees that size: lucid pads its view to it (when it is at least
    ``size``); gradient ascent needs ``size`` to be it.
    """
    padded = params.method == "lucid"
    fixed = tuple(model.input.shape[1:3])
    if None in fixed:
        return params.size + (12 if padded else 0)
    resized = params.method == "maco"  # its crops are resized to the model's input
    if fixed[0] == fixed[1] and (fixed[0] == params.size or resized or (padded and fixed[0] > params.size)):
        return fixed[0]
    if fixed[0] != fixed[1]:
        raise GeneratorError(
            f"exciters: model {model.name!r} takes {fixed[0]}x{fixed[1]} images; exciters are square, so they need a "
            f"model with a square or free input size"
        )
    raise GeneratorError(
        f"exciters: model {model.name!r} takes {fixed[0]}x{fixed[1]} images; set exciters size to {fixed[0]}"
    )


def _recipe(make_objective: Callable, params: ExciterParams, canvas: int, channels: int,
            spectrum: np.ndarray | None) -> Callable:
    """The batch runner of ``params.method``; maco keeps ``spectrum`` (None: ImageNet's)."""
    if params.method == "maco":
        if spectrum is None and channels != 3:
            raise GeneratorError(f"exciters: maco on a model taking {channels}-channel images needs the magnitude "
                                 f"spectrum of its images (exciters.maco_spectrum: images); ImageNet's is RGB")
        magnitude = maco.imagenet_magnitude(params.size) if spectrum is None else maco.resized(spectrum, params.size)
        return maco.maco_recipe(make_objective, params, canvas, magnitude)
    recipe = lab.gradient_ascent if params.method == "gradient_ascent" else lucid.lucid_recipe
    return recipe(make_objective, params, canvas, channels)
