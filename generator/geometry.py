"""Receptive-field geometry on plain numbers: where a layer's activation positions look in the
image, the square crop around one, and an activation map resampled onto that crop.

Pure numpy (no Keras), so figures can use it; :func:`generator.analysis.examples.receptive_field`
computes a :class:`ReceptiveField` from a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReceptiveField:
    """Where a layer's activation positions look, in input pixels.

    Position ``(y, x)`` of the layer sees the ``size`` x ``size`` square of input pixels centred
    on ``(offset + stride * y, offset + stride * x)`` (pixel ``i`` has its centre at ``i``; an
    even ``size`` gives a half-integer centre). Near the borders part of the square is padding.
    """

    size: int
    stride: int
    offset: float


def peak_crop(image: np.ndarray, rf: ReceptiveField | None, y: int, x: int) -> tuple[np.ndarray, tuple | None]:
    """The square crop of ``image`` around the receptive field of position (y, x), and its box; the whole
    image and None where the receptive field is unknown."""
    if rf is None:
        return image, None
    top, left, side = box = crop_box(rf, y, x, image.shape[0])
    return image[top:top + side, left:left + side], box


def pair(value) -> tuple[int, int]:
    """A Keras size argument (``3`` or ``(3, 2)``) as (rows, columns)."""
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def same_padding_lead(n: int | None, stride: int, span: int) -> int:
    """Rows (or columns) that "same" padding adds before an input of length ``n``, as TensorFlow pads:
    ``max((ceil(n/s) - 1) s + span - n, 0) // 2``; with ``n`` unknown it is taken as a multiple of s."""
    if n is None:
        return max(span - stride, 0) // 2
    return max((-(-n // stride) - 1) * stride + span - n, 0) // 2


def crop_box(rf: ReceptiveField, y: int, x: int, image_size: int) -> tuple[int, int, int]:
    """(top, left, side) of the square crop around the receptive field of position (y, x).

    ``side = min(rf.size, image_size)``; the box is centred on the field's centre (rounding
    half up when the centre falls between pixels) and then shifted to lie inside the image.
    """
    side = min(int(rf.size), int(image_size))

    def start(position: int) -> int:
        centre = rf.offset + rf.stride * position
        first = math.floor(centre - (side - 1) / 2 + 0.5)
        return int(min(max(first, 0), image_size - side))

    return start(y), start(x), side


def box_map(rf: ReceptiveField, activation: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    """The (h, w) activation map resampled onto the pixels of ``box``: (side, side) float32.

    Each pixel gets the bilinear interpolation of the map between the centres of the
    receptive fields around it (position y is centred on pixel ``offset + stride * y``),
    held constant beyond the first and last centres, so the heat sits exactly on the crop.
    """
    activation = np.asarray(activation, dtype=np.float32)
    top, left, side = box

    def weights(first: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = (np.arange(first, first + side) - rf.offset) / rf.stride
        t = np.clip(t, 0, length - 1)
        low = np.floor(t).astype(int)
        high = np.minimum(low + 1, length - 1)
        return low, high, (t - low).astype(np.float32)

    r0, r1, fr = weights(top, activation.shape[0])
    c0, c1, fc = weights(left, activation.shape[1])
    rows = activation[r0] * (1 - fr[:, None]) + activation[r1] * fr[:, None]
    return (rows[:, c0] * (1 - fc) + rows[:, c1] * fc).astype(np.float32)
