"""The notebook API (``generator.open``) and the example notebook, on the built tiny project."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

import generator
from generator.errors import GeneratorError
from generator.saved_arrays import RELATIVE_ERROR

REPO = Path(__file__).resolve().parent.parent


def site_file(project: Path, path: str) -> Path:
    return project / "docs" / "generated" / path


def test_a_units_figures_are_the_sites_files_and_nothing_is_computed_again(built):
    project, _ = built
    report = generator.open(project / "site_config.yaml")
    unit = report.unit("c3", 5)
    names = {Path(p).name for p in unit.figures.files}
    assert {"exciter.png", "exciter-map.png", "examples.png", "maps.jpg", "incoming-kernels.png",
            "circuit/diagram.png"} <= {p.split("/5/")[1] for p in unit.figures.files}, names
    for path, data in unit.figures.files.items():
        assert data == site_file(project, path).read_bytes(), path
    exciter = site_file(project, "models/tiny/c3/5/exciter.png")
    assert np.array_equal(np.asarray(unit.exciter), np.asarray(Image.open(exciter)))
    assert unit.exciter.size == (32, 32)
    assert [w.unit.layer for w in unit.circuit.direct.top] == ["c2"] * 3
    assert len(unit.examples) == 2 and unit.examples[0].score >= unit.examples[1].score
    assert report.analyses.cache.misses == 0


def test_a_browsed_unit_has_its_thumbnail_and_no_circuit(built):
    project, _ = built
    report = generator.open(project / "site_config.yaml")
    inputs = {w.unit.channel for w in report.unit("c3", 5).circuit.direct.top}  # full-size exciters
    channel = min(set(range(6)) - inputs)
    unit = report.unit("c2", channel)
    assert unit.circuit is None and unit.exciter.size == (16, 16)
    path = f"models/tiny/c2/{channel}/exciter.png"
    assert unit.figures.files[path] == site_file(project, path).read_bytes()


def test_attribution_of_one_image(built):
    project, _ = built
    evidence = generator.open(project / "site_config.yaml").attribution("photo1.png")
    assert set(evidence.figures) == {"top-1 class", "c3:5"}
    assert {m for _, m in evidence.maps} == {"gradcam", "saliency", "smoothgrad", "integrated_gradients"}
    saved = np.load(site_file(project, "images/photo1/attribution-c3-5.npy"))  # methods in config order
    maps = saved["map"] * saved["scale"][:, None, None]  # the README's reader
    assert maps.shape[0] == 4
    gradcam = evidence.maps[("c3:5", "gradcam")]
    np.testing.assert_allclose(gradcam, maps[0], rtol=0, atol=RELATIVE_ERROR * np.abs(gradcam).max())
    figure = site_file(project, "images/photo1/attribution-c3-5.png")
    assert np.array_equal(np.asarray(evidence.figures["c3:5"]), np.asarray(Image.open(figure)))


@pytest.mark.parametrize("call, message", [
    (lambda r: r.unit("c3", 99), "unit c3:99 has no page in this report: the units of the browsed layers (c2, c3), "
                                 "the configured units and their circuits' inputs have; add it to `units`"),
    (lambda r: r.unit("p1", 0), "unit p1:0 has no page"),
    (lambda r: r.attribution("cat.jpg"), "image 'cat.jpg' is not in this report; its images: photo0.png"),
])
def test_what_is_not_in_the_report_is_one_line(built, call, message):
    project, _ = built
    with pytest.raises(GeneratorError, match=re.escape(message)):
        call(generator.open(project / "site_config.yaml"))


def test_the_example_notebook_runs(built, tmp_path):
    project, _ = built
    notebook = nbformat.read(REPO / "examples" / "notebook.ipynb", as_version=4)
    (parameters,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    parameters.source = f'CONFIG = "{project / "site_config.yaml"}"\nLAYER, CHANNEL = "c3", 5\nIMAGE = "photo1.png"'
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute(env={**os.environ, "PYTHONPATH": str(REPO)})
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 3  # the exciter, the examples, an attribution figure
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "c2:" in printed and "#1 photo" in printed
