"""Dataset examples: the images of a folder that excite a unit most, as on a Microscope unit page.

For each unit (layer, channel) we keep the ``top_n`` images with the highest *score*, the
channel's maximum activation over positions, and where in the activation grid that maximum
sits. The images are streamed in batches: one forward pass per batch through the model cut
at the layer, the per-channel max and argmax reduced on the device, and each batch's
candidates merged into a running ``(channels, top_n)`` table. Memory does not grow with the
number of images and the cost is linear in it.

The crop shown for an example is the receptive field of the peak position: activation
position ``(y, x)`` of a layer reads the input pixels centred on
``(offset + stride * y, offset + stride * x)`` in a ``size`` x ``size`` square
(:func:`receptive_field`, :func:`generator.geometry.crop_box`). The winners' activation maps
come from the same pass: the table keeps each entry's map, taken from the batch that put it there
(a ``(channels, top_n, h, w)`` array, the size of the result), so no image is read or run twice;
the figures resample the maps onto the crop (:func:`generator.geometry.box_map`). One pass serves
every layer asked for, and it splits into parts that start at batch boundaries
(:func:`example_shard`), whose tables merge into the whole pass's, maps included
(:func:`merge_tables`); :func:`finish_examples` makes a :class:`generator.results.DatasetExamples`
of each layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import keras
import numpy as np
from keras import ops

from generator.analysis import backend, graph
from generator.analysis.distribution import Tally
from generator.errors import GeneratorError
from generator.geometry import ReceptiveField, pair, same_padding_lead
from generator.images import read_square
from generator.results import DatasetExamples


BATCH = 16  # images a forward pass


class ReceptiveFieldUnknown(GeneratorError):
    """The receptive field of a layer is not defined for this model (a branch, an unknown layer)."""


# --- the layers' examples: top tables, maps, parts merged -----------------------------------------


@dataclass(frozen=True)
class ExampleTable:
    """Each channel's best images: (C, n) arrays, every row sorted by score descending, equal scores
    by lower image index (the order :func:`_merge` keeps, so tables of parts merge into the whole's)."""

    score: np.ndarray
    image: np.ndarray  # index into the whole list of images
    position: np.ndarray  # the peak's flat index in the (h, w) activation grid
    width: int  # w
    maps: np.ndarray  # (C, n, h, w) float32: each entry's map on its image
    tally: Tally | None = None  # every image's statistics, where the pass kept them (a seed was given)


def example_shard(loaded, layers: Sequence[str], paths: Sequence[Path], first: int, size: int, top_n: int,
                  progress: Callable[[int], None] | None = None, seed: int | None = None) -> dict[str, ExampleTable]:
    """The top table of each of ``layers`` over ``paths``, a part of a longer list that starts at its
    image ``first``, with each entry's activation map; with a ``seed``, each table also carries the
    tally of every image's statistics (:mod:`generator.analysis.distribution`).

    Parts that start at multiples of :data:`BATCH` see the same batches as one pass over the
    whole list, so their merged tables (:func:`merge_tables`) are that pass's, to the bit.
    """
    selections = [(layer, None) for layer in layers]
    found = _top_tables(loaded.features, loaded.preprocess, selections,
                        _reported(stream_images(paths, size, BATCH), progress), top_n, seed, first, keep_maps=True)
    return {layer: ExampleTable(score, image + first, position, width, maps, tally)
            for layer, (score, image, position, width, tally, maps) in zip(layers, found)}


def merge_tables(tables: Sequence[ExampleTable], top_n: int) -> ExampleTable:
    """The top table of the images of all ``tables`` (parts of one list)."""
    merged = tables[0]
    for t in tables[1:]:
        (score, image, position), order = _merge((merged.score, merged.image, merged.position),
                                                 (t.score, t.image, t.position), top_n)
        tally = merged.tally.merge(t.tally) if merged.tally and t.tally else None
        maps = _merged_maps(merged.maps, order, lambda entry, row, other=t.maps: other[row, entry])
        merged = ExampleTable(score, image, position, max(merged.width, t.width), maps, tally)
    return merged


def finish_examples(loaded, tables: dict[str, ExampleTable], size: int) -> dict[str, DatasetExamples]:
    """Each layer's examples from its top table, kept with its maps (:func:`example_shard`), with its receptive
    field."""
    found = {}
    for layer, t in tables.items():
        try:
            rf = receptive_field(loaded.features, layer, size)
        except ReceptiveFieldUnknown:
            rf = None
        width = max(t.width, 1)
        distributions = tuple(t.tally.unit(c, width) for c in range(len(t.score))) if t.tally else ()
        found[layer] = DatasetExamples(t.image, t.score, t.position // width, t.position % width, t.maps, rf,
                                       distributions)
    return found


def padded(pixels: np.ndarray, width: int) -> np.ndarray:
    """A batch shorter than ``width`` (the last) padded by repeating its last image, so that a compiled step is
    traced once for every batch; the padding's outputs are dropped."""
    n = len(pixels)
    return np.concatenate([pixels, np.repeat(pixels[-1:], width - n, axis=0)]) if n < width else pixels


# --- receptive fields ---------------------------------------------------------------------------


_WINDOW_LAYERS = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
)
# Layers that act position by position: the geometry passes through them unchanged.
_POINTWISE_LAYERS = tuple(
    getattr(keras.layers, name)
    for name in (
        "InputLayer", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
        "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
        "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
        "Rescaling", "Normalization", "Identity",
    )
    if hasattr(keras.layers, name)
)


def _chain_to(model: keras.Model, layer: str) -> list[keras.layers.Layer]:
    """The layers from the model input up to and including ``layer``, for a plain chain."""
    graph.model_layer(model, layer, "receptive field")
    every = graph.calls(model)
    current = every[layer]  # a layer called once: its call is keyed by its name
    chain = [current.layer]
    while current.parents:
        if len(current.parents) != 1:
            raise ReceptiveFieldUnknown(
                f"receptive field of {layer!r}: the path from the input goes through "
                f"{type(current.layer).__name__} layer {current.layer.name!r} with {len(current.parents)} inputs; "
                f"receptive fields are only computed for plain chains of conv/pool layers"
            )
        current = every[current.parents[0]]  # through the call on the path (a shared layer has several)
        chain.append(current.layer)
    return chain[::-1]


def _axis_geometry(chain: list[keras.layers.Layer], axis: int, n: int | None, target: str):
    """(size, stride, offset) of the chain along one spatial axis (0 rows, 1 columns).

    ``n`` is the input length along the axis, or None when unknown. Per window layer with
    kernel k, dilation r (span ``K = r(k-1) + 1``), stride s and leading padding p:
    ``size += (K - 1) * stride``, ``offset += ((K - 1) / 2 - p) * stride``, ``stride *= s``.
    "same" pads like TensorFlow: ``p = max((ceil(n/s) - 1) s + K - n, 0) // 2``, which depends
    on ``n``; with ``n`` unknown it is taken as a multiple of s: ``p = max(K - s, 0) // 2``.
    """
    size, stride, offset = 1, 1, 0.0
    for layer in chain:
        what = f"{type(layer).__name__} layer {layer.name!r}"
        if isinstance(layer, _WINDOW_LAYERS):
            if getattr(layer, "data_format", "channels_last") != "channels_last":
                raise ReceptiveFieldUnknown(f"receptive field of {target!r}: {what} is channels_first")
            pooling = isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D))
            k = pair(layer.pool_size if pooling else layer.kernel_size)[axis]
            s = pair(layer.strides)[axis]
            r = 1 if pooling else pair(layer.dilation_rate)[axis]
            span = r * (k - 1) + 1
            padding = str(layer.padding).lower()
            if padding == "valid":
                lead = 0
                n = None if n is None else (n - span) // s + 1
            elif padding == "same":
                lead = same_padding_lead(n, s, span)
                n = None if n is None else -(-n // s)
            else:
                raise ReceptiveFieldUnknown(f"receptive field of {target!r}: {what} has padding {padding!r}")
            offset += ((span - 1) / 2 - lead) * stride
            size += (span - 1) * stride
            stride *= s
        elif isinstance(layer, keras.layers.ZeroPadding2D):
            before, after = pair(layer.padding[axis])
            offset -= before * stride
            n = None if n is None else n + before + after
        elif isinstance(layer, keras.layers.Cropping2D):
            before, after = pair(layer.cropping[axis])
            offset += before * stride
            n = None if n is None else n - before - after
        elif not isinstance(layer, _POINTWISE_LAYERS):
            raise ReceptiveFieldUnknown(
                f"receptive field of {target!r}: the path from the input goes through {what}; "
                f"only conv, pooling, padding, cropping and per-position layers are understood"
            )
    return size, stride, offset


def receptive_field(model: keras.Model, layer: str, image_size: int | None = None) -> ReceptiveField:
    """The receptive field of the layer named ``layer`` (see :class:`ReceptiveField`).

    Computed from the chain of layers between the model input and ``layer``: Conv2D,
    DepthwiseConv2D, SeparableConv2D (kernel, stride, dilation, "valid"/"same" padding), max and
    average pooling, ZeroPadding2D, Cropping2D, and layers acting per position (activations,
    normalisation, dropout, rescaling). Anything else, or a branch/merge on the way
    (ResNet, MobileNetV2), raises :class:`ReceptiveFieldUnknown` (a GeneratorError).

    ``image_size`` (the side of the square input) matters only after a strided "same" layer
    whose input length is not a multiple of its stride: TensorFlow then pads one pixel less at
    the top/left. Without it the model's static input size is used, else sizes are taken to be
    multiples of the strides (true for 224 px input to VGG and the like).
    """
    chain = _chain_to(model, layer)
    inputs = getattr(model, "inputs", None) or []
    shape = tuple(inputs[0].shape) if len(inputs) == 1 else ()
    geometry = []
    for axis in (0, 1):
        n = image_size
        if n is None and len(shape) == 4:
            n = shape[1 + axis]
        geometry.append(_axis_geometry(chain, axis, n, layer))
    if geometry[0] != geometry[1]:
        raise ReceptiveFieldUnknown(
            f"receptive field of {layer!r}: rows and columns differ ({geometry[0][:2]} vs "
            f"{geometry[1][:2]}); only square receptive fields are supported"
        )
    size, stride, offset = geometry[0]
    return ReceptiveField(int(size), int(stride), float(offset))


# --- streaming images ---------------------------------------------------------------------------


def stream_images(paths: Sequence[Path], size: int, batch_size: int) -> Iterator[np.ndarray]:
    """uint8 (B, size, size, 3) batches of the images at ``paths``, in order, read lazily.

    Each image is centre-cropped and resized like the configured photos
    (:func:`generator.images.square`); only one batch is in memory at a time. A missing or
    unreadable file raises GeneratorError naming it.
    """
    if batch_size < 1:
        raise GeneratorError(f"dataset examples: batch size must be at least 1, not {batch_size}")
    batch: list[np.ndarray] = []
    for path in paths:
        batch.append(read_square(Path(path), size, "dataset examples"))
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


# --- the top images of each unit ----------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    image: int  # index into the streamed image list
    score: float  # the channel's maximum activation over positions on that image
    y: int  # where the maximum is in the activation grid (first in row-major order on ties)
    x: int


@lru_cache(maxsize=4)
def _peak_step(features, preprocess, selections: tuple[tuple[str, tuple[int, ...] | None], ...], stats: bool,
               maps: bool):
    """Compiled ``uint8 (B, H, W, 3) -> per (layer, channels) of selections, (scores (B, K), flat argmax
    (B, K), (h, w))`` of one batch, with ``stats`` also the (B, K) means and minima over positions, with ``maps``
    last the (B, h, w, K) maps themselves (as the layer gives them: a transposed copy of a batch's maps held beside
    them raised the examples stage's peak memory by 250 MB, and one made in the step instead, channels first, a
    cold build's by 200 MB for 0.2 s): one forward pass for every layer (channels None: all)."""
    cut = graph.cut(features, [graph.layer_output(features, layer, "dataset examples")
                               for layer, _ in selections])

    def peaks(found, channels):
        if channels is not None:
            found = ops.take(found, ops.convert_to_tensor(channels, dtype="int32"), axis=-1)
        b, h, w, k = ops.shape(found)
        flat = ops.reshape(found, (b, h * w, k))
        peak = ops.max(flat, axis=1)
        # The first position holding the maximum (argmax leaves ties unspecified on some backends).
        positions = ops.reshape(ops.arange(h * w, dtype="int32"), (1, h * w, 1))
        first = ops.min(ops.where(flat == peak[:, None, :], positions, h * w), axis=1)
        result = (peak, ops.minimum(first, h * w - 1), ops.convert_to_tensor([h, w], dtype="int32"))
        result += (ops.mean(flat, axis=1), ops.min(flat, axis=1)) if stats else ()
        return (*result, found) if maps else result

    def step(pixels):
        outputs = cut(preprocess(ops.cast(pixels, "float32")), training=False)
        outputs = outputs if len(selections) > 1 else [outputs]
        return [peaks(found, channels) for found, (_, channels) in zip(outputs, selections)]

    return backend.compile_step(step)


def _merge(best: tuple[np.ndarray, ...], batch: tuple[np.ndarray, ...], top_n: int
           ) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Merge one batch's candidates into the running table, keeping ``top_n`` a row.

    Both are tuples (scores, images, positions) of (K, n) arrays; the result is sorted in each
    row by score descending, equal scores by lower image index. NaN scores sort last. One
    sort of ``top_n + B`` keys a row per batch: constant work per image, vectorised over rows.
    Also returns ``order`` (K, top_n): where each merged entry was among ``best``'s entries followed by ``batch``'s.
    """
    scores, images, positions = (np.concatenate([a, b], axis=1) for a, b in zip(best, batch))
    keys = np.where(np.isnan(scores), np.inf, -scores)
    order = np.lexsort((images, keys), axis=1)[:, :top_n]
    return tuple(np.take_along_axis(a, order, axis=1) for a in (scores, images, positions)), order


def _merged_maps(kept: np.ndarray, order: np.ndarray, new: Callable[[np.ndarray, np.ndarray], np.ndarray]
                 ) -> np.ndarray:
    """The maps (K, top_n, h, w) of a merged table (``order`` from :func:`_merge`): ``kept`` (K, n, h, w), the first
    table's, and ``new(entries, rows) -> (m, h, w)``, the maps of the second's entries in those rows."""
    rows = np.broadcast_to(np.arange(len(order))[:, None], order.shape)
    old = order < kept.shape[1]
    added = new(order[~old] - kept.shape[1], rows[~old])
    if not old.any():  # every entry the second table's (a first batch): gathered in the table's order
        return added.reshape(*order.shape, *added.shape[1:]).astype(np.float32, copy=False)
    merged = np.empty((*order.shape, *added.shape[1:]), np.float32)
    merged[old] = kept[rows[old], order[old]]
    merged[~old] = added
    return merged


def top_examples(
    features: keras.Model,
    preprocess: Callable,
    layer: str,
    channels: Sequence[int],
    batches: Iterable[np.ndarray],
    top_n: int,
    progress: Callable[[int], None] | None = None,
) -> dict[int, list[Example]]:
    """The ``top_n`` images that excite each channel of ``layer`` most, best first.

    ``batches`` yields uint8 (B, H, W, 3) arrays (e.g. :func:`stream_images`); image indices
    count across batches from 0. It is consumed lazily, one batch at a time, and memory stays at
    one batch plus a (len(channels), top_n) table, whatever the number of images. An image's
    score is the channel's maximum over positions; equal scores keep the lower image index.
    ``progress(k)`` is called after each batch with its number of images (an increment).
    Returns ``{channel: [Example, ...]}`` in the order of ``channels``, each list at most
    ``top_n`` long (shorter when there are fewer images).
    """
    channels = list(dict.fromkeys(int(c) for c in channels))
    count = graph.model_channels(features, layer, channels, "dataset examples").output.shape[-1]
    if not channels:
        return {}
    selection = None if channels == list(range(count)) else tuple(channels)
    ((scores, images, positions, width, _, _),) = _top_tables(features, preprocess, [(layer, selection)],
                                                           _reported(batches, progress), top_n)
    return {
        channel: [
            Example(int(i), float(s), int(p) // width, int(p) % width)
            for s, i, p in zip(scores[row], images[row], positions[row])
        ]
        for row, channel in enumerate(channels)
    }


def _top_tables(features: keras.Model, preprocess: Callable, selections: Sequence[tuple[str, tuple[int, ...] | None]],
                batches: Iterable[np.ndarray], top_n: int, seed: int | None = None, first_image: int = 0,
                keep_maps: bool = False
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int, Tally | None, np.ndarray | None]]:
    """Per (layer, channels) of ``selections``: (scores, images, flat positions) of :func:`top_examples` as
    (K, n) arrays, the grid's width, with a ``seed`` the tally of every image's statistics (its images
    counted from ``first_image``), and with ``keep_maps`` each entry's map on its image, (K, n, h, w)."""
    if top_n < 1:
        raise GeneratorError(f"dataset examples: top_n must be at least 1, not {top_n}")
    step = _peak_step(features, preprocess, tuple(selections), seed is not None, keep_maps)
    counts = [graph.layer_output(features, layer, "dataset examples").shape[-1] if channels is None
              else len(channels) for layer, channels in selections]
    best = [(np.empty((k, 0), np.float32), np.empty((k, 0), np.int64), np.empty((k, 0), np.int64)) for k in counts]
    tallies = [None if seed is None else Tally.empty(k, seed) for k in counts]
    kept = [np.empty((k, 0, 0, 0), np.float32) if keep_maps else None for k in counts]
    widths = [1] * len(selections)
    seen = width = 0
    for pixels in batches:
        pixels = np.asarray(pixels)
        if pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise GeneratorError(f"dataset examples: expected image batches (B, H, W, 3), got {pixels.shape}")
        n = len(pixels)
        if n == 0:
            continue
        width = width or n
        for i, found in enumerate(step(padded(pixels, width))):
            if keep_maps:
                *found, maps = found
                maps = backend.read_numpy(maps)  # (B, h, w, K), read in place
            peak, first, grid, *stats = (keras.ops.convert_to_numpy(t) for t in found)
            peak, first, stats = peak[:n], first[:n], [s[:n] for s in stats]  # less the padding
            widths[i] = int(grid[1])
            index = np.broadcast_to(np.arange(seen, seen + n, dtype=np.int64), (counts[i], n))
            best[i], order = _merge(best[i], (peak.T.astype(np.float32), index, first.T.astype(np.int64)), top_n)
            if keep_maps:
                kept[i] = _merged_maps(kept[i], order, lambda entry, row, maps=maps: maps[entry, :, :, row])
            if tallies[i] is not None:
                tallies[i].add(first_image + seen, peak, *stats, first)
        seen += n
    return [(*b, w, t, m) for b, w, t, m in zip(best, widths, tallies, kept)]


def _reported(batches: Iterable[np.ndarray], progress: Callable[[int], None] | None) -> Iterator[np.ndarray]:
    """``batches``, with ``progress(n)`` called once a batch of ``n`` images is done (when the next one is asked for)."""
    for pixels in batches:
        yield pixels
        if progress is not None:
            progress(len(pixels))
