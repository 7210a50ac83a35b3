"""The activation distribution kept during the dataset pass: histograms, density, quantile bands."""

import numpy as np
import pytest

from generator.analysis import distribution as d


def synthetic(n=1000, channels=3, seed=0):
    """(n, C) maxima: lognormal, a quarter of them exactly 0, some negative; means a third of them."""
    rng = np.random.default_rng(seed)
    peak = rng.lognormal(0.0, 2.0, (n, channels)).astype(np.float32)
    peak[rng.random((n, channels)) < 0.25] = 0.0
    peak[rng.random((n, channels)) < 0.05] *= -1
    return peak, peak / 3, np.minimum(peak, 0) - 1, rng.integers(0, 49, (n, channels))


def tally(peak, mean, low, position, batch=16, seed=7, first=0):
    t = d.Tally.empty(peak.shape[1], seed)
    for s in range(0, len(peak), batch):
        t.add(first + s, peak[s:s + batch], mean[s:s + batch], low[s:s + batch], position[s:s + batch])
    return t


def test_histogram_density_and_sums_equal_numpys():
    peak, mean, low, position = synthetic()
    t = tally(peak, mean, low, position)
    for c in range(peak.shape[1]):
        assert np.array_equal(t.max_hist[c], np.histogram(peak[:, c], d.EDGES)[0])
        assert np.array_equal(t.mean_hist[c], np.histogram(mean[:, c], d.EDGES)[0])
        u = t.unit(c, 7)
        assert u.density == pytest.approx(np.mean(peak[:, c] > 0))
        assert u.mean_max == pytest.approx(peak[:, c].mean(), rel=1e-6)
        assert u.max == peak[:, c].max()
        assert not u.dead and not u.always_on
        for q, value in u.quantiles:  # the upper edge of the bin holding the quantile: at most one bin above
            true = np.quantile(peak[:, c], q, method="inverted_cdf")
            assert true <= value <= max(true * 10 ** (1 / d.PER_DECADE), 0) + 1e-12


def test_dead_and_always_on_units_are_flagged():
    n = 40
    peak = np.stack([np.zeros(n), np.full(n, 2.0)], axis=1).astype(np.float32)
    low = np.stack([np.zeros(n), np.full(n, 0.5)], axis=1).astype(np.float32)
    t = tally(peak, peak, low, np.zeros((n, 2), np.int64))
    dead, on = t.unit(0, 1), t.unit(1, 1)
    assert dead.dead and not dead.always_on and dead.density == 0
    assert on.always_on and not on.dead and on.density == 1


def test_band_samples_fall_in_their_band_and_the_band_holds_its_ranks():
    peak, mean, low, position = synthetic(n=2000)
    t = tally(peak, mean, low, position)
    for c in range(peak.shape[1]):
        u = t.unit(c, 7)
        assert [b.name for b in u.bands] == ["top 1%", "10-20%", "40-60%", "just above 0"]
        ranked = np.sort(peak[:, c])[::-1]
        for band, (name, top, bottom) in zip(u.bands, [*d.BANDS, (d.JUST_ABOVE_ZERO, None, None)]):
            assert len(band.examples) == d.SAMPLES
            values = peak[:, c].astype(np.float64)  # float32 would round the edge 5e-324 down to 0
            inside = (values >= band.low) & (values < band.high)
            assert band.top_to - band.top_from == pytest.approx(inside.mean())
            for x in band.examples:
                assert band.low <= x.score < band.high and x.score > 0 and peak[x.image, c] == x.score
                assert (x.y, x.x) == divmod(int(position[x.image, c]), 7)
            if top is not None:  # the band covers every rank it was asked for
                first, last = int(np.floor(top * len(ranked))), int(np.ceil(bottom * len(ranked))) - 1
                assert band.low <= ranked[last] and ranked[first] < band.high
        assert u.bands[-1].low > 0  # just above 0: only images where it fires


def test_band_samples_are_reproducible_with_the_seed_and_independent_of_batches_and_parts():
    peak, mean, low, position = synthetic(n=600)
    whole = tally(peak, mean, low, position, batch=16)
    parts = tally(peak[:208], mean[:208], low[:208], position[:208], batch=5).merge(
        tally(peak[208:], mean[208:], low[208:], position[208:], batch=32, first=208))
    other_seed = tally(peak, mean, low, position, seed=8)
    for c in range(peak.shape[1]):
        assert whole.unit(c, 7) .bands == parts.unit(c, 7).bands
        assert np.array_equal(whole.max_hist, parts.max_hist)
    assert [b.examples for b in whole.unit(0, 7).bands] != [b.examples for b in other_seed.unit(0, 7).bands]


def test_the_sample_of_a_bin_is_the_bottom_k_of_its_keys():
    peak = np.full((50, 1), 3.0, np.float32)
    t = tally(peak, peak, peak, np.zeros((50, 1), np.int64))
    keys = d.sample_keys(7, np.arange(50), 1)[:, 0]
    (band,) = {b.name: b for b in t.unit(0, 1).bands}["top 1%"],
    assert sorted(x.image for x in band.examples) == sorted(np.argsort(keys)[:d.SAMPLES].tolist())
