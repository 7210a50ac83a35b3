"""What every exciter recipe shares: the result of a batch, the unit's random numbers, and the loop that runs
a recipe's batches over all the items of a render (each batch equally wide, so a compiled step is traced once).

A recipe is ``(make_objective, params, canvas, ...) -> run_batch``, where ``run_batch(keys, targets)`` gives
the :class:`ExciterResult` of one batch; the recipes import this module, never one another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from keras import ops

from generator.config import ExciterParams
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


@dataclass(frozen=True)
class Items:
    """What a render makes, one image per item: ``keys[i]`` seeds its random numbers, ``targets[i]`` is
    its objective's argument (a channel, or a direction's weights); ``group`` consecutive items always
    share a batch; ``spectrum``: the magnitude (C, h, w) maco's images keep, resized to theirs (None:
    ImageNet's)."""

    keys: list[tuple[int, ...]]
    targets: np.ndarray
    group: int = 1
    spectrum: np.ndarray | None = None


def batch_width(count: int, batch_size: int, group: int = 1) -> int:
    """How many of ``count`` items a batch holds: at most ``batch_size`` (whole groups), as evenly as
    possible; every batch is this wide (the last one padded by repeating an item or group), so the
    compiled step is traced once."""
    groups = count // group
    return group * math.ceil(groups / math.ceil(groups / max(1, batch_size // group)))


def run_batches(run_batch: Callable, items: Items, width: int,
                progress: Callable[[int], None] | None) -> ExciterResult:
    """``run_batch`` over ``items`` in batches of ``width`` (the last padded by repeating whole groups), the
    padding dropped; ``progress(n)`` after each batch with the number of items it finished."""
    keys, targets, group = items.keys, items.targets, items.group
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


def unit_rng(params: ExciterParams, key: tuple[int, ...], stream: int) -> np.random.Generator:
    """The random numbers of one image, keyed by its unit's channel (and more, for several images of a
    unit): the same whatever batch the image lands in."""
    return np.random.default_rng([params.seed, key[0], stream, *key[1:]])


class NonFinite(Exception):
    """A batch's images or values hold a NaN or an infinity (``render_items`` renders again in float32, or says
    the exciters are undefined)."""


def finite_numpy(x) -> np.ndarray:
    """A backend tensor as float32 NumPy; :class:`NonFinite` where any value is NaN or infinite.

    Every image and value a recipe returns passes here: a NaN image can come with finite values (in TensorFlow's
    compiled step a convolution fused with its ReLU gives 0 for NaN, and max pooling skips NaN), so the values
    alone do not show it.
    """
    x = np.asarray(ops.convert_to_numpy(x), dtype=np.float32)
    if not np.isfinite(x).all():
        raise NonFinite
    return x
