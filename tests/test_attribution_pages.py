"""What the attribution section of a page decides from the results: when a target barely fires on an
image, and each map's own colour scale."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fake_site import fake_site
from generator import figures
from generator.results import Faint


def test_a_unit_that_barely_fires_is_named_by_its_max_activation():
    site, _ = fake_site("classifier")
    unit = next(a for a in site.attributions if a.unit)  # c2:1: max activation 0 on cat.jpg, 1 on dog.png
    assert site.faint(unit, 0) == Faint("max activation", 0.0, 1.0, "dog.png")
    assert site.faint(unit, 1) is None


def test_other_targets_barely_fire_by_their_score():
    site, _ = fake_site("classifier")
    top1 = site.attributions[0]  # scores 0.5 and 0.25: both fire
    assert site.faint(top1, 0) is None and site.faint(top1, 1) is None
    weak = dataclasses.replace(top1, scores=np.array([0.5, 0.02]))  # under 5% of the top image's
    assert site.faint(weak, 1) == Faint("score", pytest.approx(0.02), 0.5, "cat.jpg")
    assert site.faint(dataclasses.replace(top1, scores=np.array([0.5, 0.03])), 1) is None
    assert site.faint(dataclasses.replace(top1, scores=np.zeros(2)), 1) is None  # nothing fires anywhere


@pytest.mark.parametrize("m, signed, limits", [
    (np.array([[0.0, 0.02], [0.01, 0.005]]), False, (0.0, 0.02)),
    (np.array([[-0.3, 0.02], [0.1, 0.0]]), True, (-0.3, 0.3)),
    (np.zeros((2, 2)), False, (0.0, 1.0)),  # nothing above 0: a blank map, not a division by zero
    (np.array([[np.nan, 0.5]]), False, (0.0, 0.5)),
])
def test_own_scale_runs_to_the_maps_own_maximum(m, signed, limits):
    assert figures._own_limits(m.astype(np.float32), signed) == pytest.approx(limits)


def test_page_says_when_the_unit_barely_fires(tmp_path):
    from generator.pages import render_site

    site, config = fake_site("classifier")
    render_site(tmp_path, site, config, tmp_path / "none")
    cat = (tmp_path / "images/cat/index.md").read_text()
    dog = (tmp_path / "images/dog/index.md").read_text()
    assert "**c2:1 barely fires here**: max activation 0, against 1 on\ndog.png, its top image." in cat
    assert "barely fires" not in dog


def test_the_most_faithful_method_beats_the_others_and_the_random_order():
    site, _ = fake_site("classifier")
    top1 = site.faithfulness_of("top-1 class")  # Grad-CAM falls by 0.25 a step, IG and the random order by 0.5
    gradcam, ig = top1.methods
    assert top1.mean(gradcam, "deletion_auc") == pytest.approx(0.125)
    assert top1.best("deletion_auc") is gradcam and top1.best("insertion_auc") is gradcam
    assert top1.best("mu_fidelity") is ig and not top1.beats_random(ig, "mu_fidelity")  # a tie is no win
    assert top1.mean(ig, "mu_fidelity") == 0.5  # the NaN of the second image left out
    unit = site.faithfulness_of("c2:1")  # undefined on every image
    assert np.isnan(unit.mean(unit.methods[0], "deletion_auc")) and unit.best("deletion_auc") is None
    assert site.most_faithful() == ("gradcam", 2, 6)
    assert dataclasses.replace(site, faithfulness=(unit,)).most_faithful() is None
