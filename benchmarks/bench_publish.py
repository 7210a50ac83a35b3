"""The Pages workflow's own run steps (.github/workflows/pages.yml), timed here in fresh copies of the repository.

    python benchmarks/bench_publish.py            # the tiny config and model of tests/tiny.py
    python benchmarks/bench_publish.py --default  # the repository's own site_config.yaml (minutes cold)

Three runs: cold (no generator cache), warm (the cache restored into a new copy, as actions/cache
does on the runner), and warm after a change to a hand-written page only. Prints each step's
seconds and the site's size, one figure a line. The install and deploy steps need the network
and are not run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import pages_workflow  # noqa: E402
from tiny import make_project, tiny_classifier  # noqa: E402


def copy(folder: Path, model: Path | None) -> Path:
    """A fresh copy of the repository; with ``model``, the tiny config and images in place of the default ones."""
    project = pages_workflow.fresh_copy(folder)
    if model:
        shutil.rmtree(project / "images")
        make_project(project, model)
    return project


def timed(label: str, project: Path) -> None:
    steps = pages_workflow.run(project)
    for step in steps:
        name = step.name.lower().replace(" ", "_")
        print(f"{label}_{name}_seconds={step.seconds:.1f}")
        if step.returncode:
            sys.exit(f"{label}: step {step.name!r} failed:\n{step.output}")
    print(f"{label}_total_seconds={sum(s.seconds for s in steps):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default", action="store_true", help="the default site instead of the tiny one")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    try:
        model = None
        if not args.default:
            model = work / "tiny.keras"
            tiny_classifier().save(model)
        cold = copy(work / "cold", model)
        timed("cold", cold)
        cache = pages_workflow.cached_path(pages_workflow.load())
        warm = copy(work / "warm", model)
        shutil.copytree(cold / cache, warm / cache)
        timed("warm", warm)
        with (warm / "docs/pages/about.md").open("a") as page:
            page.write("\nOne more sentence.\n")
        timed("note_changed", warm)
        site = [p for p in (warm / "site").rglob("*") if p.is_file()]
        print(f"site_pages={sum(p.name == 'index.html' for p in site)}")
        print(f"site_mb={sum(p.stat().st_size for p in site) / 1e6:.1f}")
        print(f"cache_mb={sum(p.stat().st_size for p in (warm / cache).rglob('*') if p.is_file()) / 1e6:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
