"""Correlations of two arrays of numbers, read as flat vectors:

    pearson(a, b) = sum (a - mean a)(b - mean b) / sqrt(sum (a - mean a)^2 sum (b - mean b)^2)

and Spearman's rank correlation, the Pearson correlation of the values' ranks (1 for the smallest;
tied values share their average rank). Both are undefined (NaN) when either array is constant.
"""

from __future__ import annotations

import numpy as np


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation; NaN where either side does not vary."""
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties get their average rank); NaN if one array is constant."""
    return pearson(_ranks(np.ravel(a)), _ranks(np.ravel(b)))


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks ((first + last) / 2, exact in float64), from
    one sort: an unstable one (NumPy's vectorised quicksort, several times a stable sort's speed), since tied
    values get one rank whatever their order."""
    order = np.argsort(values)
    ordered = values[order]
    same = (ordered[1:] == ordered[:-1]) | (np.isnan(ordered[1:]) & np.isnan(ordered[:-1]))  # NaNs tie, as np.unique's
    starts = np.flatnonzero(np.r_[True, ~same])  # where each run of equal values begins
    ends = np.r_[starts[1:], len(values)]  # one past where it ends
    mean_rank = (starts + 1 + ends) / 2.0  # ranks starts + 1 .. ends
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks
