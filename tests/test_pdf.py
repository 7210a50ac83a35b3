"""``python -m generator pdf`` on the built tiny project, read back with pypdf."""

from __future__ import annotations

import re
import sys

import pypdf
import pytest

from generator import cli
from generator.pdf import links_as_text
from tiny import edit_config

PARTS = ["1. The model and its predictions", "2. Feature maps", "3. The chosen filter and its exciter",
         "4. The incoming circuit", "5. Exciters of the strongest inputs", "6. Where the evidence is"]


@pytest.fixture
def pdf(built, monkeypatch, capsys):
    project, _ = built
    monkeypatch.chdir(project)
    assert cli.main(["pdf"]) == 0
    assert "wrote report.pdf" in capsys.readouterr().out
    return project, pypdf.PdfReader(project / "report.pdf")


def test_title_page_then_the_parts_in_order_each_on_a_new_page(pdf):
    _, reader = pdf
    pages = [p.extract_text() for p in reader.pages]
    title = pages[0]
    assert 'Tiny report: colons, #hashes and\n"quotes"' in title or 'Tiny report: colons, #hashes and "quotes"' in title
    assert "Model: tiny.keras" in title and re.search(r"\d{4}-\d\d-\d\d", title)
    assert "Lab report" not in title  # the title page holds the title page only
    starts = [next(i for i, text in enumerate(pages) if text.startswith(part)) for part in PARTS]
    assert starts == sorted(starts) and len(set(starts)) == len(PARTS), starts


def test_every_figure_is_embedded_numbered_and_captioned(pdf):
    project, reader = pdf
    report = (project / "docs" / "generated" / "report" / "index.md").read_text()
    sources = set(re.findall(r'(?:!\[[^\]]*\]\(|<img[^>]*src=")([^)"]+)', report))
    embedded = {image.name for page in reader.pages for image in page.images}
    assert len(embedded) == len(sources) > 10
    text = "".join(p.extract_text() for p in reader.pages)
    captions = report.count("/// caption")
    assert re.findall(r"Figure (\d+)\.", text) == [str(n) for n in range(1, captions + 1)]
    assert "Figure 1. Top-5 predictions for photo0.png" in text


def test_notes_are_in_the_text_and_links_are_text(pdf):
    _, reader = pdf
    text = " ".join(p.extract_text() for p in reader.pages).replace("\n", " ")
    assert "Random weights, random photos." in text
    assert "Channel five of c3 likes stripes." in text
    assert "exciter-grid.csv" in text and "index.md" not in text
    assert not any(page.get("/Annots") for page in reader.pages)  # no links left to click


def test_a_web_address_stays_beside_its_text():
    body = '<p><a href="https://distill.pub/2020/circuits/">Distill</a> and <a href="../x/index.md">a unit</a></p>'
    assert links_as_text(body) == ("<p>Distill <span class='url'>(https://distill.pub/2020/circuits/)</span> "
                                   "and a unit</p>")


def test_without_weasyprint_one_line_names_the_extra(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import weasyprint raises ImportError
    assert cli.main(["pdf"]) == 2
    err = capsys.readouterr().err
    assert err == 'error: the PDF needs WeasyPrint, an optional extra: pip install -e ".[pdf]"\n'
    assert not (tiny_project / "report.pdf").exists() and not (tiny_project / "docs").exists()


@pytest.mark.parametrize("published", [True, False])
def test_site_pdf_says_whether_the_pages_workflow_publishes_it(built, monkeypatch, capsys, published):
    project, _ = built
    edit_config(project, site={"pdf": published})
    monkeypatch.chdir(project)
    assert cli.main(["pdf", "--if-published", "--output", "site/report.pdf"]) == 0
    out = capsys.readouterr().out
    if published:
        assert "wrote site/report.pdf" in out
        assert pypdf.PdfReader(project / "site/report.pdf").pages[0].extract_text().startswith("Tiny report")
    else:
        assert out == "no PDF: site.pdf is false in the config\n" and not (project / "site").exists()
