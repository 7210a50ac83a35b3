"""Faithfulness: does an attribution map rank first the pixels that the score depends on?

Three measures per image, each also for a seeded random ranking of the pixels (the floor a map must
beat). ``x`` is the photo, ``x0`` the baseline (black, or the photo blurred), ``f`` the target's score:

Deletion (Petsiuk et al. 2018, RISE)
    the map's P pixels, highest first, set to ``x0`` in ``steps`` equal steps (after step k the first
    floor(k P / steps)); the curve is ``f`` after each step divided by ``f(x)``, its area the mean of
    the trapezoids over the fraction removed (0 to 1). Lower is more faithful.
Insertion
    the same from ``x0`` towards ``x``: the map's pixels, highest first, put back. Higher is more
    faithful.
µ-Fidelity (Bhatt et al. 2020)
    Pearson's correlation, over ``samples`` random subsets S of the pixels, between the map's sum over S
    and ``f(x) - f(x with S at x0)``. A subset is cells of a ``grid`` x ``grid`` grid, each in S with
    probability ``fraction`` (Xplique's MuFidelity: 9 x 9, 20%). Near 1 is faithful, near 0 random.

Pixels that a map ties are ranked in a seeded random order. A curve's ends need no model (deletion
runs from ``f(x)`` to ``f(x0)``, insertion back); the subsets' drops are shared by every map; the
perturbed images go through ``score`` in batches, made as they are needed. Where ``f(x)`` is not
positive the normalised curves are undefined (NaN); where the drops or a map's sums over the subsets
do not vary, µ-Fidelity is undefined (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from generator.analysis.correlation import pearson
from generator.results import FaithfulnessScores

RANDOM = "random"  # the floor's name among the methods

# ``score(inputs, selectors)``: the scores of items 0..len(selectors) - 1, whose 0..255 images
# ``inputs(rows)`` makes (B, H, W, 3) float32; ``selectors`` says what each item's score picks.
Score = Callable[[Callable[[np.ndarray], np.ndarray], np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FaithfulnessSettings:
    steps: int = 8  # deletion and insertion: points on the curve after the photo
    samples: int = 32  # µ-Fidelity's random subsets
    grid: int = 9  # µ-Fidelity's subsets are cells of a grid x grid grid
    fraction: float = 0.2  # each cell's chance of being in a subset
    seed: int = 0  # the random ranking, the subsets, and the order among a map's ties


def subsets(settings: FaithfulnessSettings, size: tuple[int, int]) -> np.ndarray:
    """(samples, H, W) bool: µ-Fidelity's subsets, seeded; True where a pixel is set to the baseline."""
    cells = np.random.default_rng([settings.seed, 0x5B5]).random((settings.samples, settings.grid, settings.grid))
    rows, cols = ((np.arange(n) * settings.grid) // n for n in size)
    return (cells < settings.fraction)[:, rows][:, :, cols]


def faithfulness(
    score: Score,
    images: np.ndarray,
    baselines: np.ndarray,
    maps: dict[str, np.ndarray],
    selectors: np.ndarray,
    settings: FaithfulnessSettings,
    removed: np.ndarray | None = None,
) -> tuple[FaithfulnessScores, ...]:
    """Each map's scores (method -> (N, H, W)), in order, then the random ranking's (:data:`RANDOM`).

    ``images`` and ``baselines`` (N, H, W, 3) 0..255; ``selectors`` (N,) what each image's score picks;
    ``removed`` (S, H, W) bool: µ-Fidelity's subsets (default: :func:`subsets` of ``settings``).
    """
    x, x0 = np.asarray(images, np.float32), np.asarray(baselines, np.float32)
    n, size = len(x), x.shape[1:3]
    removed = subsets(settings, size) if removed is None else np.asarray(removed, bool)
    names = [*maps, RANDOM]
    stacked = np.stack([np.asarray(maps[m], np.float32) for m in maps] + [_random_maps(n, size, settings.seed)])
    ranks = _ranks(stacked, settings.seed)
    plan = _Plan(x, x0, ranks, removed, settings.steps)
    values = score(plan.inputs, np.asarray(selectors)[plan.image])
    photo, baseline, drops, deletion, insertion = plan.split(np.asarray(values, np.float64))
    deletion = np.concatenate([np.broadcast_to(photo, (len(names), n, 1)), deletion,
                               np.broadcast_to(baseline, (len(names), n, 1))], axis=2)
    insertion = np.concatenate([np.broadcast_to(baseline, (len(names), n, 1)), insertion,
                                np.broadcast_to(photo, (len(names), n, 1))], axis=2)
    scale = np.where(photo > 0, photo, np.nan)  # (N, 1)
    sums = np.einsum("mnhw,shw->mns", stacked.astype(np.float64), removed.astype(np.float64))
    return tuple(
        FaithfulnessScores(
            method=name,
            deletion=(deletion[j] / scale).astype(np.float32),
            insertion=(insertion[j] / scale).astype(np.float32),
            deletion_auc=area(deletion[j] / scale),
            insertion_auc=area(insertion[j] / scale),
            mu_fidelity=np.array([pearson(s, d) for s, d in zip(sums[j], drops)], np.float32),
        )
        for j, name in enumerate(names)
    )


def area(curves: np.ndarray) -> np.ndarray:
    """(N, K + 1) curves over equal steps from 0 to 1 -> (N,) their areas by the trapezoid rule."""
    curves = np.asarray(curves, np.float64)
    return ((curves[:, :-1] + curves[:, 1:]) / 2).mean(axis=1).astype(np.float32)


def _random_maps(n: int, size: tuple[int, int], seed: int) -> np.ndarray:
    return np.stack([np.random.default_rng([seed, 0xF100, i]).random(size, np.float32) for i in range(n)])


def _ranks(maps: np.ndarray, seed: int) -> np.ndarray:
    """(M, N, H, W) maps -> each pixel's place when its map's pixels are ranked highest first (0: the
    highest), ties in a seeded random order (the same for every map of an image)."""
    m, n, h, w = maps.shape
    ranks = np.empty((m, n, h * w), np.int32)
    for i in range(n):
        tiebreak = np.random.default_rng([seed, 0x71E, i]).permutation(h * w)
        for j in range(m):
            order = np.lexsort((tiebreak, -maps[j, i].ravel()))
            ranks[j, i, order] = np.arange(h * w)
    return ranks.reshape(m, n, h, w)


class _Plan:
    """The perturbed images one call scores, as items, and how their scores are read back.

    Items, in order: per image its photo and its baseline; per image each subset; per map and image the
    deletion curve's inner points; the same for insertion. Each item is an image with a set of pixels
    at the baseline: ``rank < count`` (deletion, photo, baseline), ``rank >= count`` (insertion) or a
    subset.
    """

    def __init__(self, x, x0, ranks, removed, steps: int):
        self.x, self.x0, self.ranks, self.removed = x, x0, ranks, removed
        m, n = ranks.shape[:2]
        pixels = x.shape[1] * x.shape[2]
        inner = np.arange(1, steps) * pixels // steps  # pixels removed or put back after each inner step
        self.shape = (m, n, len(removed), len(inner))
        images, maps, counts = np.arange(n), np.arange(m), np.arange(len(removed))
        blocks = [  # (image, kind, map, count or subset)
            self._grid(images, 0, [0], [0, pixels]),
            self._grid(images, 2, [0], counts),
            self._grid(images, 0, maps, inner, map_major=True),
            self._grid(images, 1, maps, inner, map_major=True),
        ]
        self.image, self.kind, self.map, self.count = (np.concatenate(c) for c in zip(*blocks))

    @staticmethod
    def _grid(images, kind, maps, counts, map_major=False):
        if map_major:
            m, i, c = (a.ravel() for a in np.meshgrid(maps, images, counts, indexing="ij"))
        else:
            i, m, c = (a.ravel() for a in np.meshgrid(images, maps, counts, indexing="ij"))
        return i, np.full(len(i), kind), m, c

    def inputs(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.x.shape[1:]), np.float32)
        for k, r in enumerate(rows):
            i, rank, count = self.image[r], self.ranks[self.map[r], self.image[r]], self.count[r]
            kind = self.kind[r]
            at_baseline = rank < count if kind == 0 else rank >= count if kind == 1 else self.removed[count]
            out[k] = np.where(at_baseline[..., None], self.x0[i], self.x[i])
        return out

    def split(self, values: np.ndarray):
        """Item scores -> photo (N, 1), baseline (N, 1), drops (N, S), deletion and insertion (M, N, K)."""
        m, n, s, k = self.shape
        ends, subset, deletion, insertion = np.split(values, np.cumsum([2 * n, n * s, m * n * k]))
        ends = ends.reshape(n, 2)
        photo, baseline = ends[:, :1], ends[:, 1:]
        return photo, baseline, photo - subset.reshape(n, s), deletion.reshape(m, n, k), insertion.reshape(m, n, k)
