"""Every page of a hand-built site (tests/fake_site.py) equals its snapshot in tests/snapshots/.

Fast (no Keras) and exact: a change to a template or to the page code shows up as a diff here.
After a deliberate change, run ``python tests/fake_site.py`` and review the snapshots' diff.
"""

from __future__ import annotations

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
