"""Faithfulness maths on scores whose answers are known: a score that reads one pixel region only,
deletion and insertion curves by hand, µ-Fidelity against numpy's correlation, the random floor."""

from __future__ import annotations

import numpy as np
import pytest

from generator.analysis.attribution import faithfulness as F

SIZE = 16
REGION = (slice(0, 4), slice(0, 4))  # 16 of the 256 pixels


def batched(f, batch: int = 5):
    """A :data:`F.Score` from a numpy ``f(images, selectors)``, called ``batch`` items at a time."""

    def score(inputs, selectors):
        parts = []
        for first in range(0, len(selectors), batch):
            rows = np.arange(first, min(first + batch, len(selectors)))
            parts.append(f(inputs(rows), selectors[rows]))
        return np.concatenate(parts)

    return score


def region_mean(images, unused):
    return images[:, REGION[0], REGION[1]].mean(axis=(1, 2, 3))


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """Two photos, each constant in the region (so a drop is exactly proportional to the pixels lost)."""
    x = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3)).astype(np.float32)
    x[:, REGION[0], REGION[1]] = np.array([200.0, 100.0])[:, None, None, None]
    return x


def region_maps(n: int) -> dict[str, np.ndarray]:
    inside = np.zeros((n, SIZE, SIZE), np.float32)
    inside[:, REGION[0], REGION[1]] = 1
    return {"region": inside, "complement": 1 - inside}


def run(photos, maps, steps=16, samples=64, score=region_mean, seed=0, batch=5):
    settings = F.FaithfulnessSettings(steps=steps, samples=samples, seed=seed)
    found = F.faithfulness(batched(score, batch), photos, np.zeros_like(photos), maps,
                           np.zeros(len(photos), np.int32), settings)
    return {s.method: s for s in found}


def test_a_map_of_the_region_the_score_reads_deletes_it_in_one_step(photos):
    found = run(photos, region_maps(2))
    region, complement = found["region"], found["complement"]
    # 16 steps of 16 pixels: the first step removes exactly the region.
    np.testing.assert_allclose(region.deletion, np.r_[1.0, np.zeros(16)][None].repeat(2, 0), atol=1e-6)
    np.testing.assert_allclose(region.deletion_auc, 0.5 / 16, atol=1e-6)
    np.testing.assert_allclose(region.insertion, np.r_[0.0, np.ones(16)][None].repeat(2, 0), atol=1e-6)
    np.testing.assert_allclose(region.insertion_auc, 1 - 0.5 / 16, atol=1e-6)
    # Its complement keeps the region to the last step.
    np.testing.assert_allclose(complement.deletion, np.r_[np.ones(16), 0.0][None].repeat(2, 0), atol=1e-6)
    np.testing.assert_allclose(complement.deletion_auc, 15.5 / 16, atol=1e-6)
    np.testing.assert_allclose(complement.insertion_auc, 0.5 / 16, atol=1e-6)
    # The drop is proportional to the region's pixels in the subset: the region's map correlates fully.
    np.testing.assert_allclose(region.mu_fidelity, 1.0, atol=1e-6)
    assert (complement.mu_fidelity < 0.2).all()


def test_the_random_floor_lies_between(photos):
    found = run(photos, region_maps(2), samples=128)
    floor = found[F.RANDOM]
    assert list(found) == ["region", "complement", F.RANDOM]
    # A random order removes about k/16 of the region after step k: the curve falls about linearly.
    assert np.all(np.abs(floor.deletion_auc - 0.5) < 0.1)
    assert np.all(np.abs(floor.insertion_auc - 0.5) < 0.1)
    assert np.all(np.abs(floor.mu_fidelity) < 0.3)
    assert np.all(floor.deletion_auc > found["region"].deletion_auc)
    assert np.all(floor.deletion_auc < found["complement"].deletion_auc)


def test_curves_start_at_the_photo_and_end_at_the_baseline(photos):
    def brightness(images, unused):
        return images.mean(axis=(1, 2, 3)) + 10.0

    found = run(photos, region_maps(2), steps=5, score=brightness)
    f_x = photos.mean(axis=(1, 2, 3)) + 10.0
    for s in found.values():
        assert s.deletion.shape == s.insertion.shape == (2, 6)
        np.testing.assert_allclose(s.deletion[:, 0], 1, rtol=1e-6)
        np.testing.assert_allclose(s.deletion[:, -1], 10.0 / f_x, rtol=1e-5)
        np.testing.assert_allclose(s.insertion[:, 0], 10.0 / f_x, rtol=1e-5)
        np.testing.assert_allclose(s.insertion[:, -1], 1, rtol=1e-6)


def test_a_curve_by_hand_and_its_area(photos):
    """Deletion of a map that ranks pixels in reading order: step k blacks out the first k*P/steps."""
    ramp = -np.arange(SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE)[None].repeat(2, 0)

    def weighted(images, unused):  # a score that weighs rows differently, so the curve is not linear
        weights = np.arange(1, SIZE + 1, dtype=np.float32)[None, :, None, None]
        return (images * weights).sum(axis=(1, 2, 3))

    steps = 4
    found = run(photos, {"ramp": ramp}, steps=steps, score=weighted)["ramp"]
    for i, x in enumerate(photos):
        expected = []
        for k in range(steps + 1):
            y = x.copy().reshape(-1, 3)
            y[: k * SIZE * SIZE // steps] = 0
            expected.append(weighted(y.reshape(1, SIZE, SIZE, 3), None)[0])
        expected = np.array(expected) / expected[0]
        np.testing.assert_allclose(found.deletion[i], expected, rtol=1e-5)
        np.testing.assert_allclose(found.deletion_auc[i], np.trapezoid(expected, dx=1 / steps), rtol=1e-5)


def test_mu_fidelity_is_pearson_of_the_map_sums_and_the_drops(photos):
    rng = np.random.default_rng(3)
    maps = {"noise": rng.random((2, SIZE, SIZE)).astype(np.float32)}
    settings = F.FaithfulnessSettings(samples=40, seed=2)

    def weighted(images, unused):
        return (images[..., 0] * maps["noise"][0]).sum(axis=(1, 2))

    found = run(photos[:1], {"noise": maps["noise"][:1]}, samples=40, score=weighted, seed=2)["noise"]
    removed = F.subsets(settings, (SIZE, SIZE))
    drops = [weighted(photos[:1], None)[0] - weighted(np.where(r[None, ..., None], 0, photos[:1]), None)[0]
             for r in removed]
    sums = [(maps["noise"][0] * r).sum() for r in removed]
    np.testing.assert_allclose(found.mu_fidelity[0], np.corrcoef(sums, drops)[0, 1], rtol=1e-6)


def test_subsets_are_grid_cells_at_the_fraction():
    settings = F.FaithfulnessSettings(samples=400, grid=4, fraction=0.25, seed=1)
    removed = F.subsets(settings, (8, 12))
    assert removed.shape == (400, 8, 12) and removed.dtype == bool
    cells = removed[:, ::2, ::3]
    np.testing.assert_array_equal(removed, cells.repeat(2, axis=1).repeat(3, axis=2))
    assert abs(cells.mean() - 0.25) < 0.02
    np.testing.assert_array_equal(removed, F.subsets(settings, (8, 12)))
    assert not np.array_equal(removed, F.subsets(F.FaithfulnessSettings(samples=400, grid=4, fraction=0.25, seed=2), (8, 12)))


def test_undefined_where_the_photo_scores_zero_or_nothing_varies(photos):
    dark = photos.copy()
    dark[1, REGION[0], REGION[1]] = 0  # image 1: the region is black, the score 0
    found = run(dark, {"flat": np.ones((2, SIZE, SIZE), np.float32)})
    flat = found["flat"]
    assert np.isfinite(flat.deletion[0]).all() and np.isnan(flat.deletion[1]).all()
    assert np.isfinite(flat.deletion_auc[0]) and np.isnan(flat.deletion_auc[1])
    assert np.isnan(flat.insertion_auc[1])
    # A constant map's sums follow the subsets' sizes, which vary; a photo whose drops are all 0 does not.
    assert np.isfinite(flat.mu_fidelity[0]) and np.isnan(flat.mu_fidelity[1])
    assert np.isnan(found[F.RANDOM].mu_fidelity[1])


def test_ties_are_ranked_in_a_seeded_random_order(photos):
    zeros = {"zeros": np.zeros((2, SIZE, SIZE), np.float32)}
    a, b = run(photos, zeros, seed=0)["zeros"], run(photos, zeros, seed=0)["zeros"]
    np.testing.assert_array_equal(a.deletion, b.deletion)
    # Not reading order (which would remove the region, the top-left corner, first).
    assert np.all(a.deletion[:, 1] > 0.5)
    assert not np.array_equal(a.deletion, run(photos, zeros, seed=1)["zeros"].deletion)


def test_scores_do_not_depend_on_the_batch(photos):
    maps = {"noise": np.random.default_rng(4).random((2, SIZE, SIZE)).astype(np.float32)}
    one, many = run(photos, maps, steps=6, samples=8, batch=1), run(photos, maps, steps=6, samples=8, batch=64)
    for name in one:
        for field in ("deletion", "insertion", "deletion_auc", "insertion_auc", "mu_fidelity"):
            np.testing.assert_array_equal(getattr(one[name], field), getattr(many[name], field))


def test_selectors_reach_the_score(photos):
    seen = []

    def channel(images, selectors):
        seen.append(selectors.copy())
        return images[np.arange(len(images)), :, :, selectors].mean(axis=(1, 2)) + 1

    settings = F.FaithfulnessSettings(steps=3, samples=4)
    F.faithfulness(batched(channel), photos, np.zeros_like(photos), region_maps(2), np.array([2, 1]), settings)
    seen = np.concatenate(seen)
    assert set(seen) == {1, 2}
    # per image: photo and baseline, 4 subsets, and 2 inner points for each of 3 maps, twice
    assert (seen == 2).sum() == (seen == 1).sum() == 2 + 4 + 3 * 2 * 2


def test_a_float32_score_gives_the_float64_scores(photos):
    """A network's float32 scores are summed and correlated in float64: the same values as float64 give the same bits."""
    def mean_over(images, dtype):
        return (images.mean(axis=(1, 2, 3), dtype=np.float64) / 7 + images[:, 0, 0, 0] ** 0.5).astype(np.float32).astype(dtype)

    wide = run(photos, region_maps(2), score=lambda images, unused: mean_over(images, np.float64))
    narrow = run(photos, region_maps(2), score=lambda images, unused: mean_over(images, np.float32))
    for name, scores in wide.items():
        for field in ("deletion", "insertion", "deletion_auc", "insertion_auc", "mu_fidelity"):
            np.testing.assert_array_equal(getattr(narrow[name], field), getattr(scores, field), err_msg=field)
