"""The class pages (issue 28, site side): the tiny classifier's site built with hand-made CRAFT results, so the
pages' numbers are known: shares that sum to 100%, the deletion check's numbers, links both ways between class
and unit pages, the classes in the search index and the navigation, the concept maps on the image pages, and a
strict MkDocs build. The similar concepts are checked against a brute-force cosine."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from generator import build as build_module
from generator.assets.classes import class_record
from generator.assets.files import write_json
from generator.concept_links import ConceptLinks, class_title, similar_concepts
from generator.config import load_config
from generator.results import ClassConcepts, Concept, ConceptCrop, Exciter, Unit
from generator.site_paths import SitePaths, class_key
from tiny import edit_config, make_project, write_images

REPO = Path(__file__).resolve().parent.parent
SHARES = {"cat": (0.5, 0.3, 0.2), "dog": (0.625, 0.375)}
DROPS = {"cat": (0.75, 0.125, 0.25), "dog": (0.5, 0.0625)}


def _vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).random(8).astype(np.float32)
    return v / np.linalg.norm(v)


def hand_made(name: str, class_id: int, source: str, images: tuple[Path, ...]) -> ClassConcepts:
    """A class at c3 (8 channels, 16 x 16 at 32 px) with known shares and drops."""
    concepts = []
    for k, (share, drop) in enumerate(zip(SHARES[name], DROPS[name])):
        maps = np.zeros((len(images), 16, 16), np.float32)
        maps[:, 4 * k:4 * k + 4, :] = 1.0 + k
        exciter = Exciter(np.full((32, 32, 3), 60 * k, np.uint8), 2.0 + k, 0.5)
        crops = (ConceptCrop(0, (2, 3, 12, 10), 1.5 - 0.25 * k), ConceptCrop(1, (0, 0, 8, 8), 1.0))
        concepts.append(Concept(k, _vector(10 * class_id + k), share, drop, (Unit("c3", 5 - k), Unit("c3", 7)),
                                crops, maps, exciter=exciter))
    n = len(images)
    return ClassConcepts(name, class_id, "c3", source, images, tuple(concepts),
                         importance_method="Sobol total index (Jansen), Halton design of 32 x (3 + 2) masks",
                         score=f"the model's output for class {class_id}", deletion_correlation=0.5,
                         random_floor=0.0125, embedding=np.arange(2 * n, dtype=np.float32).reshape(n, 2),
                         dominant=np.arange(n) % len(concepts))


@pytest.fixture(scope="module")
def class_site(tmp_path_factory, tiny_model_file):
    """The tiny project built with two hand-made classes (cat from a folder, dog predicted); mkdocs.yml beside it."""
    project = make_project(tmp_path_factory.mktemp("classes"), tiny_model_file)
    photos = tuple(sorted((project / "images").glob("photo*.png")))
    classes = (hand_made("cat", 0, "folder", photos[:2]), hand_made("dog", 3, "predicted", photos[1:]))
    results = build_module.site_results
    patch = pytest.MonkeyPatch()
    patch.setattr(build_module, "site_results", lambda analyses: dataclasses.replace(results(analyses), classes=classes))
    try:
        build_module.build_site(load_config(project / "site_config.yaml"), project)
    finally:
        patch.undo()
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    return project, classes


def page(project: Path, path: str) -> str:
    return (project / "docs/generated" / path / "index.md").read_text()


def test_a_class_page_shows_shares_summing_to_100_and_its_deletion_numbers(class_site):
    project, (cat, _) = class_site
    text = page(project, "models/tiny/classes/0-cat")
    rows = re.findall(r"^\| \[concept (\d)\]\(#concept-\d\) \| ([\d.]+)% \| ([\d.]+) \|", text, re.M)
    assert [(int(k), float(s), float(d)) for k, s, d in rows] == [(1, 50.0, 0.75), (2, 30.0, 0.125), (3, 20.0, 0.25)]
    assert sum(float(s) for _, s, _ in rows) == pytest.approx(100.0)
    assert "the shares sum to\n100.0%" in text or "the shares sum to 100.0%" in text
    assert "**0.500**" in text and "lowers the score by 0.0125 (the floor)" in text
    assert "Here they agree only in part,\nand 3 of the 3 concepts change the score by more than the floor does." in text
    assert "the 2 images of its folder in the examples folder" in text
    assert "predicts as dog" in page(project, "models/tiny/classes/3-dog")
    data = json.loads((project / "docs/generated/models/tiny/classes/0-cat/concepts.json").read_text())
    assert [k["importance"] for k in data["concepts"]] == [0.5, 0.3, 0.2]
    assert data["deletion_correlation"] == 0.5 and data["random_floor"] == 0.0125
    assert data["concepts"][0]["channels"] == ["c3:5", "c3:7"]
    for name in ("importance.png", "maps.jpg", "embedding.png", "deletion.png", "concept-0.png", "crops-2.jpg"):
        assert (project / "docs/generated/models/tiny/classes/0-cat" / name).stat().st_size > 0, name


def test_class_and_unit_pages_link_both_ways(class_site):
    project, _ = class_site
    cat = page(project, "models/tiny/classes/0-cat")
    assert "[`c3:5`](../../c3/5/index.md)" in cat and "[`c3:7`](../../c3/7/index.md)" in cat
    unit = page(project, "models/tiny/c3/7")
    assert "## Concepts it takes part in" in unit
    assert "| [cat](../../classes/0-cat/index.md) | [concept 1](../../classes/0-cat/index.md#concept-1) | 50.0% |" in unit
    assert "| [dog](../../classes/3-dog/index.md) | [concept 2](../../classes/3-dog/index.md#concept-2) | 37.5% |" in unit
    assert "Concepts it takes part in" not in page(project, "models/tiny/c3/0")  # in no concept's top channels


def test_the_search_index_and_the_nav_hold_the_classes(class_site):
    project, _ = class_site
    out = project / "docs/generated"
    entries = json.loads((out / "unit-search/units.json").read_text())
    cat = next(e for e in entries if e["unit"] == "class cat")
    assert cat["url"] == "../models/tiny/classes/0-cat/"
    assert cat["images"] == ["photo0.png", "photo1.png"] and "c3:5" in cat["label"]
    assert "of classes with concept pages (2, listed as `class <name>`)" in page(project, "unit-search")
    nav = yaml.safe_load((out / "mkdocs-generated.yml").read_text())["nav"]
    assert {"Classes": [{"All classes": "models/tiny/classes/index.md"}, {"cat": "models/tiny/classes/0-cat/index.md"},
                        {"dog": "models/tiny/classes/3-dog/index.md"}]} in nav
    index = page(project, "models/tiny/classes")
    assert "| [cat](0-cat/index.md) | 2 | its folder | 3 | 50.0% | 0.500 |" in index


def test_image_pages_show_the_concepts_of_their_classes(class_site):
    project, _ = class_site
    out = project / "docs/generated/images"
    assert "concepts-0-cat.png" in page(project, "images/photo0") and "concepts-3-dog" not in page(project, "images/photo0")
    both = page(project, "images/photo1")
    assert "concepts-0-cat.png" in both and "concepts-3-dog.png" in both and "[dog](../../models/tiny/classes/3-dog/index.md)" in both
    assert (out / "photo1/concepts-3-dog.png").stat().st_size > 0


def test_similar_concepts_are_the_top_cosines_of_other_classes(class_site):
    project, classes = class_site
    found = similar_concepts(classes)
    for (i, k), similar in found.items():
        mine = classes[i].concepts[k].vector
        others = [(c, j) for c in classes if c is not classes[i] for j in c.concepts]
        cos = sorted((float(mine @ j.vector / np.linalg.norm(mine) / np.linalg.norm(j.vector)) for _, j in others),
                     reverse=True)[:3]
        assert [s.cosine for s in similar] == pytest.approx(cos)
        assert all(s.cls is not classes[i] for s in similar)
    best = found[(0, 0)][0]
    assert f"{best.cosine:.4g})" in page(project, "models/tiny/classes/0-cat")


def test_the_class_site_builds_strict(class_site):
    project, _ = class_site
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
    assert (project / "site/models/tiny/classes/0-cat/index.html").is_file()
    assert (project / "site/models/tiny/classes/index.html").is_file()


def test_a_model_output_has_its_page_named_as_attribution_names_it(tmp_path):
    """The edge model (no classes) gets one page for its output, titled as attribution titles that target; a class
    without concepts says why in one line and draws nothing."""
    from fake_site import fake_site
    from generator.pages import render_site

    site, config = fake_site("edge-model")
    (tmp_path / "images").mkdir()
    files = [tmp_path / "images" / r.image.file for r in site.images]
    output = dataclasses.replace(hand_made("dog", 3, "all", tuple(files)), name="output", class_id=None,
                                 score="the mean of the model's output map", deletion_correlation=float("nan"))
    empty = ClassConcepts("owl", 4, "c2", "predicted", (), reason="no image is predicted as owl")
    config = dataclasses.replace(config, images=dataclasses.replace(config.images, dir=str(tmp_path / "images"),
                                                                    files=tuple(p.name for p in files)))
    out = tmp_path / "out"
    render_site(out, dataclasses.replace(site, classes=(output, empty)), config, tmp_path / "none")
    assert class_key(output) == "output" and SitePaths("m").class_page(output) == "models/m/classes/output/"
    text = (out / "models/fake/classes/output/index.md").read_text()
    assert text.startswith('---\ntitle: "output mean"\n---\n\n# The model\'s output: output mean\n')
    assert "its target\nis the **output mean** (the mean of the model's output map)." in text
    assert "**Images:** all 2 images" in text
    assert "the Spearman rank correlation is between the shares and the drops' sizes:\n**—** (undefined: fewer than two" in text
    write_json(tmp_path / "concepts.json", class_record(output, 0, ConceptLinks()))
    assert json.loads((tmp_path / "concepts.json").read_text())["deletion_correlation"] is None  # strict JSON
    assert "No concepts for owl: no image is predicted as owl." in (out / "models/fake/classes/4-owl/index.md").read_text()
    index = (out / "models/fake/classes/index.md").read_text()
    assert "| [output mean](output/index.md) | 2 | all images | 2 | 62.5% | — |" in index
    assert "| [owl](4-owl/index.md) | 0 | predicted | 0 | — | — |" in index
    assert "concepts-output.png" in (out / "images/cat/index.md").read_text()
    # The attribution section's own name for this target, which the page repeats.
    from generator.analysis.attribution.targets import OutputTarget
    assert OutputTarget().label == class_title(output)


def _ranks(values) -> np.ndarray:
    return np.argsort(np.argsort(np.asarray(values, np.float64), kind="stable"), kind="stable").astype(np.float64)


@pytest.fixture(scope="module")
def configured_site(tmp_path_factory, tiny_model_file):
    """The tiny classifier built with ``classes`` configured: two classes from their folders of examples."""
    project = make_project(tmp_path_factory.mktemp("configured"), tiny_model_file)
    for k in (1, 3):
        write_images(project / "examples" / f"class {k}", n=3, size=36, seed=k)
    edit_config(project, browse={"examples_dir": "examples"}, classes={
        "names": ["class 3", "class 1"], "concepts": 3, "crops": 4, "design": 8, "random_directions": 4,
        "exciter_size": 16})
    summary = build_module.build_site(load_config(project / "site_config.yaml"), project)
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    return project, summary


def test_a_configured_classifier_gets_class_pages_with_the_results_numbers(configured_site):
    project, _ = configured_site
    out = project / "docs/generated/models/tiny/classes"
    data = json.loads((out / "3-class-3/concepts.json").read_text())
    assert data["source"] == "folder" and data["images"] == ["photo0.png", "photo1.png", "photo2.png"]
    text = page(project, "models/tiny/classes/3-class-3")
    rows = re.findall(r"^\| \[concept (\d)\]\(#concept-\d\) \| ([\d.]+)% \| (-?[\d.e+-]+) \|", text, re.M)
    assert [int(k) for k, _, _ in rows] == [1, 2, 3]
    shares = [float(s) for _, s, _ in rows]
    assert shares == [round(100 * k["importance"], 1) for k in data["concepts"]] and sum(shares) == pytest.approx(100, abs=0.2)
    assert shares == sorted(shares, reverse=True)
    assert [float(d) for _, _, d in rows] == [float(f"{k['deletion_drop']:.4g}") for k in data["concepts"]]
    importance, drops = [k["importance"] for k in data["concepts"]], [k["deletion_drop"] for k in data["concepts"]]
    rho = np.corrcoef(_ranks(importance), _ranks(np.abs(drops)))[0, 1]  # the result's Spearman, from its numbers
    assert data["deletion_correlation"] == pytest.approx(rho) and f"**{rho:.3f}**" in text
    floor = data["random_floor"]
    assert (f"lowers the score by {floor:.4g} (the floor)" if floor >= 0 else f"raises the score by {-floor:.4g} (the floor)") in text
    above = sum(abs(d) > abs(floor) for d in drops)
    assert f"and {above} of the 3 concepts {'changes' if above == 1 else 'change'} the score by more than the floor does." in text
    assert "the 3 images of its folder in the examples folder" in text
    assert "zeroed and\nthe class score re-computed by the model after c3: it drops" in text
    for name in ("importance.png", "maps.jpg", "embedding.png", "deletion.png", "concept-0.png"):
        assert (out / "3-class-3" / name).stat().st_size > 0, name


def test_a_configured_classifiers_class_and_unit_pages_link_both_ways_and_search_finds_the_class(configured_site):
    project, _ = configured_site
    data = json.loads((project / "docs/generated/models/tiny/classes/1-class-1/concepts.json").read_text())
    channel = data["concepts"][0]["channels"][0]  # e.g. "c3:5"; c3 is a browsed layer: every unit has a page
    layer, number = channel.split(":")
    assert f"[`{channel}`](../../{layer}/{number}/index.md)" in page(project, "models/tiny/classes/1-class-1")
    unit = page(project, f"models/tiny/{layer}/{number}")
    assert "| [class 1](../../classes/1-class-1/index.md) | [concept 1](../../classes/1-class-1/index.md#concept-1) |" in unit
    entries = json.loads((project / "docs/generated/unit-search/units.json").read_text())
    found = [e for e in entries if e["unit"].startswith("class ")]
    assert [(e["unit"], e["url"]) for e in found] == [("class class 3", "../models/tiny/classes/3-class-3/"),
                                                      ("class class 1", "../models/tiny/classes/1-class-1/")]
    similar = re.findall(r"\[class 1, concept (\d)\]\(\.\./1-class-1/index\.md#concept-\d\) \(([\d.e+-]+)\)",
                         page(project, "models/tiny/classes/3-class-3"))
    assert len(similar) == 9  # each of class 3's 3 concepts: class 1's 3 concepts, most similar first
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
    assert (project / "site/models/tiny/classes/3-class-3/index.html").is_file()


def test_a_concept_has_one_colour_on_the_bars_the_maps_and_the_image_pages(tmp_path):
    """Concept k is drawn in the activation groups' colour k everywhere: its bar, its map on the class page and
    on an image page."""
    from PIL import Image

    from generator import class_figures, figures

    colour = figures.GROUP_COLOURS[2].astype(int)
    class_figures.concept_shares([2], [1.0], tmp_path / "bar.png", title="one concept")
    bar = np.asarray(Image.open(tmp_path / "bar.png").convert("RGBA"))
    assert (np.abs(bar[..., :3].astype(int) - colour).max(axis=-1) == 0).sum() > 500  # the bar's pixels
    image = np.full((1, 32, 32, 3), 200, np.uint8)
    maps = np.zeros((3, 1, 4, 4), np.float32)
    maps[2, 0, 0, 0] = 1.0  # concept 3 (index 2) in the top-left corner only
    class_figures.class_maps(image, maps, [""], tmp_path / "maps.png", title="t")
    drawn = np.asarray(Image.open(tmp_path / "maps.png").convert("RGB")).astype(float)
    expected = 0.35 * 200 + 0.65 * colour  # coloured_maps: grey under the concept's colour where its map is 1
    assert (np.abs(drawn - expected).max(axis=-1) <= 1).sum() > 100
    figures.activation_groups(image[0], maps[:, 0], tmp_path / "page.png", title="t", name="concept")
    page_pixels = np.asarray(Image.open(tmp_path / "page.png").convert("RGB")).astype(float)
    assert (np.abs(page_pixels - expected).max(axis=-1) <= 1).sum() > 100


def test_a_map_model_gets_one_output_page_end_to_end(tmp_path):
    """A model whose output is a map (as the default edge detector) with ``classes.output``: one page, titled as
    attribution titles that target, over all the images; strict build."""
    from tiny import exciter_model

    model_file = tmp_path / "maps.keras"
    exciter_model().save(model_file)
    project = make_project(tmp_path / "project", model_file)
    edit_config(project, units=[{"layer": "c3", "channel": 1}], circuits={"top_k": 3, "earlier_layer": "c1"},
                browse={"layers": ["c3"], "thumbnail_size": 16, "thumbnail_steps": 2, "examples_top_n": 2, "top_k": 3},
                exciters={"steps": 2, "size": 32, "batch_size": 4, "precision": "float32"}, feature_maps={"layers": []},
                classes={"output": True, "concepts": 2, "crops": 4, "design": 8, "random_directions": 4,
                         "exciter_size": 16})
    build_module.build_site(load_config(project / "site_config.yaml"), project)
    text = page(project, "models/maps/classes/output")
    assert "# The model's output: output mean" in text and "**Images:** all 3 images" in text
    assert "share is how much of the output mean it\ncarries" in text
    data = json.loads((project / "docs/generated/models/maps/classes/output/concepts.json").read_text())
    assert data["class_id"] is None and len(data["concepts"]) == 2
    assert sum(k["importance"] for k in data["concepts"]) == pytest.approx(1)
    assert "concepts-output.png" in page(project, "images/photo0")  # every image is the output's
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
    moved = shutil.move(project, tmp_path / "moved")  # the project in another folder, its cache with it
    build_module.build_site(load_config(moved / "site_config.yaml"), moved)
    assert "concepts-output.png" in page(moved, "images/photo0")  # the cached concepts know the images' new paths


@pytest.mark.parametrize("name, key", [("golden retriever", "3-golden-retriever"), ("Café crème", "3-cafe-creme"),
                                       ("猫", "3"), ("crane", "3-crane")])
def test_a_class_key_keeps_accented_letters_and_never_ends_in_a_hyphen(name, key):
    assert class_key(ClassConcepts(name, 3, "c3", "predicted", ())) == key
