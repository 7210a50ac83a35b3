"""Attribution maps checked against tf-keras-vis (Grad-CAM, Grad-CAM++, saliency), Xplique (Occlusion, skipped
without it), completeness (Integrated Gradients), a model that reads one pixel region (Occlusion), scipy
(Spearman), and for determinism, locality and clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from generator.seeding import seed_weights
from generator.analysis import attribution as A  # noqa: E402
from generator.analysis.attribution.methods import occlusion  # noqa: E402
from generator.config import ModelSection  # noqa: E402
from generator.errors import GeneratorError  # noqa: E402
from generator.models import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Grad-CAM and saliency against tf-keras-vis: the same float32 computation in another order.
PEER_RTOL = 1e-4  # of the largest value of the map
COMPLETENESS = 0.02  # |sum of IG map - (f(x) - f(x0))| <= 2% of |f(x) - f(x0)|


@pytest.fixture(scope="module")
def tiny(tiny_model_file):
    """The tiny classifier as the build loads it: 'tf' preprocessing (0..255 -> -1..1)."""
    return load_model(ModelSection(name=str(tiny_model_file), preprocess="tf"), tiny_model_file.parent)


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def hed():
    return load_model(ModelSection(name="vgg16-hed", weights="bundled"), ROOT)


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    """One real photo at 64 px, enough for the default model to say something and stay fast."""
    from generator.images import read_square

    return read_square(ROOT / "images" / "chelsea.jpg", 64)[None]


def tf_keras_vis_gradcam(model, images, score, layer) -> np.ndarray:
    from tf_keras_vis.gradcam import Gradcam

    return Gradcam(model)(score, images, penultimate_layer=layer, normalize_cam=False)


def peer_close(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    scale = np.abs(theirs).max()
    assert scale > 0
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=PEER_RTOL * scale)


# --- checked against tf-keras-vis --------------------------------------------------------------------


@pytest.mark.parametrize("layer", [None, "c2"])
def test_gradcam_equals_tf_keras_vis_on_classes(tiny, photos, layer):
    from tf_keras_vis.utils.scores import CategoricalScore

    (ours,) = A.grad_cam(tiny, photos, [A.ClassTarget(rank=1)], A.AttributionSettings(layer=layer))
    assert ours.layer == (layer or "c3")
    inputs = keras.ops.convert_to_numpy(tiny.preprocess(photos.astype("float32")))
    theirs = tf_keras_vis_gradcam(tiny.network, inputs, CategoricalScore(list(ours.classes)), ours.layer)
    peer_close(ours.maps, theirs)


def test_gradcam_of_a_unit_equals_tf_keras_vis(tiny, photos):
    (ours,) = A.grad_cam(tiny, photos, [A.UnitTarget("c3", 5)])
    assert ours.layer == "c2"  # the last conv layer before the unit's own
    cut = keras.Model(tiny.features.input, tiny.features.get_layer("c3").output)
    inputs = keras.ops.convert_to_numpy(tiny.preprocess(photos.astype("float32")))
    theirs = tf_keras_vis_gradcam(cut, inputs, lambda out: keras.ops.mean(out[..., 5], axis=(1, 2)), "c2")
    peer_close(ours.maps, theirs)
    np.testing.assert_allclose(ours.scores, np.mean(keras.ops.convert_to_numpy(cut(inputs))[..., 5], axis=(1, 2)), rtol=1e-5)


def test_gradcam_equals_tf_keras_vis_on_the_default_model(hed, cat):
    (ours,) = A.grad_cam(hed, cat, [A.OutputTarget()])
    assert ours.layer == "block5_conv3"
    inputs = keras.ops.convert_to_numpy(hed.preprocess(cat.astype("float32")))
    theirs = tf_keras_vis_gradcam(hed.network, inputs, lambda out: keras.ops.mean(out, axis=(1, 2, 3)), "block5_conv3")
    peer_close(ours.maps, theirs)
    np.testing.assert_allclose(ours.scores, hed.predict(cat.astype("float32")).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_the_maps_and_what_the_rest_reads_besides_them_come_from_one_pass():
    """HED-like: a side output from c1 joins the output after c2; Grad-CAM at c2 reads the side output from
    the same pass as c2's maps (nothing before c2 runs twice)."""
    from generator.analysis import graph

    x = keras.Input((None, None, 3))
    c1 = keras.layers.Conv2D(4, 3, padding="same", name="c1")(x)
    side = keras.layers.Conv2D(1, 1, name="side")(c1)
    c2 = keras.layers.Conv2D(4, 3, padding="same", name="c2")(c1)
    out = keras.layers.Add(name="join")([keras.layers.Conv2D(1, 1, name="top")(c2), side])
    model = keras.Model(x, out)
    assert graph.crossing(model, c2) == [side]
    assert graph.crossing(model, c1) == []  # everything after c1 is fed by it
    assert graph.crossing(model, side) == [model.get_layer("top").output]
    chain = keras.Model(x, c2)
    assert graph.crossing(chain, c1) == []


def test_gradcams_upsampling_is_scipys_bilinear_zoom_with_corners_aligned():
    from scipy import ndimage

    from generator.analysis.attribution.methods.gradcam import upsample

    cams = np.random.default_rng(3).random((2, 5, 7)).astype(np.float32)
    up = upsample(cams, (9, 13))
    assert up.shape == (2, 9, 13) and up.dtype == np.float32
    for cam, ours in zip(cams, up):
        np.testing.assert_allclose(ours, ndimage.zoom(cam.astype(np.float64), (9 / 5, 13 / 7), order=1), rtol=1e-6)
    np.testing.assert_allclose(up[:, ::2, ::2], cams, rtol=1e-7)  # every source point lands on an output pixel


def test_saliency_equals_tf_keras_vis(tiny, photos):
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    (ours,) = A.saliency(tiny, photos, [A.ClassTarget(rank=2)])
    pixels = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1), tiny.network])
    theirs = Saliency(pixels)(CategoricalScore(list(ours.classes)), photos.astype("float32"), normalize_map=False)
    peer_close(ours.maps, theirs)


def test_ranked_classes_are_the_models(tiny, photos):
    first, second = A.saliency(tiny, photos, [A.ClassTarget(rank=1), A.ClassTarget(rank=2)])
    order = np.argsort(-tiny.predict(photos.astype("float32")), axis=1)
    assert first.classes == tuple(order[:, 0]) and second.classes == tuple(order[:, 1])
    fixed = A.saliency(tiny, photos, [A.ClassTarget(index=int(order[0, 1]))])[0]
    np.testing.assert_allclose(fixed.maps[0], second.maps[0], rtol=1e-5)


# --- Integrated Gradients' completeness ------------------------------------------------------------


@pytest.mark.parametrize("baseline", A.BASELINES)
def test_integrated_gradients_completeness_on_tiny(tiny, photos, baseline):
    settings = A.AttributionSettings(baseline=baseline)
    for maps in A.integrated_gradients(tiny, photos, [A.ClassTarget(rank=1), A.UnitTarget("c3", 5)], settings):
        difference = maps.scores - maps.baseline_scores
        assert np.all(np.abs(difference) > 1e-3)  # something to attribute
        np.testing.assert_allclose(maps.maps.sum(axis=(1, 2)), difference, rtol=COMPLETENESS)


@pytest.mark.parametrize("baseline", A.BASELINES)
def test_integrated_gradients_completeness_on_the_default_model(hed, cat, baseline):
    settings = A.AttributionSettings(baseline=baseline)
    (maps,) = A.integrated_gradients(hed, cat, [A.OutputTarget()], settings)
    difference = maps.scores - maps.baseline_scores
    assert np.all(np.abs(difference) > 1e-3)
    np.testing.assert_allclose(maps.maps.sum(axis=(1, 2)), difference, rtol=COMPLETENESS)


def test_bfloat16_keeps_completeness_on_the_default_model(hed, cat):
    settings = A.AttributionSettings(precision="bfloat16")
    (maps,) = A.integrated_gradients(hed, cat, [A.OutputTarget()], settings)
    np.testing.assert_allclose(maps.maps.sum(axis=(1, 2)), maps.scores - maps.baseline_scores, rtol=COMPLETENESS)


@pytest.mark.parametrize("method", A.METHODS)
def test_bfloat16_maps_follow_float32(tiny, photos, method):
    settings = A.AttributionSettings(samples=4, steps=8)
    targets = [A.UnitTarget("c3", 5)]
    (full,) = A.attribute(tiny, photos, targets, method, settings)
    (half,) = A.attribute(tiny, photos, targets, method, A.AttributionSettings(samples=4, steps=8, precision="bfloat16"))
    assert min(A.spearman(a, b) for a, b in zip(full.maps, half.maps)) > 0.9


def test_blurred_baseline_keeps_the_mean_and_smooths():
    x = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    blurred = A.gaussian_blur(x, 2.0)
    assert abs(blurred.mean() - x.mean()) < 1.0
    assert blurred.std() < x.std() / 3


@pytest.mark.parametrize("sigma", [0.3, 1.6, 2.5])
def test_blur_equals_scipy_with_a_radius_of_three_sigmas(sigma):
    """scipy's separable Gaussian, edges mirrored (numpy's ``reflect``), radius max(1, floor(3 sigma))."""
    ndimage = pytest.importorskip("scipy.ndimage")
    x = np.random.default_rng(2).uniform(0, 255, (2, 17, 12, 3)).astype("float32")
    radius = max(1, int(3 * sigma))
    expected = x.astype(np.float64)
    for axis in (1, 2):
        expected = ndimage.gaussian_filter1d(expected, sigma, axis=axis, mode="mirror", radius=radius)
    blurred = A.gaussian_blur(x, sigma)
    assert blurred.dtype == np.float32
    np.testing.assert_allclose(blurred, expected, rtol=0, atol=1e-3)


# --- determinism, locality, batches ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["smoothgrad", "integrated_gradients"])
def test_deterministic_for_a_seed(tiny, photos, method):
    settings = A.AttributionSettings(samples=4, steps=4, baseline="blurred", seed=3)
    first = A.attribute(tiny, photos, [A.ClassTarget()], method, settings)[0].maps
    again = A.attribute(tiny, photos, [A.ClassTarget()], method, settings)[0].maps
    np.testing.assert_array_equal(first, again)


def test_smoothgrad_noise_follows_the_seed(tiny, photos):
    one, other = (
        A.smooth_grad(tiny, photos, [A.ClassTarget()], A.AttributionSettings(samples=4, seed=seed))[0].maps
        for seed in (0, 1)
    )
    assert not np.allclose(one, other)


def test_one_pixel_changes_the_saliency_at_that_pixel(tiny, photos):
    changed = photos.copy()
    changed[0, 10, 13] = 255 - changed[0, 10, 13]
    before, after = (A.saliency(tiny, x, [A.UnitTarget("c3", 5)])[0].maps for x in (photos, changed))
    assert abs(after[0, 10, 13] - before[0, 10, 13]) > 1e-3 * before[0].max()
    np.testing.assert_array_equal(after[1:], before[1:])  # the other images are untouched


@pytest.mark.parametrize("method", A.METHODS)
def test_maps_do_not_depend_on_the_batch(tiny, photos, method):
    targets = [A.ClassTarget(), A.UnitTarget("c3", 5), A.UnitTarget("c2", 1)]
    settings = A.AttributionSettings(samples=3, steps=3)
    whole = A.attribute(tiny, photos, targets, method, A.AttributionSettings(samples=3, steps=3, batch_size=16))
    ones = A.attribute(tiny, photos, targets, method, A.AttributionSettings(samples=3, steps=3, batch_size=1))
    alone = A.attribute(tiny, photos[1:2], targets[1:2], method, settings)[0]
    for a, b in zip(whole, ones):
        assert a.target == b.target and a.maps.shape == (3, 24, 24)
        np.testing.assert_allclose(a.maps, b.maps, rtol=1e-4, atol=1e-6 * _rounding_scale(a))
    np.testing.assert_allclose(alone.maps[0], whole[1].maps[1], rtol=1e-4, atol=1e-6 * _rounding_scale(alone))


def _rounding_scale(attribution) -> float:
    """What a map's float32 rounding is relative to: the map's largest value, or for occlusion, whose maps are
    differences of two scores, the largest score (a batch of another size may round a score differently in its last
    bit: oneDNN's AVX2 convolutions do)."""
    values = attribution.scores if attribution.method == "occlusion" else attribution.maps
    return float(np.abs(values).max())


def test_any_batch_takes_another_image_size_with_a_trace_of_its_own():
    from generator.analysis.backend import AnyBatch

    step = AnyBatch(lambda fixed, x: keras.ops.sum(x, axis=(1, 2, 3)) * fixed[0])
    scale = (keras.ops.convert_to_tensor(np.float32(2.0)),)
    for n, side in ((2, 4), (3, 4), (2, 6)):  # another batch, then another image size on the same function
        x = np.arange(n * side * side * 3, dtype=np.float32).reshape(n, side, side, 3)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(step(scale, keras.ops.convert_to_tensor(x))),
                                   2.0 * x.sum(axis=(1, 2, 3)), rtol=1e-6)
    if keras.backend.backend() == "tensorflow":
        assert step.traces() == 2  # one for 4 px (both batches), one for 6 px


def test_each_compiled_function_of_a_network_is_traced_once_for_every_batch_size(tiny, photos):
    """The images' batch, a last shorter one, a set of other size (a unit's dataset examples), the sanity check's
    copy: one trace a function (a retrace costs a build a fifth of a second)."""
    from generator.analysis.attribution import scorer as S

    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow counts its traces")
    targets = [A.ClassTarget(), A.UnitTarget("c3", 5)]
    for method in ("gradcam", "saliency", "integrated_gradients"):
        A.attribute(tiny, photos, targets, method, A.AttributionSettings(steps=5, batch_size=2))
        A.attribute(tiny, photos[:1], targets, method, A.AttributionSettings(steps=5, batch_size=2))
        A.sanity_check(tiny, photos[1:], targets[1], [method], A.AttributionSettings(steps=5, batch_size=2))
    parts = S.Parts.of(tiny)
    compiled = {(key, name): step for key in [("classes",), ("unit", "c3")]
                for name, step in S.scorer_for(parts, key, "float32").compiled.items()}
    assert {name[0] for _, name in compiled} >= {"cam", "gradient", "score", "predict"}
    assert {k: step.traces() for k, step in compiled.items()} == {k: 1 for k in compiled}


def test_output_map_target_on_a_plain_keras_model():
    """A keras.Model taking 0..255 RGB works as it is; the output map's mean is its target."""
    seed_weights(0)
    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(x)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", name="edges")(x)
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    cam, ig = (A.attribute(model, images, [A.OutputTarget()], m)[0] for m in ("gradcam", "integrated_gradients"))
    assert cam.layer == "a" and cam.maps.shape == (2, 16, 16)
    np.testing.assert_allclose(ig.maps.sum(axis=(1, 2)), ig.scores - ig.baseline_scores, rtol=COMPLETENESS)


# --- the sanity check ----------------------------------------------------------------------------------


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 200).astype(float), rng.normal(size=200)
    assert A.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert A.spearman(a, a) == pytest.approx(1.0)
    assert A.spearman([1.0, 2.0], [5.0, 3.0]) == pytest.approx(-1.0)  # two values: the smallest correlation there is
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # undefined, said without dividing 0 by 0
        assert np.isnan(A.spearman(np.ones(5), b[:5]))


def test_ranks_from_one_sort_are_scipys_average_ranks_exactly():
    stats = pytest.importorskip("scipy.stats")
    from generator.analysis.correlation import _ranks

    rng = np.random.default_rng(1)
    values = np.concatenate([[-1.0] * 3, rng.integers(0, 7, 300), [9.0] * 4]).astype(np.float32)  # runs at both ends
    np.testing.assert_array_equal(_ranks(values), stats.rankdata(values, method="average"))
    np.testing.assert_array_equal(_ranks(np.array([2.0, np.nan, 1.0, np.nan])), [2.0, 3.5, 1.0, 3.5])  # NaNs tie, last


def test_sanity_check_is_one_for_the_same_model_and_lower_after_randomising(tiny, photos):
    settings = A.AttributionSettings(samples=4, steps=8)
    same = A.sanity_check(tiny, photos, A.ClassTarget(), settings=settings, layers=0)
    assert [c.method for c in same] == list(A.METHODS) and all(c.randomised == () for c in same)
    for check in same:
        np.testing.assert_allclose(check.spearman, 1.0, atol=1e-6)
    randomised = A.sanity_check(tiny, photos, A.ClassTarget(), settings=settings)
    for check in randomised:
        assert check.randomised == ("head", "c3", "c2", "c1")
        assert np.nanmean(check.spearman) < 0.9, check


def test_the_methods_checked_on_a_network_share_its_randomised_copy(tiny, photos):
    from generator.analysis.attribution import sanity

    target = A.UnitTarget("c3", 5)
    (alone,) = A.sanity_check(tiny, photos, target, ["saliency"], seed=3)
    sanity._COPIES.clear()
    together = A.sanity_check(tiny, photos, target, ["gradcam", "saliency"], seed=3)
    assert len(sanity._COPIES) == 1  # one copy for both methods
    np.testing.assert_array_equal(together[1].spearman, alone.spearman)  # the copy's weights, as a fresh copy's
    (other,) = A.sanity_check(tiny, photos, target, ["saliency"], seed=4)
    assert len(sanity._COPIES) == 2 and not np.array_equal(other.spearman, alone.spearman)  # another seed: its own


def test_the_randomised_copy_runs_the_trained_networks_compiled_functions_with_its_own_weights(tiny, photos):
    from generator.analysis.attribution import maps, sanity, scorer as S

    target, settings = A.UnitTarget("c3", 5), A.AttributionSettings()
    parts, x = S.Parts.of(tiny), photos.astype(np.float32)
    trained = S.scorer_for(parts, S.network_key(parts, target), settings.precision)
    copied, _ = sanity.randomised_scorer(trained, None, 7)
    (on_trained,) = maps.run("saliency", trained, x, [target], settings)
    step = trained.compiled[("gradient",)]
    traced = step.traces()
    (on_copy,) = maps.run("saliency", copied, x, [target], settings)
    assert copied.compiled is trained.compiled
    if traced is not None:  # (TensorFlow's tf.function counts its traces)
        assert step.traces() == traced == 1  # no second trace
    copy, _ = A.randomised_copy(trained.net, None, 7)  # the same weights in a network of their own
    (alone,) = maps.run("saliency", S.Scorer(copy, trained.pick, parts, trained.key), x, [target], settings)
    np.testing.assert_array_equal(on_copy.maps, alone.maps)
    assert not np.allclose(on_copy.maps, on_trained.maps)


def test_the_randomised_copy_of_nested_models_with_one_layer_name_gets_each_weight_its_own():
    """Two nested models each with a layer "conv": their kernels share the path conv/kernel, so the copy's
    weights go to the scorer by position."""
    from generator.analysis.attribution import maps, sanity, scorer as S

    seed_weights(0)

    def block(name):
        x = keras.Input((16, 16, 3))
        return keras.Model(x, keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(x), name=name)

    x = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(block("b")(block("a")(x)))
    net = keras.Model(x, keras.layers.Dense(2, activation="softmax", name="head")(pooled))
    assert len({w.path for w in net.weights}) < len(net.weights)
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3)).astype(np.float32)
    settings, target = A.AttributionSettings(precision="float32"), A.ClassTarget(index=0)
    parts = S.Parts.of(net)
    trained = S.scorer_for(parts, S.network_key(parts, target), "float32")
    copied, _ = sanity.randomised_scorer(trained, None, 7)
    (on_copy,) = maps.run("saliency", copied, images, [target], settings)
    copy, _ = A.randomised_copy(net, None, 7)
    (alone,) = maps.run("saliency", S.Scorer(copy, trained.pick, parts, trained.key), images, [target], settings)
    np.testing.assert_array_equal(on_copy.maps, alone.maps)


def test_a_units_network_is_the_copy_the_exciters_of_its_layer_run(tiny):
    from generator.analysis import backend
    from generator.analysis.attribution import scorer as S

    parts = S.Parts.of(tiny)
    for precision in ("float32", "bfloat16"):
        net = S.scorer_for(parts, ("unit", "c3"), precision).net
        assert net is backend.cut_at_precision(tiny.features, "c3", precision)
        assert net.output.shape[-1] == tiny.features.get_layer("c3").output.shape[-1]
        assert net.layers[-1].compute_dtype == precision


def test_a_sanity_check_given_the_trained_maps_runs_only_the_copy(tiny, photos, monkeypatch):
    from generator.analysis.attribution import maps, sanity

    target = A.UnitTarget("c3", 5)
    made = A.attribute(tiny, photos, [target], "saliency")
    runs = []
    monkeypatch.setattr(sanity, "run", lambda *args: runs.append(args[1]) or maps.run(*args))
    (given,) = A.sanity_check(tiny, photos, target, ["saliency"], seed=3, made=made)
    assert len(runs) == 1 and runs[0].weights is not None  # the randomised copy's run alone
    monkeypatch.undo()
    (alone,) = A.sanity_check(tiny, photos, target, ["saliency"], seed=3)
    np.testing.assert_array_equal(given.spearman, alone.spearman)


def test_randomised_copy_cascades_from_the_top(tiny):
    copy, names = A.randomised_copy(tiny.network, 2, seed=0)
    assert names == ("head", "c3")
    for layer in tiny.network.layers:
        for ours, theirs in zip(layer.get_weights(), copy.get_layer(layer.name).get_weights()):
            same = np.array_equal(ours, theirs)
            assert same == (layer.name not in names) or not ours.any(), layer.name  # zero biases stay zero


def test_randomised_kernels_are_random_where_the_initialiser_is_a_constant():
    inputs = keras.Input((None, None, 3))
    side = keras.layers.Conv2D(2, 1, kernel_initializer="zeros", name="side")  # like HED's side outputs
    copy, names = A.randomised_copy(keras.Model(inputs, side(inputs)), None)
    kernel = keras.ops.convert_to_numpy(copy.get_layer("side").kernel)
    assert names == ("side",) and kernel.std() > 0.1
    # A dense kernel (rank 2) too.
    head = keras.layers.Dense(3, kernel_initializer="zeros", name="head")
    copy, names = A.randomised_copy(keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D()(side(inputs)))), None)
    kernel = keras.ops.convert_to_numpy(copy.get_layer("head").kernel)
    assert names == ("head", "side") and kernel.shape == (2, 3) and kernel.std() > 0.1


def test_randomised_vectors_are_their_initialisers_and_the_rest_the_models():
    """The copy is built with zeros where it overwrites (kernels, the layers kept): a re-initialised layer's
    vectors still come from its own initialisers (a bias of ones, BatchNormalization's 1 and 0), not zeros."""
    seed_weights(0)
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, name="conv", bias_initializer="ones")
    norm = keras.layers.BatchNormalization(name="norm")
    head = keras.layers.Dense(2, name="head", bias_initializer="ones")
    net = keras.Model(inputs, head(keras.layers.Flatten()(norm(conv(inputs)))))
    rng = np.random.default_rng(0)
    net.set_weights([rng.uniform(2.0, 3.0, w.shape).astype(w.dtype) for w in net.get_weights()])
    copy, names = A.randomised_copy(net, 2, seed=0)
    assert names == ("head", "norm")
    for mine, theirs in zip(copy.get_layer("conv").get_weights(), net.get_layer("conv").get_weights()):
        np.testing.assert_array_equal(mine, theirs)  # below the randomised layers: the model's
    gamma, beta, mean, variance = copy.get_layer("norm").get_weights()
    assert (gamma == 1).all() and (beta == 0).all() and (mean == 0).all() and (variance == 1).all()
    kernel, bias = copy.get_layer("head").get_weights()
    assert (bias == 1).all() and 0 < np.abs(kernel).max() < 1  # Glorot, not the model's 2..3 nor zeros


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, targets, settings, message",
    [
        ("gradcam2", [A.ClassTarget()], {}, "unknown method 'gradcam2'; allowed: gradcam, saliency"),
        ("gradcam", [A.ClassTarget()], {"layer": "gap"}, "Grad-CAM needs a conv layer; 'gap' is a GlobalAveragePooling2D"),
        ("gradcam", [A.ClassTarget()], {"layer": "c33"}, "the model has no layer 'c33'; did you mean 'c3'?"),
        ("integrated_gradients", [A.ClassTarget()], {"steps": 0}, "steps must be 1 to 1024, got 0"),
        ("integrated_gradients", [A.ClassTarget()], {"steps": 5000}, "steps must be 1 to 1024, got 5000"),
        ("smoothgrad", [A.ClassTarget()], {"noise": 0.0}, "noise must be above 0"),
        ("integrated_gradients", [A.ClassTarget()], {"baseline": "white"}, "unknown baseline 'white'; allowed: black, blurred"),
        ("saliency", [A.ClassTarget()], {"precision": "float16"}, "unknown precision 'float16'; allowed: float32, bfloat16"),
        ("saliency", [A.UnitTarget("c3", 8)], {}, "channel 8 is out of range for layer 'c3', which has channels 0 to 7"),
        ("saliency", [A.ClassTarget(rank=6)], {}, "class rank must be 1 to 5, got 6"),
        ("saliency", [A.OutputTarget()], {}, "needs a model whose output is a map"),
    ],
)
def test_bad_arguments_get_one_clear_line(tiny, photos, method, targets, settings, message):
    with pytest.raises(GeneratorError) as error:
        A.attribute(tiny, photos, targets, method, A.AttributionSettings(**settings))
    text = str(error.value)
    assert text.startswith("attribution: ") and message in text and "\n" not in text


def test_class_target_on_an_edge_model_is_refused(hed, cat):
    with pytest.raises(GeneratorError, match="class targets need a classifier"):
        A.saliency(hed, cat, [A.ClassTarget()])


@pytest.mark.parametrize("images", [np.zeros((1, 8, 8, 3), "float32"), np.zeros((0, 8, 8, 3), "uint8")])
def test_images_must_be_uint8_photos(tiny, images):
    with pytest.raises(GeneratorError, match=r"images must be uint8 \(N, H, W, 3\) with N >= 1"):
        A.saliency(tiny, images, [A.ClassTarget()])


# --- the site's results ------------------------------------------------------------------------------


def test_settings_in_words_name_each_methods_parameters():
    settings = A.AttributionSettings(samples=5, noise=0.25, steps=7, baseline="blurred", seed=3)
    assert A.settings_text("gradcam", settings, "c3") == "Grad-CAM at c3"
    assert A.settings_text("saliency", settings) == "saliency: the gradient's largest magnitude over the colour channels"
    assert A.settings_text("smoothgrad", settings) == "SmoothGrad: 5 noisy copies, noise 0.25 of the value range, seed 3"
    assert A.settings_text("integrated_gradients", settings) == "Integrated Gradients: 7 steps from a blurred baseline"


def test_site_attributions_carry_the_maps_and_give_the_first_target_the_sanity_check(tiny, photos):
    from generator.results import Unit

    settings = A.AttributionSettings(steps=8)
    targets = [A.ClassTarget(rank=2), A.UnitTarget("c3", 2)]
    found = A.attribute(tiny, photos, targets, "integrated_gradients", settings)
    check = A.sanity_check(tiny, photos, targets[0], ["integrated_gradients"], settings)[0]
    first, second = A.site_attributions(tiny, photos, targets, "integrated_gradients", settings, sanity=True)
    assert (first.method, first.target, first.unit, first.layer) == ("integrated_gradients", "top-2 class", None, "")
    assert (second.target, second.unit, second.classes) == ("c3:2", Unit("c3", 2), ())
    assert first.classes == found[0].classes and len(first.classes) == len(photos)
    assert first.settings == second.settings == "Integrated Gradients: 8 steps from a black baseline"
    for ours, theirs in zip((first, second), found):
        np.testing.assert_array_equal(ours.maps, theirs.maps)
        np.testing.assert_array_equal(ours.scores, theirs.scores)
        np.testing.assert_array_equal(ours.baseline_scores, theirs.baseline_scores)
        assert ours.scores.dtype == ours.baseline_scores.dtype == np.float32
    np.testing.assert_array_equal(first.sanity, check.spearman)
    assert first.randomised == ("head", "c3", "c2", "c1") and second.sanity is None and second.randomised == ()
    (gradcam,) = A.site_attributions(tiny, photos, targets[1:], "gradcam", settings, sanity=False)
    assert (gradcam.layer, gradcam.settings, gradcam.sanity, gradcam.baseline_scores) == ("c2", "Grad-CAM at c2", None, None)


# --- Grad-CAM++ and Occlusion ----------------------------------------------------------------------


@pytest.mark.parametrize("target, layer", [(A.ClassTarget(rank=1), "c3"), (A.UnitTarget("c3", 5), "c2")])
def test_gradcam_plus_plus_is_tf_keras_vis_without_its_exp_factor(tiny, photos, target, layer):
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    (ours,) = A.attribute(tiny, photos, [target], "gradcam_plus_plus")
    assert ours.layer == layer
    inputs = keras.ops.convert_to_numpy(tiny.preprocess(photos.astype("float32")))
    if isinstance(target, A.UnitTarget):
        net = keras.Model(tiny.features.input, tiny.features.get_layer("c3").output)
        score = lambda out: keras.ops.mean(out[..., 5], axis=(1, 2))  # noqa: E731
    else:
        net, classes = tiny.network, np.array(ours.classes)
        score = lambda out: keras.ops.take_along_axis(out, classes[:, None], axis=1)[:, 0]  # noqa: E731
    theirs = GradcamPlusPlus(net)(score, inputs, penultimate_layer=layer, normalize_cam=False)
    peer_close(ours.maps * np.exp(ours.scores)[:, None, None], theirs)
    (plain,) = A.attribute(tiny, photos, [target], "gradcam")
    assert not np.allclose(ours.maps / ours.maps.max(), plain.maps / plain.maps.max(), atol=1e-3)


def test_patches_cover_the_image_as_xplique_anchors_them():
    masks = occlusion.patches((7, 6), 3, 2)  # rows 0, 2, 4; columns 0, 2 (a third column would leave the image)
    assert masks.shape == (6, 7, 6) and masks.sum(axis=(1, 2)).tolist() == [9] * 6
    assert masks[1, :3, 2:5].all() and not masks[1, :3, 5].any()
    assert not masks[:, :, 5].any()  # past the last patch: never covered
    assert occlusion.patch_size((224, 224)) == (28, 14) and occlusion.patch_size((4, 5)) == (1, 1)


def test_occlusion_equals_xplique(xplique_metrics, photos):
    from xplique.attributions import Occlusion

    from tiny import tiny_classifier

    pixels = keras.Input((24, 24, 3))
    model = keras.Model(pixels, tiny_classifier()(keras.layers.Rescaling(1 / 127.5, -1)(pixels)))
    (ours,) = A.attribute(model, photos, [A.ClassTarget()], "occlusion")
    side, stride = occlusion.patch_size((24, 24))
    explainer = Occlusion(model, batch_size=16, patch_size=side, patch_stride=stride, occlusion_value=0.0)
    theirs = np.asarray(explainer.explain(photos.astype(np.float32), np.eye(5, dtype=np.float32)[list(ours.classes)]))
    peer_close(ours.maps, theirs[..., 0])


def test_occlusion_of_a_region_model_is_the_region(photos):
    """A map model whose output is the top-left 6x6 pixels: occluding a patch drops the mean by the region's
    pixels it blacks out; patches that miss the region drop nothing."""
    image = keras.Input((24, 24, 3))
    model = keras.Model(image, keras.layers.Cropping2D(((0, 18), (0, 18)))(image))
    (ours,) = A.attribute(model, photos, [A.OutputTarget()], "occlusion")
    side, stride = occlusion.patch_size((24, 24))  # 3, every 1
    reach = 6 + side - 1  # a patch that overlaps the region spreads its drop over all its pixels
    assert ours.maps[:, reach:].max() == 0 and ours.maps[:, :, reach:].max() == 0
    assert (ours.maps[:, :reach, :reach] > 0).all()
    x = photos.astype(np.float64)
    for i in (0, 2):  # pixel (0, 0) sits in one patch: the drop is that patch's share of the region's mean
        expected = x[i, :side, :side].sum() / (6 * 6 * 3)
        assert ours.maps[i, 0, 0] == pytest.approx(expected, rel=1e-5)


def test_new_methods_get_the_sanity_check_and_faithfulness(tiny, photos):
    for method in ("gradcam_plus_plus", "occlusion"):
        (site,) = A.site_attributions(tiny, photos, [A.ClassTarget()], method, A.AttributionSettings(), sanity=True)
        assert site.checked and site.sanity.shape == (3,) and site.title in ("Grad-CAM++ at c3", "Occlusion")
        found = A.site_faithfulness(tiny, photos, A.ClassTarget(), [site], A.AttributionSettings(),
                                    A.FaithfulnessSettings(steps=4, samples=8))
        assert found.of(method).deletion_auc.shape == (3,) and np.isfinite(found.of(method).deletion_auc).all()
