"""Grad-CAM++ against tf-keras-vis' GradcamPlusPlus and Occlusion against Xplique's Occlusion (skipped without
Xplique) and against a model whose score reads one pixel region; both run the sanity check and faithfulness."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from generator.analysis import attribution as A  # noqa: E402
from generator.analysis.attribution.methods import occlusion  # noqa: E402
from generator.config import ModelSection  # noqa: E402
from generator.models import load_model  # noqa: E402

PEER_RTOL = 1e-4  # of the largest value of the map: the same float32 computation in another order


@pytest.fixture(scope="module")
def tiny(tiny_model_file):
    return load_model(ModelSection(name=str(tiny_model_file), preprocess="tf"), tiny_model_file.parent)


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)


def close(ours, theirs):
    assert ours.shape == theirs.shape and np.abs(theirs).max() > 0
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=PEER_RTOL * np.abs(theirs).max())


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
    close(ours.maps * np.exp(ours.scores)[:, None, None], theirs)
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
    close(ours.maps, theirs[..., 0])


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
