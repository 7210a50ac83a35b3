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

The loss of a batch is the sum of each image's own objective, so images never share gradients, and
every random number of a unit derives from (seed, channel): a unit's image does not depend on the
batch it lands in. Only the requested channels of the layer are computed where the layer allows it
(a plain Conv2D: its kernel is sliced to the batch's channels), else they are gathered from its output.
With ``precision="bfloat16"`` (the default ``auto`` picks it where the CPU has AVX512-BF16 or AMX)
the network runs in Keras' mixed_bfloat16, about twice as fast there.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import keras
import numpy as np
from keras import ops

from generator.analysis import backend
from generator.config import ExciterParams, resolve_precision
from generator.errors import GeneratorError
from generator.figures import deprocess


@dataclass(frozen=True)
class ExciterResult:
    images: np.ndarray  # (N, S, S, 3) uint8, ready to save
    activation: np.ndarray  # (N,) objective on the optimised image (before deprocessing / uint8)
    start_activation: np.ndarray  # (N,) the same objective on the start image


def render_exciters(
    model: keras.Model,
    layer: str,
    channels: Sequence[int],
    params: ExciterParams,
    preprocess: Callable,
    progress: Callable[[int], None] | None = None,
) -> ExciterResult:
    """Exciters of ``channels`` of the layer named ``layer``, in the order given.

    ``preprocess`` maps float RGB in 0..255 (a backend tensor, N, H, W, 3) to the model's input.
    ``progress(k)`` is called after each batch with the number of units that batch finished (an
    increment: ``tqdm.update`` fits).
    """
    channels = [int(c) for c in channels]
    target = _find_layer(model, layer)
    _check_channels(target, channels)
    if params.method not in _RECIPES:
        raise ValueError(f"unknown exciter method {params.method!r}; allowed: {', '.join(_RECIPES)}")
    if not channels:
        s = params.size
        return ExciterResult(np.zeros((0, s, s, 3), np.uint8), np.zeros(0, np.float32), np.zeros(0, np.float32))

    canvas = _canvas(model, params)
    precision = resolve_precision(params.precision)
    if precision != "float32":
        model = at_precision(keras.Model(model.input, target.output), precision)
        target = model.get_layer(layer)

    # Equal batches (the last one padded by repeating a unit), so the compiled step is traced once.
    width = math.ceil(len(channels) / math.ceil(len(channels) / params.batch_size))
    objective = unit_objective(model, target, width, preprocess, params.objective)
    run_batch = _RECIPES[params.method](objective, params, canvas)

    images, reached, started = [], [], []
    for first in range(0, len(channels), width):
        batch = channels[first : first + width]
        result = run_batch(batch + batch[-1:] * (width - len(batch)))
        images.append(result.images[: len(batch)])
        reached.append(result.activation[: len(batch)])
        started.append(result.start_activation[: len(batch)])
        if progress is not None:
            progress(len(batch))
    return ExciterResult(np.concatenate(images), np.concatenate(reached), np.concatenate(started))


# --- the objective: one value per image, of that image's own unit --------------------------------


def unit_objective(
    model: keras.Model, layer: keras.layers.Layer, width: int, preprocess: Callable, kind: str
) -> Callable:
    """``(images 0..255 (B, H, W, 3), channels (B,)) -> (B,)``: each image's own unit.

    ``kind`` "channel": the channel's mean over positions; "neuron": its value at the centre position.
    """
    if kind not in ("channel", "neuron"):
        raise ValueError(f"unknown exciter objective {kind!r}; allowed: channel, neuron")
    maps = unit_maps(model, layer, width)

    def objective(images, channels):
        m = ops.cast(maps(preprocess(images), channels), "float32")  # (B, H, W)
        if kind == "neuron":
            return m[:, m.shape[1] // 2, m.shape[2] // 2]
        return ops.mean(m, axis=(1, 2))

    return objective


def unit_maps(model: keras.Model, layer: keras.layers.Layer, width: int) -> Callable:
    """``(model inputs (B, ...), channels (B,)) -> (B, H, W)``: image i's map of channel ``channels[i]``.

    A plain Conv2D target is computed with its kernel sliced to the batch's ``width`` channels (image
    i against every kernel of the batch, then the diagonal), which skips the other channels' forward
    and backward work; any other layer is cut from the model and its channels gathered.
    """
    if _sliceable(layer, width):
        trunk = model_until(model, layer.input)

        def sliced_maps(inputs, channels):
            dtype = layer.compute_dtype  # differs from the variables' under mixed precision
            kernel = ops.cast(ops.take(layer.kernel, channels, axis=3), dtype)
            x = ops.cast(trunk(inputs), dtype)  # the model input stays float32 when the target is the first layer
            y = ops.conv(x, kernel, layer.strides, layer.padding, "channels_last", layer.dilation_rate)
            if layer.use_bias:
                y = y + ops.cast(ops.take(layer.bias, channels), dtype)
            return _own_channel(layer.activation(y), ops.arange(width, dtype="int32"))

        return sliced_maps
    cut = keras.Model(model.input, layer.output)
    return lambda inputs, channels: _own_channel(cut(inputs), channels)


def model_until(model: keras.Model, tensor) -> Callable:
    """The part of ``model`` from its input to ``tensor`` (the identity when that is the input)."""
    if tensor is model.input:
        return lambda inputs: inputs
    return keras.Model(model.input, tensor)


def at_precision(model: keras.Model, precision: str) -> keras.Model:
    """A copy of ``model`` computing in ``precision`` ("bfloat16": Keras' mixed_bfloat16, float32 weights).

    About twice as fast on CPUs with AVX512-BF16; the gradient's direction barely changes, and the
    image and the objective stay float32.
    """
    if precision == "float32":
        return model
    if precision != "bfloat16":
        raise ValueError(f"unknown exciter precision {precision!r}; allowed: float32, bfloat16")

    def clone_layer(layer):
        config = layer.get_config()
        config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    return clone


def _own_channel(y, index):
    """(B, H, W, C), (B,) -> (B, H, W): channel ``index[i]`` of item i."""
    return ops.take_along_axis(y, ops.reshape(index, (-1, 1, 1, 1)), axis=-1)[..., 0]


def _sliceable(layer: keras.layers.Layer, width: int) -> bool:
    return (
        type(layer) is keras.layers.Conv2D
        and layer.groups == 1
        and layer.data_format == "channels_last"
        and len(getattr(layer, "_inbound_nodes", ())) == 1
        and width < layer.filters
    )


def _find_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    names = [l.name for l in model.layers]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise GeneratorError(f"exciters: layer {name!r} is not in model {model.name!r}{hint}")
    return model.get_layer(name)


def _check_channels(layer: keras.layers.Layer, channels: list[int]) -> None:
    count = layer.output.shape[-1]
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise GeneratorError(f"exciters: layer {layer.name!r} has channels 0..{count - 1}, got {bad[0]}")


def _canvas(model: keras.Model, params: ExciterParams) -> int:
    """The side of the image the model sees: size, or for lucid's transformed view size + 12.

    A model with a fixed input size sees that size: lucid pads its view to it (when it is at least
    ``size``); gradient ascent needs ``size`` to be it.
    """
    lucid = params.method == "lucid"
    fixed = tuple(model.input.shape[1:3])
    if None in fixed:
        return params.size + (12 if lucid else 0)
    if fixed[0] == fixed[1] and (fixed[0] == params.size or (lucid and fixed[0] > params.size)):
        return fixed[0]
    if fixed[0] != fixed[1]:
        raise GeneratorError(
            f"exciters: model {model.name!r} takes {fixed[0]}x{fixed[1]} images; exciters are square, so they need a "
            f"model with a square or free input size"
        )
    raise GeneratorError(
        f"exciters: model {model.name!r} takes {fixed[0]}x{fixed[1]} images; set exciters size to {fixed[0]}"
    )


def _rng(params: ExciterParams, channel: int, stream: int) -> np.random.Generator:
    """The random numbers of one unit: the same whatever batch the unit lands in."""
    return np.random.default_rng([params.seed, channel, stream])


# --- the lab's recipe ----------------------------------------------------------------------------


def start_image(params: ExciterParams, channel: int) -> np.ndarray:
    """Grey + uniform noise in [128, 148), (S, S, 3) float32."""
    return (128.0 + 20.0 * _rng(params, channel, 0).random((params.size, params.size, 3))).astype("float32")


def _gradient_ascent(objective: Callable, params: ExciterParams, canvas: int) -> Callable:
    value_and_grad = backend.value_and_grad(objective)
    rate = -params.step_size if params.negative else params.step_size

    def step(x, channels):
        values, g = value_and_grad(x, channels)
        rms = ops.sqrt(ops.mean(ops.square(g), axis=(1, 2, 3), keepdims=True))
        return x + rate * g / (rms + 1e-5), values

    step = backend.compile_step(step)
    forward = backend.compile_step(objective)

    def run_batch(channels: list[int]) -> ExciterResult:
        units = ops.convert_to_tensor(np.array(channels, "int32"))
        x = ops.convert_to_tensor(np.stack([start_image(params, c) for c in channels]))
        start = None
        for _ in range(params.steps):
            x, values = step(x, units)
            start = values if start is None else start  # the value before the first step
        reached = _numpy(forward(x, units))
        start = reached if start is None else _numpy(start)
        return ExciterResult(deprocess(_numpy(x)), reached, start)

    return run_batch


# --- Lucid's recipe ------------------------------------------------------------------------------

# Lucid's ImageNet colour correlation (square root of the RGB covariance), columns scaled to norm <= 1.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], "float32")
_COLOR = _COLOR_SQRT / np.max(np.linalg.norm(_COLOR_SQRT, axis=0))
_SCALES = [1 + (i - 5) / 50 for i in range(11)]  # 0.90 .. 1.10
_ANGLES = list(range(-10, 11)) + 5 * [0]  # degrees, 0 more likely
_LR, _BETA1, _BETA2, _EPS = 0.05, 0.9, 0.999, 1e-8


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
    """(B, 2, 3, S, S//2+1) real and imaginary parts -> (B, S, S, 3) RGB in [0, 1]."""
    scale = ops.convert_to_tensor(scale)
    x = irfft2(spectrum[:, 0] * scale, spectrum[:, 1] * scale, size) / 4.0  # (B, 3, S, S)
    x = ops.matmul(ops.transpose(x, (0, 2, 3, 1)), _COLOR.T)  # decorrelated -> RGB
    return ops.sigmoid(x)


def lucid_transforms(params: ExciterParams, channel: int, canvas: int) -> np.ndarray:
    """Per step, (steps, 8): the affine map of pad 12, jitter 8, scale, rotate, jitter 4, as one transform.

    In keras' form ``[a0, a1, a2, b0, b1, b2, 0, 0]``: output pixel (x, y) of the canvas samples the
    input (the image padded to the canvas) at (a0 x + a1 y + a2, b0 x + b1 y + b2).
    """
    rng, n, s = _rng(params, channel, 1), params.steps, params.size
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


def _lucid(objective: Callable, params: ExciterParams, canvas: int) -> Callable:
    size, scale = params.size, spectrum_scale(params.size)
    sign = -1.0 if params.negative else 1.0
    before, after = (canvas - size) // 2, canvas - size - (canvas - size) // 2
    pads = [[0, 0], [before, after], [before, after], [0, 0]]

    def seen(spectrum, transforms, channels):
        """The signed objective of the image as seen through this step's transforms."""
        image = ops.pad(spectrum_to_rgb(spectrum, scale, size), pads, constant_values=0.5)  # to the canvas size
        image = ops.image.affine_transform(image, transforms, fill_mode="constant", fill_value=0.5)
        return sign * objective(image * 255.0, channels)

    value_and_grad = backend.value_and_grad(seen)

    def step(spectrum, m, v, t, transforms, channels):
        _, g = value_and_grad(spectrum, transforms, channels)
        m = _BETA1 * m + (1 - _BETA1) * g
        v = _BETA2 * v + (1 - _BETA2) * ops.square(g)
        m_hat, v_hat = m / (1 - _BETA1**t), v / (1 - _BETA2**t)
        return spectrum + _LR * m_hat / (ops.sqrt(v_hat) + _EPS), m, v

    def image_and_objective(spectrum, channels):
        image = spectrum_to_rgb(spectrum, scale, size)
        return image, objective(image * 255.0, channels)

    step = backend.compile_step(step)
    image_and_objective = backend.compile_step(image_and_objective)

    def run_batch(channels: list[int]) -> ExciterResult:
        units = ops.convert_to_tensor(np.array(channels, "int32"))
        shape = (2, 3, size, size // 2 + 1)
        spectrum = np.stack([_rng(params, c, 0).normal(0, 0.01, shape) for c in channels]).astype("float32")
        spectrum = ops.convert_to_tensor(spectrum)
        transforms = np.stack([lucid_transforms(params, c, canvas) for c in channels], 1)  # (steps, B, 8)
        _, start = image_and_objective(spectrum, units)
        m = v = ops.zeros_like(spectrum)
        for i in range(params.steps):
            t = ops.convert_to_tensor(np.float32(i + 1))
            spectrum, m, v = step(spectrum, m, v, t, ops.convert_to_tensor(transforms[i]), units)
        image, reached = image_and_objective(spectrum, units)
        images = np.clip(np.round(_numpy(image) * 255.0), 0, 255).astype(np.uint8)
        return ExciterResult(images, _numpy(reached), _numpy(start))

    return run_batch


def _numpy(x) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float32)


_RECIPES = {"gradient_ascent": _gradient_ascent, "lucid": _lucid}
