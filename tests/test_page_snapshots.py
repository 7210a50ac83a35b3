"""Every page of a hand-built site (tests/fake_site.py) equals its snapshot in tests/snapshots/.

Fast (no Keras) and exact: a change to a template or to the page code shows up as a diff here.
After a deliberate change, run ``python tests/fake_site.py`` and review the snapshots' diff.
"""

from __future__ import annotations

import re
from html import escape

import pytest

from fake_site import KINDS, SNAPSHOTS, render


@pytest.mark.parametrize("kind", KINDS)
def test_pages_match_their_snapshots(kind, tmp_path):
    pages = render(kind, tmp_path)
    expected = sorted(p.relative_to(SNAPSHOTS / kind) for p in (SNAPSHOTS / kind).rglob("*") if p.is_file())
    assert pages == expected
    for page in pages:
        assert (tmp_path / page).read_text() == (SNAPSHOTS / kind / page).read_text(), f"{kind}/{page} changed"


def test_snapshots_show_what_each_kind_of_site_has():
    classifier = (SNAPSHOTS / "classifier" / "report" / "index.md").read_text()
    assert "| 1 | 10 | class 0 | 50.0% |" in (SNAPSHOTS / "classifier" / "images" / "cat" / "index.md").read_text()
    assert "## Expanded inputs from `c0`" in (SNAPSHOTS / "classifier" / "models/fake/c2/1/circuit/index.md").read_text()
    assert "[circuit.csv](../models/fake/c2/1/circuit.csv)" in classifier
    edge = SNAPSHOTS / "edge-model"
    assert "No single conv layer feeds c2 directly." in (edge / "report" / "index.md").read_text()
    assert not (edge / "models/fake/c2/1/circuit").exists()
    assert "[output.json](output.json)" in (edge / "images" / "dog" / "index.md").read_text()
    # an undefined sanity check (a constant map) shows as a dash; the report's median is over the defined ones
    assert "black baseline | 0.25 | — | 0.250 | 0.750 | — |" in (SNAPSHOTS / "classifier" / "images" / "dog" / "index.md").read_text()
    assert "| integrated_gradients | top-1 class | 0.250 | 3 |" in classifier


def test_class_names_and_labels_show_as_written_in_tables_and_text(tmp_path):
    """Names from a labels file or a folder go into tables and headings as text: a bar, HTML or Markdown marks in
    them neither split a cell nor format anything."""
    import dataclasses

    import markdown

    from fake_site import fake_site
    from generator.pages import render_site
    from generator.results import ClassScore, Prediction, UnitLabel

    odd = ["a|b", "<b>bold</b>", "*star* _under_", "[link](x) & `code`", "back\\slash #1 {.big}"]
    site, config = fake_site("classifier")
    first = dataclasses.replace(site.images[0], prediction=Prediction(
        top5=tuple(ClassScore(r + 1, 10 + r, name, 0.5 / (r + 1)) for r, name in enumerate(odd))))
    unit = next(iter(site.units))
    units = {**site.units, unit: dataclasses.replace(site.units[unit], label=UnitLabel(odd[0], "config"))}
    render_site(tmp_path, dataclasses.replace(site, images=(first, *site.images[1:]), units=units), config,
                tmp_path / "none")
    html = markdown.markdown((tmp_path / "images" / "cat" / "index.md").read_text(), extensions=["tables", "attr_list"])
    cell = r"\s*<td[^>]*>(.*?)</td>"
    rows = re.findall(r"<tr>" + cell * 4 + r"\s*</tr>", html, re.S)
    rows = [(int(rank), name) for rank, _, name, share in rows if share.endswith("%")]
    assert rows == [(r + 1, escape(name, quote=False)) for r, name in enumerate(odd)]
    unit_page = markdown.markdown((tmp_path / paths_of(site).unit(unit) / "index.md").read_text(),
                                  extensions=["tables", "attr_list"])
    assert "Label: <strong>a|b</strong>" in unit_page


def paths_of(site):
    from generator.site_paths import SitePaths

    return SitePaths(site.model)


def test_image_file_names_show_as_written_in_headings_links_captions_and_alt_texts(tmp_path):
    """A file name (and the class a caption names) goes into every page as text: marks in it neither format,
    split a table's cell, nor leave a backslash or (in a caption's link) the link's Markdown in an alt text."""
    import dataclasses
    from html import unescape

    import markdown

    from fake_site import fake_site
    from generator.pages import render_site
    from generator.pdf import EXTENSIONS
    from generator.results import ClassScore, Prediction

    name, klass = "__init__ & [x] *y* | `z`.jpg", "_a_ <b>"
    site, config = fake_site("classifier")
    first = dataclasses.replace(site.images[0], image=dataclasses.replace(site.images[0].image, file=name),
                                prediction=Prediction(top5=(ClassScore(1, 10, klass, 0.5),)))
    render_site(tmp_path, dataclasses.replace(site, images=(first, *site.images[1:]), composite=first), config,
                tmp_path / "none")

    def html_of(page: str) -> str:
        text = (tmp_path / page / "index.md").read_text()
        return markdown.markdown(re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S), extensions=EXTENSIONS)

    def alts(page: str) -> list[str]:
        return [unescape(a) for a in re.findall(r'alt="([^"]*)"', html_of(page))]

    assert f"<h1>{escape(name, quote=False)}</h1>" in html_of("images/cat")
    assert f"{name} as the model sees it (centre crop, 16 px)" in alts("images/cat")
    assert f"Where the evidence for top-1 class is on {name} ({klass})" in alts("images/cat")
    assert f"Top-5 predictions for {name}" in alts("report")
    assert f"c2:1 on {name}" in alts("report")
    views = html_of(paths_of(site).views().rstrip("/"))
    assert f"DeepDream of {name} at c1" in alts(paths_of(site).views().rstrip("/"))
    rows = re.findall(r"<tr>(.*?)</tr>", views, re.S)
    assert len({len(re.findall(r"<t[dh]\b", row)) for row in rows}) == 1  # no cell split by the bar


def test_a_model_file_name_shows_as_written_in_the_breadcrumbs(tmp_path):
    """The model's name (a file's stem: any characters) is link text on every page under the model."""
    import dataclasses
    from html import unescape

    import markdown

    from fake_site import fake_site
    from generator.pages import render_site
    from generator.pdf import EXTENSIONS

    name = "__my__ *model* [v2]"
    site, config = fake_site("classifier")
    render_site(tmp_path, dataclasses.replace(site, model=name), config, tmp_path / "none")
    pages = [p for p in tmp_path.rglob("index.md") if "›" in p.read_text()]
    assert len(pages) > 5
    for page in pages:
        text = re.sub(r"\A---\n.*?\n---\n", "", page.read_text(), flags=re.S)
        links = re.findall(r"<a [^>]*>(.*?)</a>", markdown.markdown(text, extensions=EXTENSIONS))
        assert unescape(links[0]) == name, page
