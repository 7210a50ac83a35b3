"""How often and how strongly each unit fires over an image set, kept while the images stream by.

During the dataset pass (:mod:`generator.analysis.examples`) every image gives each channel of a
layer four numbers: its maximum over positions (the *score*), its mean, its minimum and where the
maximum sits. A :class:`Tally` keeps, per channel and in memory that does not grow with the number
of images:

- a histogram of the per-image maxima and one of the means, in the fixed bins :data:`EDGES`
  (negative, exactly 0, below 1e-4, then 16 log-spaced bins a decade up to 1e4, and above);
- how many images it fires on (maximum > 0), the sums of the maxima and means, the largest
  maximum and the smallest minimum;
- for every histogram bin of the maxima, a bottom-k sample of its images: the ``k`` images with the
  smallest pseudo-random keys, a key being a hash of (seed, image index, channel). That is
  reservoir sampling whose result depends on the seed and the images alone, not on the batches or
  on how the pass was cut into parts, so parts merge (:meth:`Tally.merge`) into the whole pass's
  tally, to the bit.

The *quantile bands* (:data:`BANDS`: top 1%, 10-20%, 40-60%, just above 0) are cut after the pass
from the finished histogram, snapped outwards to whole bins: a band is the run of bins that holds
its ranks, so its samples (the ``k`` smallest keys among those bins' samples) are a uniform sample
of exactly the images in those bins. No second pass and no quantile sketch: the bin edges are the
band edges, and the band says which share of the images it really covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.results import BandExample, QuantileBand, UnitDistribution

PER_DECADE = 16
EDGES = np.concatenate([[-np.inf, 0.0, np.nextafter(0.0, 1.0)], np.logspace(-4, 4, 8 * PER_DECADE + 1), [np.inf]])
BINS = len(EDGES) - 1
ZERO_BIN = 1  # exactly 0: [0, smallest positive)
SAMPLES = 4  # images kept a bin, and shown a band
QUANTILES = (0.5, 0.9, 0.99)
# name, and the band as a share of the images from the top: (0.0, 0.01) is the top 1%.
BANDS = (("top 1%", 0.0, 0.01), ("10-20%", 0.10, 0.20), ("40-60%", 0.40, 0.60))
JUST_ABOVE_ZERO = "just above 0"  # the weakest 10% of the images it fires on
JUST_ABOVE_ZERO_SHARE = 0.10


def distribution_key() -> dict:
    """What the tallies depend on besides the images and the seed: the bins, samples and bands."""
    return {"edges": EDGES.tolist(), "samples": SAMPLES, "bands": BANDS, "weakest": JUST_ABOVE_ZERO_SHARE}


def bin_of(values: np.ndarray) -> np.ndarray:
    """The bin of each value, as ``np.histogram(values, EDGES)`` counts it (the last bin closed)."""
    return np.clip(np.searchsorted(EDGES, values, side="right") - 1, 0, BINS - 1)


def sample_keys(seed: int, images: np.ndarray, channels: int) -> np.ndarray:
    """(n, channels) keys in [0, 1): splitmix64 of (seed, image, channel), the same in every pass."""
    with np.errstate(over="ignore"):
        x = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
             + np.asarray(images, np.uint64)[:, None] * np.uint64(0xD1B54A32D192ED03)
             + np.arange(channels, dtype=np.uint64)[None, :] * np.uint64(0x8CB92BA72F3D8DD7))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2 ** 53)


@dataclass
class Tally:
    """The running statistics of one layer's ``channels`` channels (see the module's docstring)."""

    seed: int
    count: int
    max_hist: np.ndarray  # (C, BINS) int64
    mean_hist: np.ndarray  # (C, BINS) int64
    fired: np.ndarray  # (C,) int64
    max_sum: np.ndarray  # (C,) float64
    mean_sum: np.ndarray  # (C,) float64
    top: np.ndarray  # (C,) the largest maximum
    low: np.ndarray  # (C,) the smallest minimum over positions
    key: np.ndarray  # (C, BINS, SAMPLES) float64, inf where empty
    image: np.ndarray  # (C, BINS, SAMPLES) int64
    value: np.ndarray  # (C, BINS, SAMPLES) float32, the image's maximum
    position: np.ndarray  # (C, BINS, SAMPLES) int64, the maximum's flat index in the grid

    @classmethod
    def empty(cls, channels: int, seed: int) -> Tally:
        shape = (channels, BINS, SAMPLES)
        return cls(seed, 0, np.zeros((channels, BINS), np.int64), np.zeros((channels, BINS), np.int64),
                   np.zeros(channels, np.int64), np.zeros(channels), np.zeros(channels),
                   np.full(channels, -np.inf), np.full(channels, np.inf), np.full(shape, np.inf),
                   np.zeros(shape, np.int64), np.zeros(shape, np.float32), np.zeros(shape, np.int64))

    def add(self, first: int, peak: np.ndarray, mean: np.ndarray, low: np.ndarray, position: np.ndarray) -> None:
        """Count a batch: (B, C) maxima, means, minima and peak positions of images ``first``, ``first + 1``, ..."""
        n, channels = peak.shape
        rows = np.arange(channels)
        bins = bin_of(peak)
        self.max_hist += _counts(bins, channels)
        self.mean_hist += _counts(bin_of(mean), channels)
        self.fired += (peak > 0).sum(axis=0)
        self.max_sum += peak.sum(axis=0, dtype=np.float64)
        self.mean_sum += mean.sum(axis=0, dtype=np.float64)
        self.top = np.maximum(self.top, peak.max(axis=0))
        self.low = np.minimum(self.low, low.min(axis=0))
        self.count += n
        keys = sample_keys(self.seed, np.arange(first, first + n), channels)
        for j in range(n):  # one image at a time, every channel at once: each channel's slot is its own
            b = bins[j]
            slot = np.argmax(self.key[rows, b], axis=1)  # the largest key of the bin's sample
            better = keys[j] < self.key[rows, b, slot]
            r, b, s = rows[better], b[better], slot[better]
            self.key[r, b, s] = keys[j, better]
            self.image[r, b, s] = first + j
            self.value[r, b, s] = peak[j, better]
            self.position[r, b, s] = position[j, better]

    def merge(self, other: Tally) -> Tally:
        """The tally of both parts' images (parts of one pass with the same seed)."""
        key = np.concatenate([self.key, other.key], axis=2)
        keep = np.argsort(key, axis=2, kind="stable")[..., :SAMPLES]

        def pick(a, b):
            return np.take_along_axis(np.concatenate([a, b], axis=2), keep, axis=2)

        return Tally(self.seed, self.count + other.count, self.max_hist + other.max_hist,
                     self.mean_hist + other.mean_hist, self.fired + other.fired, self.max_sum + other.max_sum,
                     self.mean_sum + other.mean_sum, np.maximum(self.top, other.top), np.minimum(self.low, other.low),
                     pick(self.key, other.key), pick(self.image, other.image), pick(self.value, other.value),
                     pick(self.position, other.position))

    def unit(self, channel: int, width: int) -> UnitDistribution:
        """Channel ``channel``'s distribution, quantiles and band samples (``width``: the grid's, for positions)."""
        n = self.count
        hist = self.max_hist[channel]
        return UnitDistribution(
            count=n, edges=EDGES, max_counts=hist, mean_counts=self.mean_hist[channel],
            density=float(self.fired[channel] / n) if n else 0.0,
            mean_max=float(self.max_sum[channel] / n) if n else 0.0,
            mean_mean=float(self.mean_sum[channel] / n) if n else 0.0,
            max=float(self.top[channel]) if n else 0.0,
            always_on=bool(n and self.low[channel] > 0),
            quantiles=tuple((q, quantile(hist, q, float(self.top[channel]))) for q in QUANTILES) if n else (),
            bands=tuple(b for b in (self._band(channel, name, *cut, width) for name, cut in _band_cuts(hist))
                        if b is not None),
        )

    def _band(self, channel: int, name: str, first: int, last: int, width: int) -> QuantileBand | None:
        """The band of bins ``first..last`` (inclusive) and the ``SAMPLES`` images of smallest key in it."""
        hist = self.max_hist[channel]
        if first > last or hist[first:last + 1].sum() == 0:
            return None
        key = self.key[channel, first:last + 1].ravel()
        chosen = np.argsort(key, kind="stable")[:SAMPLES]
        chosen = chosen[np.isfinite(key[chosen])]
        image, value, position = (a[channel, first:last + 1].ravel()[chosen]
                                  for a in (self.image, self.value, self.position))
        order = np.lexsort((image, -value))
        examples = tuple(BandExample(int(image[i]), float(value[i]), int(position[i]) // width,
                                     int(position[i]) % width) for i in order)
        above = hist[last + 1:].sum()
        return QuantileBand(name, float(EDGES[first]), float(EDGES[last + 1]), float(above / self.count),
                            float((above + hist[first:last + 1].sum()) / self.count), examples)


def _counts(bins: np.ndarray, channels: int) -> np.ndarray:
    """(C, BINS) counts of (B, C) bin indices."""
    flat = bins + np.arange(channels)[None, :] * BINS
    return np.bincount(flat.ravel(), minlength=channels * BINS).reshape(channels, BINS)


def _band_cuts(hist: np.ndarray) -> list[tuple[str, tuple[int, int]]]:
    """(name, (first bin, last bin)) of each band of :data:`BANDS` and of "just above 0": the bins that
    hold its ranks, counted from the top (rank 0 the strongest image)."""
    n = int(hist.sum())
    if n == 0:
        return []
    above = np.concatenate([np.cumsum(hist[::-1])[::-1][1:], [0]])  # images in higher bins than each bin

    def bin_of_rank(rank: int) -> int:  # the bin holding the rank-th strongest image
        return int(np.nonzero(above <= rank)[0][0])

    cuts = []
    for name, top, bottom in BANDS:
        first_rank, last_rank = int(np.floor(top * n)), max(int(np.ceil(bottom * n)) - 1, int(np.floor(top * n)))
        cuts.append((name, (bin_of_rank(min(last_rank, n - 1)), bin_of_rank(first_rank))))
    positive = int(hist[ZERO_BIN + 1:].sum())
    if positive:
        weakest = max(1, int(np.ceil(JUST_ABOVE_ZERO_SHARE * positive)))  # of ranks 0 .. positive - 1, which fire
        cuts.append((JUST_ABOVE_ZERO, (ZERO_BIN + 1, bin_of_rank(positive - weakest))))
    return cuts


def quantile(hist: np.ndarray, q: float, top: float) -> float:
    """The ``q`` quantile of the counted values, read from the histogram: the upper edge of the bin holding
    it (at most one bin, 15%, above the true value), and never above the largest value ``top``."""
    cumulative = np.cumsum(hist)
    rank = q * cumulative[-1]
    b = int(np.searchsorted(cumulative, rank, side="left"))
    return float(min(EDGES[b + 1], top))
