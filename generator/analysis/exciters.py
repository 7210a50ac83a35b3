"""Exciters: for each unit (layer, channel), an image that drives the unit as high (or as low) as it goes.

Two recipes, both optimising a batch of units together, one image per unit:

``gradient_ascent``, the lab's recipe
    Start from grey + uniform noise in [128, 148); ``steps`` times do
    ``x += step_size * g / (rms(g) + 1e-5)`` on the 0..255 RGB image, where ``g`` is the gradient of
    the unit's objective and ``rms`` is taken per image; deprocess for display (centre, std 0.1, +0.5).

``lucid``, Lucid's feature visualisation recipe
    The image is a Fourier spectrum with 1/f scaling and decorrelated ImageNet colour, squashed
    by a sigmoid into [0, 1]; each step it is seen through random transforms (pad 12, jitter 8,
    scale 0.9..1.1, rotate -10..10 degrees, jitter 4) and Adam (lr 0.05) follows the gradient.
    For the first 16 steps the gradient passes the target layer's ReLU where it would raise its input
    (Lucid's ReLU gradient override, which Lucid applies to every ReLU; here to the target's, written as
    climbing its pre-activation so it runs on every backend), so a unit that is 0 everywhere on the
    start image still moves.

The loss of a batch is the sum of each image's own objective, so images never share gradients, and
every random number of a unit derives from (seed, channel): a unit's image does not depend on the
batch it lands in. Only the requested channels of the layer are computed where the layer allows it
(a plain Conv2D: its kernel is sliced to the batch's channels), else they are gathered from its output.
With ``precision="bfloat16"`` (the default ``auto`` picks it where the CPU has AVX512-BF16 or AMX)
the network runs in Keras' mixed_bfloat16, about twice as fast there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import keras
import numpy as np
from keras import ops

from generator.analysis import backend, graph
from generator.analysis.precision import resolve_precision
from generator.config import ExciterParams
from generator.errors import GeneratorError
from generator.pixels import deprocess, grey_as_rgb
from generator.results import Exciter


@dataclass(frozen=True)
class ExciterResult:
    images: np.ndarray  # (N, S, S, 3) uint8, ready to save
    activation: np.ndarray  # (N,) objective on the optimised image (before deprocessing / uint8)
    start_activation: np.ndarray  # (N,) the same objective on the start image
    transparency: np.ndarray | None = None  # (N, S, S) in [0, 1], maco's summed |input gradient|

    def exciters(self) -> list[Exciter]:
        """One :class:`Exciter` per unit, in order."""
        alphas = [None] * len(self.images) if self.transparency is None else np.round(self.transparency * 255)
        return [Exciter(image, float(a), float(s), None if alpha is None else alpha.astype(np.uint8))
                for image, a, s, alpha in zip(self.images, self.activation, self.start_activation, alphas)]


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

    def objective(model: keras.Model, target: keras.layers.Layer, width: int, redirect_relu: bool) -> Callable:
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
) -> ExciterResult:
    """Exciters of ``directions`` (N, C), vectors over the channels of the layer named ``layer``.

    The objective is the dot product of the image's activations with its direction (their mean over
    positions, or at the centre for ``objective="neuron"``). A direction's random numbers are those of
    its strongest channel, so a one-hot direction gives the same image as that channel's exciter.
    """
    directions = np.asarray(directions, np.float32)
    target = graph.model_layer(model, layer, "exciters")
    channels = graph.layer_info(target).channels
    if directions.ndim != 2 or directions.shape[1] != channels:
        raise GeneratorError(f"exciters: a direction over layer {layer!r} has {channels} weights, one per channel; "
                             f"got shape {directions.shape}")
    support = np.flatnonzero(np.any(directions != 0, axis=0)).astype("int32")

    def objective(model: keras.Model, target: keras.layers.Layer, width: int, redirect_relu: bool) -> Callable:
        return direction_objective(model, target, support, preprocess, params.objective, redirect_relu)

    items = Items([(int(np.argmax(np.abs(d))),) for d in directions], directions[:, support])
    return render_items(model, target, items, params, objective, progress)


@dataclass(frozen=True)
class Items:
    """What a render makes, one image per item: ``keys[i]`` seeds its random numbers, ``targets[i]`` is
    its objective's argument (a channel, or a direction's weights); ``group`` consecutive items always
    share a batch; ``spectrum``: the magnitude (C, S, S//2+1) maco's images keep (None: ImageNet's)."""

    keys: list[tuple[int, ...]]
    targets: np.ndarray
    group: int = 1
    spectrum: np.ndarray | None = None


def render_items(model: keras.Model, target: keras.layers.Layer, items: Items, params: ExciterParams,
                 make_objective: Callable, progress: Callable[[int], None] | None,
                 make_penalised: Callable | None = None, width: int = 0) -> ExciterResult:
    """One image per item of ``items``; ``make_objective(model, target, width, redirect_relu)``.

    ``make_penalised`` (same arguments) gives the ``(images, targets) -> (B,)`` that Lucid's recipe climbs
    instead (the objective less a penalty, in one pass through the network; the reported value stays
    ``make_objective``'s); it may couple the items of a group.
    """
    keys, targets, group = items.keys, items.targets, items.group
    if params.method not in _RECIPES:
        raise ValueError(f"unknown exciter method {params.method!r}; allowed: {', '.join(_RECIPES)}")
    if not keys:
        s = params.size
        return ExciterResult(np.zeros((0, s, s, 3), np.uint8), np.zeros(0, np.float32), np.zeros(0, np.float32))

    canvas = _canvas(model, params)
    precision = resolve_precision(params.precision)
    if precision != "float32":
        name = target.name
        model = backend.at_precision(graph.cut(model, target.output), precision)
        target = model.get_layer(name)

    width = width or batch_width(len(keys), params.batch_size, group)

    def objective(redirect_relu: bool = False, penalised: bool = False) -> Callable:
        make = make_penalised if penalised and make_penalised is not None else make_objective
        return make(model, target, width, redirect_relu)

    if params.method == "maco":
        from generator.analysis import maco  # it builds on this module's helpers

        spectrum = maco.imagenet_magnitude(params.size) if items.spectrum is None else items.spectrum
        run_batch = maco.maco_recipe(objective, params, canvas, spectrum)
    else:
        run_batch = _RECIPES[params.method](objective, params, canvas, model.input.shape[-1])

    images, reached, started, alphas = [], [], [], []
    for first in range(0, len(keys), width):
        n = len(keys[first : first + width])
        pick = [first + i if i < n else first + n - group + (i - n) % group for i in range(width)]
        result = run_batch([keys[i] for i in pick], targets[pick])
        images.append(result.images[:n])
        reached.append(result.activation[:n])
        started.append(result.start_activation[:n])
        alphas.append(None if result.transparency is None else result.transparency[:n])
        if progress is not None:
            progress(n)
    alpha = None if alphas[0] is None else np.concatenate(alphas)
    return ExciterResult(np.concatenate(images), np.concatenate(reached), np.concatenate(started), alpha)


def batch_width(count: int, batch_size: int, group: int = 1) -> int:
    """How many of ``count`` items a batch holds: at most ``batch_size`` (whole groups), as evenly as
    possible; every batch is this wide (the last one padded by repeating an item or group), so the
    compiled step is traced once."""
    groups = count // group
    return group * math.ceil(groups / math.ceil(groups / max(1, batch_size // group)))


# --- the objective: one value per image, of that image's own unit --------------------------------


def unit_objective(
    model: keras.Model, layer: keras.layers.Layer, width: int, preprocess: Callable, kind: str,
    redirect_relu: bool = False,
) -> Callable:
    """``(images 0..255 (B, H, W, 3), channels (B,)) -> (B,)``: each image's own unit.

    ``kind`` "channel": the channel's mean over positions; "neuron": its value at the centre position.
    ``redirect_relu``: see :func:`unit_maps`.
    """
    check_objective(kind)
    maps = unit_maps(model, layer, width, redirect_relu)

    def objective(images, channels):
        return map_objective(maps(preprocess(images), channels), kind)

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
    redirect_relu: bool = False,
) -> Callable:
    """``(images 0..255 (B, H, W, 3), weights (B, K)) -> (B,)``: each image's activations at ``layer``'s
    channels ``support`` (K,) dotted with its own weights, as ``kind`` of :func:`unit_objective` says."""
    check_objective(kind)
    maps = channel_maps(model, layer, len(support), redirect_relu)
    support = ops.convert_to_tensor(support)

    def objective(images, weights):
        y = maps(preprocess(images), support)  # (B, H, W, K)
        return map_objective(ops.sum(ops.cast(y, "float32") * weights[:, None, None, :], axis=-1), kind)

    return objective


def unit_maps(model: keras.Model, layer: keras.layers.Layer, width: int, redirect_relu: bool = False) -> Callable:
    """``(model inputs (B, ...), channels (B,)) -> (B, H, W)``: image i's map of channel ``channels[i]``."""
    activation = _sliced_activation(layer, width, redirect_relu)
    if activation is not None:
        maps = _sliced_maps(model, layer, activation)
        return lambda inputs, channels: own_channel(maps(inputs, channels), ops.arange(channels.shape[0], dtype="int32"))
    cut = _cut_maps(model, layer, redirect_relu)  # all channels: pick each image's own, with no gather in between
    return lambda inputs, channels: own_channel(cut(inputs, training=False), channels)


def channel_maps(model: keras.Model, layer: keras.layers.Layer, count: int, redirect_relu: bool = False) -> Callable:
    """``(model inputs (B, ...), channels (K,)) -> (B, H, W, K)``: the maps of ``count`` channels.

    A plain Conv2D target is computed with its kernel sliced to the ``count`` channels, which skips the
    other channels' forward and backward work; any other layer is cut from the model and its channels
    gathered.

    ``redirect_relu``: the maps before the target's ReLU (a conv's relu activation, or a ReLU layer's
    input). For an objective that rises with the map this is Lucid's ReLU gradient override at the
    target: the gradient passes the ReLU wherever it would raise its input, also where the input is
    negative. Other targets are left as they are.
    """
    activation = _sliced_activation(layer, count, redirect_relu)
    if activation is not None:
        return _sliced_maps(model, layer, activation)
    cut = _cut_maps(model, layer, redirect_relu)
    return lambda inputs, channels: ops.take(cut(inputs, training=False), channels, axis=-1)


def every_channel_maps(model: keras.Model, layer: keras.layers.Layer, redirect_relu: bool = False) -> Callable:
    """``(model inputs (B, ...)) -> (B, H, W, C)``: every channel's maps, as :func:`channel_maps` gives them."""
    count = graph.layer_info(layer).channels
    activation = _sliced_activation(layer, count, redirect_relu)
    if activation is not None:  # a plain conv before its redirected ReLU
        maps, every = _sliced_maps(model, layer, activation), ops.arange(count, dtype="int32")
        return lambda inputs: maps(inputs, every)
    cut = _cut_maps(model, layer, redirect_relu)
    return lambda inputs: cut(inputs, training=False)


def _sliced_activation(layer: keras.layers.Layer, count: int, redirect_relu: bool) -> Callable | None:
    """What follows the conv when ``layer`` is computed with its kernel sliced to ``count`` channels (none
    before a redirected ReLU), or None when it is not sliced."""
    if redirect_relu and _is_relu(getattr(layer, "activation", None)) and _plain_conv(layer):
        return lambda y: y
    return layer.activation if _sliceable(layer, count) else None


def _cut_maps(model: keras.Model, layer: keras.layers.Layer, redirect_relu: bool) -> keras.Model:
    """The model up to all of ``layer``'s maps (before a ReLU layer's ReLU, for ``redirect_relu``)."""
    return graph.cut(model, layer.input if redirect_relu and _relu_layer(layer) else layer.output)


def _sliced_maps(model: keras.Model, layer: keras.layers.Layer, activation: Callable) -> Callable:
    """A plain Conv2D's maps with its kernel sliced to the requested channels, through ``activation``."""
    trunk = (lambda inputs, training: inputs) if layer.input is model.input else graph.cut(model, layer.input)

    def sliced_maps(inputs, channels):
        dtype = layer.compute_dtype  # differs from the variables' under mixed precision
        kernel = ops.cast(ops.take(layer.kernel, channels, axis=3), dtype)
        x = ops.cast(trunk(inputs, training=False), dtype)  # the model input stays float32 when the target is the first layer
        y = ops.conv(x, kernel, layer.strides, layer.padding, "channels_last", layer.dilation_rate)
        if layer.use_bias:
            y = y + ops.cast(ops.take(layer.bias, channels), dtype)
        return activation(y)

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


def _canvas(model: keras.Model, params: ExciterParams) -> int:
    """The side of the image the model sees: size, or for lucid's transformed view size + 12 (maco resizes
    its crops to a fixed input of any size).

    A model with a fixed input size sees that size: lucid pads its view to it (when it is at least
    ``size``); gradient ascent needs ``size`` to be it.
    """
    lucid = params.method == "lucid"
    fixed = tuple(model.input.shape[1:3])
    if None in fixed:
        return params.size + (12 if lucid else 0)
    resized = params.method == "maco"  # its crops are resized to the model's input
    if fixed[0] == fixed[1] and (fixed[0] == params.size or resized or (lucid and fixed[0] > params.size)):
        return fixed[0]
    if fixed[0] != fixed[1]:
        raise GeneratorError(
            f"exciters: model {model.name!r} takes {fixed[0]}x{fixed[1]} images; exciters are square, so they need a "
            f"model with a square or free input size"
        )
    raise GeneratorError(
        f"exciters: model {model.name!r} takes {fixed[0]}x{fixed[1]} images; set exciters size to {fixed[0]}"
    )


def _rng(params: ExciterParams, key: tuple[int, ...], stream: int) -> np.random.Generator:
    """The random numbers of one image, keyed by its unit's channel (and more, for several images of a
    unit): the same whatever batch the image lands in."""
    return np.random.default_rng([params.seed, key[0], stream, *key[1:]])


# --- the lab's recipe ----------------------------------------------------------------------------


def start_image(params: ExciterParams, key: tuple[int, ...], channels: int = 3) -> np.ndarray:
    """Grey + uniform noise in [128, 148), (S, S, channels) float32."""
    return (128.0 + 20.0 * _rng(params, key, 0).random((params.size, params.size, channels))).astype("float32")


def as_rgb(x):
    """Pixels (B, H, W, C) as the RGB the objectives take: a grayscale model's (C = 1) as three equal channels,
    which its luminance input reads back unchanged (so the image stays grey)."""
    return x if x.shape[-1] == 3 else ops.repeat(x, 3, axis=-1)


def _gradient_ascent(make_objective: Callable, params: ExciterParams, canvas: int, channels: int) -> Callable:
    climb = make_objective()

    def objective(x, targets):
        return climb(as_rgb(x), targets)

    value_and_grad = backend.value_and_grad(objective)
    rate = -params.step_size if params.negative else params.step_size

    def step(x, channels):
        values, g = value_and_grad(x, channels)
        rms = ops.sqrt(ops.mean(ops.square(g), axis=(1, 2, 3), keepdims=True))
        return x + rate * g / (rms + 1e-5), values

    # One compiled function: the value on the final image is read from one more step (the same graph's value,
    # equal to a separate forward's bit for bit on VGG16) rather than from a second function traced per layer.
    step = backend.compile_step(step)

    def run_batch(keys: list[tuple[int, ...]], targets: np.ndarray) -> ExciterResult:
        units = ops.convert_to_tensor(targets)
        x = ops.convert_to_tensor(np.stack([start_image(params, k, channels) for k in keys]))
        start = None
        for _ in range(params.steps):
            x, values = step(x, units)
            start = values if start is None else start  # the value before the first step
        reached = _numpy(step(x, units)[1])
        start = reached if start is None else _numpy(start)
        return ExciterResult(grey_as_rgb(deprocess(_numpy(x))), reached, start)

    return run_batch


# --- Lucid's recipe ------------------------------------------------------------------------------

# Lucid's ImageNet colour correlation (square root of the RGB covariance), columns scaled to norm <= 1.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], "float32")
_COLOR = _COLOR_SQRT / np.max(np.linalg.norm(_COLOR_SQRT, axis=0))
_SCALES = [1 + (i - 5) / 50 for i in range(11)]  # 0.90 .. 1.10
_ANGLES = list(range(-10, 11)) + 5 * [0]  # degrees, 0 more likely
_LR, _BETA1, _BETA2, _EPS = 0.05, 0.9, 0.999, 1e-8
_REDIRECT_STEPS = 16  # Lucid's ReLU gradient override holds for the first 16 steps


def spectrum_scale(size: int, decay: float = 1.0) -> np.ndarray:
    """Lucid's 1/f amplitude of each rfft2 frequency of a size x size image, (S, S//2+1)."""
    freqs = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.rfftfreq(size)[None, :] ** 2)
    return (size / np.maximum(freqs, 1.0 / size) ** decay).astype("float32")


def irfft2(real, imag, size: int):
    """``numpy.fft.irfft2`` over the last two axes, from keras.ops' 1-D transforms."""
    real, imag = ops.swapaxes(real, -1, -2), ops.swapaxes(imag, -1, -2)
    real, imag = ops.fft((real, -imag))  # ifft(z) = conj(fft(conj(z))) / n, along the rows
    real, imag = ops.swapaxes(real, -1, -2) / size, -ops.swapaxes(imag, -1, -2) / size
    return ops.irfft((real, imag), fft_length=size)


def spectrum_to_rgb(spectrum, scale, size: int):
    """(B, 2, C, S, S//2+1) real and imaginary parts -> (B, S, S, 3) RGB in [0, 1].

    C = 3: decorrelated colour; C = 1 (a grayscale model): the Fourier image alone, as three equal channels.
    """
    scale = ops.convert_to_tensor(scale)
    x = irfft2(spectrum[:, 0] * scale, spectrum[:, 1] * scale, size) / 4.0  # (B, C, S, S)
    x = ops.transpose(x, (0, 2, 3, 1))
    if x.shape[-1] == 3:
        x = ops.matmul(x, _COLOR.T)  # decorrelated -> RGB
    return ops.sigmoid(as_rgb(x))


def lucid_transforms(params: ExciterParams, key: tuple[int, ...], canvas: int) -> np.ndarray:
    """Per step, (steps, 8): the affine map of pad 12, jitter 8, scale, rotate, jitter 4, as one transform.

    In keras' form ``[a0, a1, a2, b0, b1, b2, 0, 0]``: output pixel (x, y) of the canvas samples the
    input (the image padded to the canvas) at (a0 x + a1 y + a2, b0 x + b1 y + b2).
    """
    rng, n, s = _rng(params, key, 1), params.steps, params.size
    jitter8 = rng.integers(0, 9, (n, 2))  # random crop offsets, as Lucid's jitter(8)
    scale = rng.choice(_SCALES, n)
    angle = np.deg2rad(rng.choice(_ANGLES, n))
    jitter4 = rng.integers(0, 5, (n, 2))
    centre = (s + 24 - 8 - 1) / 2  # of the padded, jittered view, in padded coordinates
    shift = (s + 12 - canvas) / 2  # canvas inside Lucid's (s + 12) final view
    pad = (canvas - s) // 2  # the image inside the canvas-sized input
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    a = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (n, 2, 2): rotate, then zoom
    d = shift + jitter4 - centre  # (n, 2) in (x, y)
    offset = centre + np.einsum("nij,nj->ni", a, d) + jitter8 - 12 + pad
    zeros = np.zeros(n)
    rows = [a[:, 0, 0], a[:, 0, 1], offset[:, 0], a[:, 1, 0], a[:, 1, 1], offset[:, 1], zeros, zeros]
    return np.stack(rows, -1).astype("float32")


def adam_ascent(x, g, m, v, t):
    """One step of Adam (Lucid's lr 0.05) up the gradient ``g`` at step ``t`` (from 1): ``(x, m, v)``."""
    m = _BETA1 * m + (1 - _BETA1) * g
    v = _BETA2 * v + (1 - _BETA2) * ops.square(g)
    m_hat, v_hat = m / (1 - _BETA1**t), v / (1 - _BETA2**t)
    return x + _LR * m_hat / (ops.sqrt(v_hat) + _EPS), m, v


def _lucid(make_objective: Callable, params: ExciterParams, canvas: int, channels: int) -> Callable:
    size, scale = params.size, spectrum_scale(params.size)
    sign = -1.0 if params.negative else 1.0
    before, after = (canvas - size) // 2, canvas - size - (canvas - size) // 2
    pads = [[0, 0], [before, after], [before, after], [0, 0]]
    objective = make_objective()

    def adam_step(objective: Callable) -> Callable:
        def seen(spectrum, transforms, channels):
            """The signed objective of the image as seen through this step's transforms."""
            image = ops.pad(spectrum_to_rgb(spectrum, scale, size), pads, constant_values=0.5)  # to the canvas size
            image = ops.image.affine_transform(image, transforms, fill_mode="constant", fill_value=0.5)
            return sign * objective(image * 255.0, channels)

        value_and_grad = backend.value_and_grad(seen)

        def step(spectrum, m, v, t, transforms, channels):
            _, g = value_and_grad(spectrum, transforms, channels)
            return adam_ascent(spectrum, g, m, v, t)

        return backend.compile_step(step)

    def image_and_objective(spectrum, channels):
        image = spectrum_to_rgb(spectrum, scale, size)
        return image, objective(image * 255.0, channels)

    step = adam_step(make_objective(penalised=True))
    # Lucid's ReLU gradient override: the first steps raise the target's input, not only where it is positive
    # (when lowering the unit, the gradient only passes where the ReLU is open anyway).
    early_step = step if params.negative else adam_step(make_objective(redirect_relu=True, penalised=True))
    image_and_objective = backend.compile_step(image_and_objective)

    def run_batch(keys: list[tuple[int, ...]], targets: np.ndarray) -> ExciterResult:
        units = ops.convert_to_tensor(targets)
        shape = (2, channels, size, size // 2 + 1)
        spectrum = np.stack([_rng(params, k, 0).normal(0, 0.01, shape) for k in keys]).astype("float32")
        spectrum = ops.convert_to_tensor(spectrum)
        transforms = np.stack([lucid_transforms(params, k, canvas) for k in keys], 1)  # (steps, B, 8)
        _, start = image_and_objective(spectrum, units)
        m = v = ops.zeros_like(spectrum)
        for i in range(params.steps):
            t = ops.convert_to_tensor(np.float32(i + 1))
            take = early_step if i < _REDIRECT_STEPS else step
            spectrum, m, v = take(spectrum, m, v, t, ops.convert_to_tensor(transforms[i]), units)
        image, reached = image_and_objective(spectrum, units)
        images = np.clip(np.round(_numpy(image) * 255.0), 0, 255).astype(np.uint8)
        return ExciterResult(images, _numpy(reached), _numpy(start))

    return run_batch


def _numpy(x) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float32)


_RECIPES = {"gradient_ascent": _gradient_ascent, "lucid": _lucid, "maco": None}  # maco: see render_items
