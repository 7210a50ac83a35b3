"""End to end on the tiny model: pages, figures, data files, cache behaviour, atomic output."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from generator.seeding import seed_weights
from generator import analyses as analyses_module
from generator import build as build_module
from generator import pages
from generator.build import build_site
from generator.config import load_config

from tiny import edit_config, tiny_config, write_images

REPO = Path(__file__).resolve().parent.parent


def build(project: Path) -> dict:
    return build_site(load_config(project / "site_config.yaml"), project)


def test_pages_figures_and_data(built, tiny_model_file):
    project, summary = built
    out = project / "docs" / "generated"
    for page in ["index.md", "report/index.md", "images/photo0/index.md", "models/tiny/index.md",
                 "models/tiny/c3/index.md", "models/tiny/c3/5/index.md"]:
        assert (out / page).is_file(), page
    unit = out / "models/tiny/c3/5"
    for figure in ["exciter.png", "exciter-map.png", "map-photo1.png", "incoming-kernels.png", "incoming-norms.png"]:
        assert (unit / figure).stat().st_size > 100, figure
    data = json.loads((unit / "unit.json").read_text())
    assert data["exciter"]["activation"] > data["exciter"]["start_activation"]
    assert set(data["maps"]) == {"photo0", "photo1", "photo2"}
    # Its distribution over the 3 images searched for examples: the top image's score is its largest maximum.
    d = data["distribution"]
    assert d["images"] == 3 and sum(d["max_counts"]) == 3 and d["max"] == data["examples"][0]["score"]
    assert (unit / "distribution.png").stat().st_size > 100 and (unit / "bands.png").stat().st_size > 100
    for band in d["bands"]:
        assert all(band["low"] <= x["score"] < band["high"] for x in band["examples"])
    layer_rows = list(csv.DictReader(open(out / "models/tiny/c3/units.csv")))
    assert float(layer_rows[5]["density"]) == d["density"]
    assert "How often each unit fires" in (out / "models/tiny/c3/index.md").read_text()
    effects = data["class_effects"]  # the tiny classifier's 5 classes: the strongest first, signs apart
    raised, lowered = [c["effect"] for c in effects["raised"]], [c["effect"] for c in effects["lowered"]]
    assert effects["images"] == 3 and 0 < len(raised) + len(lowered) <= 5
    assert raised == sorted(raised, reverse=True) and all(e > 0 for e in raised) and all(e < 0 for e in lowered)

    # The circuit table ranks c3 channel 5's inputs (the 6 channels of c2) by kernel norm.
    import keras

    kernel = keras.saving.load_model(tiny_model_file).get_layer("c3").kernel.numpy()[..., 5]
    norms = np.sqrt((kernel**2).sum(axis=(0, 1)))
    rows = list(csv.DictReader(open(unit / "circuit.csv")))
    assert [int(r["channel"]) for r in rows] == list(np.argsort(-norms, kind="stable"))
    np.testing.assert_allclose([float(r["norm"]) for r in rows], np.sort(norms)[::-1], rtol=1e-5)
    assert data["circuit"]["previous"] == "c2" and len(data["circuit"]["top"]) == 3
    for r in data["circuit"]["top"]:  # the top inputs got unit pages of their own
        assert (out / f"models/tiny/c2/{r['channel']}/exciter.png").is_file()

    top5 = json.loads((out / "images/photo0/predictions.json").read_text())
    probabilities = [p["probability"] for p in top5]
    assert len(top5) == 5 and probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001
    # Every unit of the browsed layers c2 (6) and c3 (8) has a page, and so have the top 3
    # units of c1, the circuit's earlier layer.
    assert summary["images"] == 3 and summary["units"] == 6 + 8 + 3


def test_notes_sit_beside_their_figures(built):
    project, _ = built
    out = project / "docs" / "generated"
    report = (out / "report/index.md").read_text()
    assert "Channel five of c3 **likes** stripes." in report
    assert "Random weights, random photos." in report
    assert "Channel five of c3 **likes** stripes." in (out / "models/tiny/c3/5/index.md").read_text()


def test_navigation_keeps_unit_pages_out(built):
    project, _ = built
    settings = yaml.safe_load((project / "docs/generated/mkdocs-generated.yml").read_text())
    assert settings["site_name"] == 'Tiny report: colons, #hashes and "quotes"'
    nav = settings["nav"]
    flat = json.dumps(nav)
    assert "report/index.md" in flat and "models/tiny/c3/index.md" in flat and "images/photo2/index.md" in flat
    assert "models/tiny/c3/5/" not in flat


def test_rebuild_recomputes_nothing_and_loads_no_model(built, monkeypatch):
    project, first = built
    assert first["cache_misses"] > 0
    monkeypatch.setattr(analyses_module, "load_model", lambda *a: pytest.fail("the model was loaded"))
    before = (project / "docs/generated/models/tiny/c3/5/exciter.png").read_bytes()
    second = build(project)
    assert second["cache_misses"] == 0
    assert (project / "docs/generated/models/tiny/c3/5/exciter.png").read_bytes() == before


def test_changed_parameter_recomputes_only_what_depends_on_it(built, monkeypatch):
    from generator.analysis import examples, exciters, predictions

    project, _ = built
    rendered = []
    real = exciters.render_exciters
    monkeypatch.setattr(exciters, "render_exciters",
                        lambda model, layer, channels, *a, **k: rendered.extend((layer, c) for c in channels) or real(model, layer, channels, *a, **k))
    monkeypatch.setattr(predictions, "predict", lambda *a: pytest.fail("predictions were recomputed"))
    monkeypatch.setattr(examples, "top_examples", lambda *a, **k: pytest.fail("dataset examples were recomputed"))
    edit_config(project, exciters={"steps": 5})
    build(project)
    data = json.loads((project / "docs/generated/models/tiny/c3/5/unit.json").read_text())
    featured = {("c3", 5)} | {("c2", w["channel"]) for w in data["circuit"]["top"]} | {
        ("c1", w["channel"]) for w in data["circuit"]["expanded"]["top"]}
    grid = {("c2", c) for c in range(4)}
    # The featured units (the configured one by both recipes) and the grid take exciters.steps; the thumbnails do not.
    assert sorted(rendered) == sorted([*featured, *grid, ("c3", 5)])


def test_failed_build_leaves_the_previous_site(built, monkeypatch):
    project, _ = built
    out = project / "docs" / "generated"
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pages, "render_site", broken)
    with pytest.raises(RuntimeError):
        build(project)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in (project / "docs").iterdir()] == ["generated"]


def test_mkdocs_build_strict(built):
    project, _ = built
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    (project / "docs/pages").mkdir()
    (project / "docs/pages/method.md").write_text("# Method\n\nHand-written.\n")
    build(project)  # again, to pick up the hand-written page
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
    site = project / "site"
    assert (site / "models/tiny/c3/5/index.html").is_file()
    assert (site / "pages/method/index.html").is_file()
    index = json.loads((site / "search/search_index.json").read_text())
    locations = {doc["location"].split("#")[0] for doc in index["docs"]}
    assert "report/" in locations and "models/tiny/c3/" in locations
    assert not any(loc.startswith("models/tiny/c3/5") for loc in locations)  # unit pages stay out of search
    html = (site / "report/index.html").read_text()
    assert "<figcaption>" in html and "glightbox" in html


def test_browsed_unit_links_rank_by_kernel_norm(built, tiny_model_file):
    import keras

    project, _ = built
    out = project / "docs" / "generated"
    model = keras.saving.load_model(tiny_model_file)
    c2 = np.sqrt((model.get_layer("c2").kernel.numpy() ** 2).sum(axis=(0, 1)))  # (4 in, 6 out)
    c3 = np.sqrt((model.get_layer("c3").kernel.numpy() ** 2).sum(axis=(0, 1)))  # (6 in, 8 out)
    data = json.loads((out / "models/tiny/c2/4/unit.json").read_text())
    assert [(x["layer"], x["channel"]) for x in data["incoming"]] == [("c1", int(c)) for c in np.argsort(-c2[:, 4], kind="stable")[:3]]
    assert [(x["layer"], x["channel"]) for x in data["outgoing"]] == [("c3", int(c)) for c in np.argsort(-c3[4], kind="stable")[:3]]
    np.testing.assert_allclose([x["norm"] for x in data["outgoing"]], np.sort(c3[4])[::-1][:3], rtol=1e-5)
    page = (out / "models/tiny/c2/4/index.md").read_text()
    # a listed unit is linked exactly when it has a page (all of c3; only the circuit's top units of c1)
    for x in data["incoming"] + data["outgoing"]:
        has_page = (out / f"models/tiny/{x['layer']}/{x['channel']}/index.md").is_file()
        assert (f"(../../{x['layer']}/{x['channel']}/index.md)" in page) == has_page
        assert f"`{x['layer']}:{x['channel']}`" in page


def test_layer_page_lists_every_unit_with_stats(built):
    project, _ = built
    out = project / "docs" / "generated"
    page = (out / "models/tiny/c3/index.md").read_text()
    for c in range(8):
        assert f"({c}/index.md)" in page
    rows = list(csv.DictReader(open(out / "models/tiny/c3/units.csv")))
    assert [int(r["channel"]) for r in rows] == list(range(8))
    for r in rows:
        unit = json.loads((out / f"models/tiny/c3/{r['channel']}/unit.json").read_text())
        peak = max(m["max"] for m in unit["maps"].values())
        assert float(r["max"]) == pytest.approx(peak) and (r["dead"] == "True") == (peak <= 0)


def test_dataset_examples_are_the_top_images(built):
    project, _ = built
    out = project / "docs" / "generated"
    data = json.loads((out / "models/tiny/c3/5/unit.json").read_text())
    maxima = {slug: m["max"] for slug, m in data["maps"].items()}
    expected = sorted(maxima, key=lambda s: -maxima[s])[:2]
    assert [x["file"].removesuffix(".png") for x in data["examples"]] == expected
    assert [x["score"] for x in data["examples"]] == pytest.approx([maxima[s] for s in expected], rel=1e-5)
    assert (out / "models/tiny/c3/5/examples.png").stat().st_size > 100


def test_image_page_lists_the_units_that_fire_most(built):
    project, _ = built
    out = project / "docs" / "generated"
    page = (out / "images/photo1/index.md").read_text()
    section = page.split("### `c3`")[1]
    maxima = {c: json.loads((out / f"models/tiny/c3/{c}/unit.json").read_text())["maps"]["photo1"]["max"] for c in range(8)}
    first = max(maxima, key=lambda c: maxima[c])
    assert section.index(f"c3` channel {first}]") < min(
        section.index(f"c3` channel {c}]") for c in range(8) if c != first and f"c3` channel {c}]" in section)


def test_circuit_page_with_expanded_weights(built, tiny_model_file):
    import keras

    from generator.analysis.circuits import expanded_weights

    project, _ = built
    out = project / "docs" / "generated"
    page = out / "models/tiny/c3/5/circuit"
    text = (page / "index.md").read_text()
    assert "## Direct inputs from `c2`" in text and "## Expanded inputs from `c1`" in text
    assert (page / "diagram.png").stat().st_size > 1000 and (page / "expanded-kernels.png").is_file()
    rows = list(csv.DictReader(open(page / "expanded.csv")))
    weights = expanded_weights(keras.saving.load_model(tiny_model_file), "c1", "c3", [5])[..., 0]
    norms = np.sqrt((weights**2).sum(axis=(0, 1)))
    assert [int(r["channel"]) for r in rows] == list(np.argsort(-norms, kind="stable"))
    for r in rows:
        i = int(r["channel"])
        assert float(r["excitatory"]) == pytest.approx(weights[..., i][weights[..., i] > 0].sum(), rel=1e-5)
    for r in rows[:3]:  # each top earlier unit is linked to its page
        assert f"(../../../c1/{r['channel']}/index.md)" in text
        assert (out / f"models/tiny/c1/{r['channel']}/index.md").is_file()


def test_a_unit_can_use_its_own_exciter_method(built):
    project, _ = built
    exciter = project / "docs/generated/models/tiny/c3/5/exciter.png"
    before = exciter.read_bytes()
    other = (project / "docs/generated/models/tiny/c2/0/exciter.png").read_bytes()
    data = yaml.safe_load((project / "site_config.yaml").read_text())
    data["units"][0]["method"] = "lucid"
    (project / "site_config.yaml").write_text(yaml.safe_dump(data))
    build(project)
    assert exciter.read_bytes() != before
    assert (project / "docs/generated/models/tiny/c2/0/exciter.png").read_bytes() == other


def test_every_page_has_valid_front_matter(built):
    project, _ = built
    pages = list((project / "docs/generated").rglob("index.md"))
    assert len(pages) > 20
    for page in pages:
        text = page.read_text()
        assert text.startswith("---\n"), page
        meta = yaml.safe_load(text.split("---\n")[1])
        assert isinstance(meta, dict) and meta["title"], page
    home = yaml.safe_load((project / "docs/generated/index.md").read_text().split("---\n")[1])
    assert home["title"] == 'Tiny report: colons, #hashes and "quotes"'


def test_a_residual_model_builds_with_a_circuit_through_the_merge(tmp_path):
    import keras

    seed_weights(1)
    x = inputs = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c2")(a)
    x = keras.layers.Add(name="add")([a, b])
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c3")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(tmp_path / "residual.keras")
    names = write_images(tmp_path / "images")
    config = tiny_config(tmp_path / "residual.keras", names)
    config["units"] = [{"layer": "c3", "channel": 0}]
    config["browse"]["layers"] = ["c2", "c3"]
    config["circuits"]["earlier_layer"] = "c1"
    (tmp_path / "site_config.yaml").write_text(yaml.safe_dump(config))
    build(tmp_path)
    out = tmp_path / "docs/generated"
    page = (out / "models/residual/c3/0/index.md").read_text()
    assert "[circuit page](circuit/index.md)" in page      # both paths of the Add feed c3
    assert "## Direct inputs from `c1`, `c2`" in (out / "models/residual/c3/0/circuit/index.md").read_text()
    assert (out / "models/residual/c3/0/examples.png").is_file()  # whole images: no receptive field here
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr


def test_examples_folder_streams_many_files_and_skips_bad_ones(built):
    project, _ = built
    folder = project / "many"
    write_images(folder / "a", n=5, seed=1)
    write_images(folder / "b", n=4, seed=2)
    (folder / "b" / "broken.png").write_text("not an image")
    (folder / ".hidden.png").write_text("ignored")
    edit_config(project, browse={"examples_dir": "many", "examples_top_n": 3})
    build(project)
    data = json.loads((project / "docs/generated/models/tiny/c3/5/unit.json").read_text())
    assert len(data["examples"]) == 3
    files = {x["file"] for x in data["examples"]}
    assert files <= {f"a/photo{i}.png" for i in range(5)} | {f"b/photo{i}.png" for i in range(4)}
    scores = [x["score"] for x in data["examples"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0


def test_attribution_maps_on_every_image_page(built):
    project, _ = built
    out = project / "docs" / "generated"
    summary = json.loads((out / "images/photo1/attribution.json").read_text())
    methods = ["gradcam", "saliency", "smoothgrad", "integrated_gradients"]
    assert [(r["target"], r["method"]) for r in summary] == [(t, m) for t in ("top-1 class", "c3:5") for m in methods]
    top5 = json.loads((out / "images/photo1/predictions.json").read_text())
    assert {r["class"] for r in summary if r["target"] == "top-1 class"} == {top5[0]["id"]}
    assert all(r["score"] == pytest.approx(top5[0]["probability"], rel=1e-4) for r in summary if r["target"] == "top-1 class")
    # The raw maps sit beside the figure, methods in the JSON's order (scaled float16, see test_saved_arrays).
    raw = np.load(out / "images/photo1/attribution-top1.npy")
    assert raw.dtype.names == ("scale", "map") and raw["map"].shape == (4, 32, 32)
    for m, r in zip(raw, summary[:4]):
        top = max(abs(r["min"]), abs(r["max"]))
        assert float((m["map"] * m["scale"]).max()) == pytest.approx(r["max"], abs=2**-11 * top)
    ig = summary[3]
    assert ig["sum"] == pytest.approx(ig["score"] - ig["baseline_score"], rel=0.02)  # completeness
    # The sanity check ran on the first target, against a copy with every weighted layer re-initialised.
    assert all(-1 <= r["sanity_spearman"] <= 1 for r in summary[:4])
    assert summary[0]["randomised_layers"] == ["head", "c3", "c2", "c1"]
    assert "sanity_spearman" not in summary[4]
    page = (out / "images/photo1/index.md").read_text()
    assert "## Where the evidence is" in page and "(attribution-top1.png)" in page and "(attribution-c3-5.npy)" in page
    assert "## 6. Where the evidence is" in (out / "report/index.md").read_text()
    unit = (out / "models/tiny/c3/5/index.md").read_text()
    assert "(examples-gradcam.png)" in unit and (out / "models/tiny/c3/5/examples-gradcam.png").stat().st_size > 1000
    assert not (out / "models/tiny/c2/0/examples-gradcam.png").exists()  # other units: examples only


def test_faithfulness_scores_curves_and_summary(built):
    project, _ = built
    out = project / "docs" / "generated"
    summary = json.loads((out / "images/photo1/attribution.json").read_text())
    for r in summary:
        f = r["faithfulness"]
        assert (f["baseline"], f["steps"], f["samples"]) == ("black", 8, 32)
        if r["score"] <= 0:  # a unit that does not fire here: read as a fraction of 0, undefined
            assert f["deletion_auc"] is None and f["deletion"] == [None] * 9  # strict JSON: null, not NaN
            continue
        assert len(f["deletion"]) == len(f["insertion"]) == 9
        assert f["deletion"][0] == f["insertion"][-1] == 1
        assert f["deletion_auc"] == pytest.approx(np.trapezoid(f["deletion"], dx=1 / 8), rel=1e-5)
        assert f["insertion_auc"] == pytest.approx(np.trapezoid(f["insertion"], dx=1 / 8), rel=1e-5)
        assert f["random"]["deletion"][-1] == f["deletion"][-1] == f["insertion"][0]  # all end at the baseline
        assert f["mu_fidelity"] is None or -1 <= f["mu_fidelity"] <= 1
    top = [r for r in summary if r["target"] == "top-1 class"]
    assert len({json.dumps(r["faithfulness"]["random"]) for r in top}) == 1  # one floor a target
    assert len({r["faithfulness"]["deletion_auc"] for r in top}) == len(top)  # each method its own curve
    page = (out / "images/photo1/index.md").read_text()
    assert "| deletion AUC ↓ | insertion AUC ↑ | µ-Fidelity ↑ |" in page and "| random order (the floor) |" in page
    assert "(faithfulness-top1.png)" in page and (out / "images/photo1/faithfulness-top1.png").stat().st_size > 5000
    report = (out / "report/index.md").read_text()
    assert "**How faithful each method is**" in report and "| top-1 class | random order |" in report
    assert "/faithfulness-top1.png){ loading=lazy }" in report  # the composite's curves
    assert "is the most faithful method**" in report or "**No method is more faithful" in report


def test_attribution_can_be_turned_off(built):
    project, _ = built
    edit_config(project, attribution={"methods": []})
    build(project)
    out = project / "docs" / "generated"
    assert not (out / "images/photo1/attribution.json").exists()
    assert "Where the evidence is" not in (out / "images/photo1/index.md").read_text()


def test_a_configured_label_wins_and_shows_wherever_the_unit_is_listed(built, monkeypatch):
    project, _ = built
    monkeypatch.setattr(analyses_module, "load_model", lambda *a: pytest.fail("a label needs no model"))
    edit_config(project, units=[{"layer": "c3", "channel": 5, "note": "Stripes.", "label": "stripe detector"}])
    build(project)
    out = project / "docs/generated/models/tiny"
    data = json.loads((out / "c3/5/unit.json").read_text())
    assert data["label"] == {"text": "stripe detector", "source": "config", "name": "", "purity": None}
    assert "Label: **stripe detector**, the author's." in (out / "c3/5/index.md").read_text()
    assert "stripe detector" in (out / "c3/index.md").read_text()  # its card and the layer's summary
    index = json.loads((project / "docs/generated/unit-search/units.json").read_text())
    assert {"unit": "c3:5", "label": "stripe detector"}.items() <= next(e for e in index if e["unit"] == "c3:5").items()
