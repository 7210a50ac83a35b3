"""Shared fixtures: a tiny seeded classifier saved as a .keras file, and a project folder using it
(the models, images and configs themselves are in ``tiny.py``)."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path

import pytest

from tiny import make_project, tiny_classifier


def pytest_addoption(parser):
    parser.addoption("--sweeps", action="store_true",
                     help="also run the `sweep` tests (a build of every keras.applications family: tens of minutes)")
    parser.addoption("--slow", action="store_true",
                     help="run the `slow` tests on a CPU without bfloat16 arithmetic too (about 19 minutes more)")


def pytest_collection_modifyitems(config, items):
    from generator.analysis.precision import resolve_precision

    skips = {}
    if not config.getoption("--sweeps"):
        skips["sweep"] = "a sweep (tens of minutes): run with --sweeps"
    if not config.getoption("--slow") and resolve_precision("auto") == "float32":
        skips["slow"] = ("this CPU has no bfloat16 arithmetic (AVX512-BF16, AMX), so the default site builds in "
                         "float32: 15 minutes on a 2-core AVX2 AMD EPYC against 2 with bfloat16; run with --slow")
    marks = {marker: pytest.mark.skip(reason=reason) for marker, reason in skips.items()}
    for item in items:
        for marker, mark in marks.items():
            if marker in item.keywords:
                item.add_marker(mark)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_classifier().save(path)
    return path


@pytest.fixture(scope="session")
def xplique_metrics():
    """``xplique.metrics`` (Xplique 2, a reference the tests compare with), or skip: it is installed beside
    the project's pins, not among them (README, *Tests*)."""
    return pytest.importorskip("xplique.metrics", reason="Xplique is not installed (a test reference only)")


@pytest.fixture
def tiny_project(tmp_path, tiny_model_file) -> Path:
    """A project folder with images, a config on the tiny model, and nothing built yet."""
    return make_project(tmp_path, tiny_model_file)


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory, tiny_model_file) -> tuple[Path, dict]:
    """The tiny project built once (cold); tests copy it rather than build it again."""
    from generator.build import build_site
    from generator.config import load_config

    project = make_project(tmp_path_factory.mktemp("built"), tiny_model_file)
    return project, build_site(load_config(project / "site_config.yaml"), project)


@pytest.fixture
def built(tiny_build, tmp_path) -> tuple[Path, dict]:
    """A private copy of the built tiny project (site and cache), with the cold build's summary."""
    project, summary = tiny_build
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    return copy, summary
