"""Faithfulness through the site's own networks: agreement with Xplique 2's Deletion, Insertion and
MuFidelity on the tiny classifier (same steps, baseline and subsets), and a model whose score reads
one known pixel region."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from scipy.stats import spearmanr  # noqa: E402

from generator.analysis import attribution as A  # noqa: E402
from generator.analysis.attribution import faithfulness as F  # noqa: E402
from generator.analysis.attribution.site_results import _as_result  # noqa: E402
from tiny import tiny_classifier  # noqa: E402

SIZE, STEPS = 16, 8  # 256 pixels, 32 a step: the same counts as Xplique's linspace
# The same float32 network on the same images, batched differently: scores agree to float32 rounding.
AGREE_RTOL = 1e-5


@pytest.fixture(scope="module")
def classifier():
    """The tiny classifier on 0..255 pixels (scaled to -1..1 first, or its softmax saturates)."""
    pixels = keras.Input((SIZE, SIZE, 3))
    return keras.Model(pixels, tiny_classifier()(keras.layers.Rescaling(1 / 127.5, -1)(pixels)))


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def found(classifier, photos):
    """The top class's saliency and Integrated Gradients maps, as the site keeps them."""
    settings = A.AttributionSettings(steps=8)
    maps = [A.attribute(classifier, photos, [A.ClassTarget()], m, settings)[0] for m in ("saliency", "integrated_gradients")]
    for m in maps:  # Xplique breaks ties in another order than ours: these maps have none
        assert all(len(np.unique(one)) == one.size for one in m.maps)
    return [_as_result(m, None) for m in maps]


def measured(model, photos, found, baseline: str, samples: int = 16):
    settings = A.AttributionSettings(baseline=baseline)
    return A.site_faithfulness(model, photos, A.ClassTarget(), found, settings,
                               F.FaithfulnessSettings(steps=STEPS, samples=samples))


def one_hot(classes, count=5) -> np.ndarray:
    return np.eye(count, dtype=np.float32)[list(classes)]


def blurred(x):
    return A.baselines(np.asarray(x, np.float32), "blurred")


@pytest.mark.parametrize("baseline", ["black", "blurred"])
def test_deletion_and_insertion_agree_with_xplique(xplique_metrics, classifier, photos, found, baseline):
    ours = measured(classifier, photos, found, baseline)
    x, targets = photos.astype(np.float32), one_hot(found[0].classes)
    mode = 0.0 if baseline == "black" else blurred
    for a in found:
        scores = ours.of(a.method)
        for i in range(len(photos)):
            for kind, curve, auc in (("Deletion", scores.deletion, scores.deletion_auc),
                                     ("Insertion", scores.insertion, scores.insertion_auc)):
                metric = getattr(xplique_metrics, kind)(classifier, x[i:i + 1], targets[i:i + 1],
                                                        baseline_mode=mode, steps=STEPS)
                theirs = np.array(list(metric.detailed_evaluate(a.maps[i:i + 1]).values()))
                f_x = a.scores[i]
                np.testing.assert_allclose(curve[i] * f_x, theirs, rtol=AGREE_RTOL, atol=1e-7)
                np.testing.assert_allclose(auc[i] * f_x, metric.evaluate(a.maps[i:i + 1]), rtol=AGREE_RTOL)
    # and the maps are not all alike: the check compares curves that differ
    assert not np.allclose(ours.methods[0].deletion, ours.methods[1].deletion)


def test_mu_fidelity_agrees_with_xplique_on_its_subsets(xplique_metrics, classifier, photos, found, monkeypatch):
    """Xplique 2.0.2 correlates the drops with the map's sums by Spearman's rank (Bhatt et al. say Pearson, as
    we do): ranked the same way, on Xplique's own random subsets, the two agree."""
    samples = 24
    x, targets = photos.astype(np.float32), one_hot(found[0].classes)
    monkeypatch.setattr(F, "pearson", lambda a, b: spearmanr(a, b)[0])
    for i in range(len(photos)):
        metric = xplique_metrics.MuFidelity(classifier, x[i:i + 1], targets[i:i + 1], batch_size=64,
                                            grid_size=9, subset_percent=0.2, baseline_mode=0.0, nb_samples=samples)
        seen = []
        perturb = metric._perturb_samples

        def recording(inputs, count, perturb=perturb, seen=seen):
            perturbed, kept = perturb(inputs, count)
            seen.append(np.asarray(kept)[0, ..., 0] == 0)
            return perturbed, kept

        metric._perturb_samples = recording
        theirs = [metric.evaluate(a.maps[i:i + 1]) for a in found]
        assert len(seen) == len(found) and seen[0].shape == (samples, SIZE, SIZE) and seen[0].any()
        for a, removed, expected in zip(found, seen, theirs):
            monkeypatch.setattr(F, "subsets", lambda settings, size, removed=removed: removed)
            ours = measured(classifier, photos[i:i + 1], [_one_image(a, i)], "black", samples).of(a.method)
            np.testing.assert_allclose(ours.mu_fidelity[0], expected, rtol=1e-6, atol=1e-6)


def _one_image(a, i):
    import dataclasses

    return dataclasses.replace(a, maps=a.maps[i:i + 1], scores=a.scores[i:i + 1], classes=a.classes[i:i + 1])


def region_model() -> keras.Model:
    """A map model whose output is the top-left 4x4 pixels: its output mean reads that region only."""
    image = keras.Input((SIZE, SIZE, 3))
    return keras.Model(image, keras.layers.Cropping2D(((0, SIZE - 4), (0, SIZE - 4)))(image))


def test_the_saliency_of_a_region_model_deletes_the_region_first(photos):
    model = region_model()
    x = photos.copy()
    x[:, :4, :4] = 120  # constant there: a drop is proportional to the region's pixels removed
    (saliency,) = A.attribute(model, x, [A.OutputTarget()], "saliency")
    region = _as_result(saliency, None)
    np.testing.assert_allclose(region.maps[:, :4, :4], 1 / 48, rtol=1e-6)
    assert not region.maps[:, 4:].any() and not region.maps[:, :, 4:].any()
    complement = _as_result(A.AttributionMaps("complement", A.OutputTarget(), 1 - region.maps * 48, saliency.scores,
                                              saliency.settings), None)
    settings = A.AttributionSettings()
    found = A.site_faithfulness(model, x, A.OutputTarget(), [region, complement], settings,
                                F.FaithfulnessSettings(steps=16, samples=64))
    good, poor, floor = found.of("saliency"), found.of("complement"), found.random
    assert found.target == "output mean" and found.baseline == "black" and found.steps == 16
    np.testing.assert_allclose(good.deletion_auc, 0.5 / 16, atol=1e-6)  # gone after the first step
    np.testing.assert_allclose(poor.deletion_auc, 15.5 / 16, atol=1e-6)  # there until the last
    np.testing.assert_allclose(good.insertion_auc, 15.5 / 16, atol=1e-6)
    np.testing.assert_allclose(good.mu_fidelity, 1, atol=1e-5)
    assert np.all(poor.mu_fidelity < 0.2)
    assert np.all((good.deletion_auc < floor.deletion_auc) & (floor.deletion_auc < poor.deletion_auc))
