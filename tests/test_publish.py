"""Publishing: the GitHub Pages workflow is valid, audited and builds the site; Zensical builds the same site.

All offline: the schema is check-jsonschema's built-in copy of GitHub's, zizmor runs with --offline,
and the workflow's own run steps build the tiny project of tests/tiny.py (its config, images and
model in place of the default ones, with the generator's cache restored as actions/cache would) in a
fresh copy of the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import pages_workflow
from tiny import make_project
from generator.build import CACHE
from generator.cli import DEFAULT_CONFIG

WORKFLOW = pages_workflow.WORKFLOW
TOOLS = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the test extra's console scripts


def tool(name: str, *args: str | Path) -> subprocess.CompletedProcess:
    path = shutil.which(name, path=TOOLS)
    assert path, f"{name} is not installed (pip install -e '.[test]')"
    return subprocess.run([path, *map(str, args)], capture_output=True, text=True)


def edited_workflow(tmp_path: Path, old: str, new: str) -> Path:
    text = WORKFLOW.read_text()
    assert old in text
    (tmp_path / "pages.yml").write_text(text.replace(old, new))
    return tmp_path / "pages.yml"


def test_workflow_validates_against_githubs_schema(tmp_path):
    run = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW)
    assert run.returncode == 0 and "ok -- validation done" in run.stdout, run.stdout + run.stderr
    broken = edited_workflow(tmp_path, "id-token: write", "id-token: writ")
    run = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", broken)
    assert run.returncode == 1 and "id-token" in run.stdout


def test_zizmor_finds_nothing_at_medium_severity_or_above(tmp_path):
    run = tool("zizmor", "--offline", "--min-severity", "medium", "--format", "json", WORKFLOW)
    assert run.returncode == 0 and json.loads(run.stdout) == [], run.stdout + run.stderr
    unpinned = edited_workflow(tmp_path, "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1", "actions/checkout@v7")
    run = tool("zizmor", "--offline", "--min-severity", "medium", "--format", "json", unpinned)
    assert [finding["ident"] for finding in json.loads(run.stdout)] == ["unpinned-uses"]


def test_actions_are_pinned_to_commits_with_their_version_beside():
    uses = re.findall(r"uses: (\S+)(.*)", WORKFLOW.read_text())
    assert {name.split("@")[0] for name, _ in uses} == {
        "actions/checkout", "actions/setup-python", "actions/configure-pages", "actions/cache",
        "actions/upload-pages-artifact", "actions/deploy-pages"}
    for name, comment in uses:
        assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", name) and re.fullmatch(r" # v\d+\.\d+\.\d+", comment), name


def test_least_permissions_one_concurrency_group_and_the_generators_cache():
    workflow = pages_workflow.load()
    assert workflow[True] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}  # YAML 1.1 reads `on` as true
    assert workflow["permissions"] == {}
    assert workflow["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert build["permissions"] == {"contents": "read", "pages": "read"}
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"} and deploy["needs"] == "build"
    assert pages_workflow.cached_path(workflow) == CACHE.as_posix()
    (cache,) = [s for s in pages_workflow.steps(workflow) if s.get("uses", "").startswith("actions/cache@")]
    for keyed_on in (DEFAULT_CONFIG, "images/**", "docs/notes/**", "docs/pages/**", "pyproject.toml"):
        assert f"'{keyed_on}'" in cache["with"]["key"]
    assert cache["with"]["key"].startswith(cache["with"]["restore-keys"])  # a changed note restores the last cache


def test_the_workflows_run_steps_build_the_site(tmp_path, tiny_build, tiny_model_file):
    project = pages_workflow.fresh_copy(tmp_path / "repository")
    shutil.rmtree(project / "images")
    make_project(project, tiny_model_file)  # the tiny config, images and model instead of the default ones
    shutil.copytree(tiny_build[0] / CACHE, project / pages_workflow.cached_path(pages_workflow.load()))

    steps = pages_workflow.run(project)
    assert [(s.name, s.returncode) for s in steps] == [
        ("Generate the pages", 0), ("Build the site with MkDocs", 0),
        ("The report as a PDF beside the site (when site.pdf is true in site_config.yaml)", 0)], steps[-1].output
    assert "no PDF: site.pdf is false" in steps[2].output and not (project / "site/report.pdf").exists()
    assert "/ 0 misses" in steps[0].output  # the restored cache is where the generator looks
    assert "WARNING" not in steps[1].output and "Material for MkDocs reaches end of life" not in steps[1].output

    settings = yaml.safe_load((project / "docs/generated/mkdocs-generated.yml").read_text())
    assert settings["site_url"] == pages_workflow.PAGES_URL + "/"
    site = project / "site"
    assert (site / "models/tiny/c3/5/index.html").is_file() and (site / "pages/about/index.html").is_file()
    assert f"<loc>{pages_workflow.PAGES_URL}/models/tiny/c3/</loc>" in (site / "sitemap.xml").read_text()
    assert 'href="/my-report/assets/' in (site / "404.html").read_text()  # served at any depth, so absolute


def test_site_url_from_the_config_wins_over_the_workflows(tmp_path, tiny_build):
    from generator.config import load_config, parse_config, with_site_url
    from generator.errors import GeneratorError

    with pytest.raises(GeneratorError, match=r"^config key 'site.url': got 'example.org', expected an http"):
        parse_config({"site": {"url": "example.org"}}, tmp_path)

    config = load_config(tiny_build[0] / "site_config.yaml")
    assert with_site_url(config, "https://you.github.io/r").site.url == "https://you.github.io/r"
    own = with_site_url(config, "https://report.example.org/")
    assert with_site_url(own, "https://you.github.io/r").site.url == "https://report.example.org/"
    with pytest.raises(GeneratorError, match=r"^--site-url: got 'you.github.io/r', expected an http"):
        with_site_url(config, "you.github.io/r")


def pages_and_figures(site: Path) -> tuple[list[str], list[str]]:
    files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    return ([f for f in files if f.endswith("index.html")],
            [f for f in files if f.endswith((".png", ".jpg")) and not f.startswith("assets/")])


def test_zensical_builds_the_same_site(built):
    project, summary = built
    shutil.copy(pages_workflow.REPO / "mkdocs.yml", project)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    mkdocs = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", "site-mkdocs"],
                            cwd=project, env=env, capture_output=True, text=True)
    assert mkdocs.returncode == 0, mkdocs.stderr
    zensical = subprocess.run([sys.executable, "-m", "zensical", "build", "--strict"], cwd=project, env=env,
                              capture_output=True, text=True)
    assert zensical.returncode == 0 and "No issues found" in zensical.stderr, zensical.stdout + zensical.stderr

    pages, figures = pages_and_figures(project / "site")
    assert (pages, figures) == pages_and_figures(project / "site-mkdocs")
    assert len(pages) == summary["pages"] and "models/tiny/c3/5/index.html" in pages
    assert "models/tiny/c3/5/exciter.png" in figures
    unit = (project / "site/models/tiny/c3/5/index.html").read_text()
    assert 'class="glightbox"' in unit and "<figcaption" in unit  # the lightbox and captions carry over
    search = json.loads((project / "site/search.json").read_text())
    assert not any("/c3/5/" in item["location"] for item in search["items"])  # unit pages stay out of search
