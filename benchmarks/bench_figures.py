"""The figure stage of the default site before (another git revision, main by default) and after
(this tree), side by side on the same analysed results.

    python benchmarks/bench_figures.py [--base main] [--config site_config.yaml] [--cold-project DIR]

1. A cold build of the default site with the base revision, in a fresh project folder (skipped with
   ``--cold-project``: a folder where this script, or ``python -m generator build > build.log 2>&1``,
   built cold before); its log gives every stage's time.
2. Two more builds, base and this tree, each in a project holding only the analyses of step 1 (the
   cached results, not the figures): everything but the figures is a cache hit, so the builds differ
   in the figure stage alone.

Prints each figure a line: the figure stage's seconds before and after, their ratio, the figure
stage's share of the cold build before and after (the cold build with the other figure stage), the
figures' bytes before and after, and how many of them differ in their decoded pixels (an encoder
setting changes bytes, never pixels).
Target (issue 13): figures at most 15% of the default cold build.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_same_bytes import PICTURES, file_digest  # this script's folder is on the path

REPO = Path(__file__).resolve().parent.parent
STAGE = re.compile(r"^(\S.*?)\s+([\d.]+) s$")
TOTAL = re.compile(r"site written to .* \(\d+ pages, ([\d.]+) s,")


def build(project: Path, source: Path, config: Path) -> str:
    """Run ``python -m generator build`` of ``source`` in ``project``; returns (and keeps) its log."""
    run = subprocess.run([sys.executable, "-m", "generator", "build", "--config", str(config)], cwd=project,
                         env={**os.environ, "PYTHONPATH": str(source), "TQDM_DISABLE": "1"},
                         capture_output=True, text=True)
    (project / "build.log").write_text(run.stderr)
    if run.returncode:
        sys.exit(f"build failed:\n{run.stderr}")
    return run.stderr


def stages(log: str) -> tuple[dict[str, float], float]:
    """Each stage's seconds and the whole build's, from a build log."""
    times = {m[1].strip(): float(m[2]) for line in log.splitlines() if (m := STAGE.match(line))}
    total = TOTAL.search(log)
    if "figures" not in times or not total:
        sys.exit(f"no stage times in the build log:\n{log}")
    return times, float(total[1])


def analysed_project(cold: Path, where: Path) -> Path:
    """A project folder with the cold build's analyses in its cache and no figures (.png, .jpg)."""
    where.mkdir(parents=True)
    shutil.copy(REPO / "mkdocs.yml", where)
    source = cold / ".cache"
    for path in source.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".npz"):
            target = where / ".cache" / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return where


def figure_files(project: Path) -> dict[str, tuple[int, str]]:
    """Each figure (.png, .jpg, .webp) of the built site: its size in bytes and the digest of its decoded pixels."""
    site = project / "docs" / "generated"
    return {str(path.relative_to(site)): (path.stat().st_size, file_digest(path).partition(" pixels=")[2])
            for path in sorted(site.rglob("*")) if path.suffix in PICTURES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="git revision to compare against (default: main)")
    parser.add_argument("--config", type=Path, default=REPO / "site_config.yaml")
    parser.add_argument("--cold-project", type=Path, help="reuse this cold-built project (its build.log and .cache)")
    args = parser.parse_args()
    config = args.config.resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-figures-"))
    try:
        base = work / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.base], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        if args.cold_project:
            cold = args.cold_project.resolve()
        else:
            cold = work / "cold"
            cold.mkdir()
            shutil.copy(REPO / "mkdocs.yml", cold)
            build(cold, base, config)
        cold_stages, cold_total = stages((cold / "build.log").read_text())
        timed, files = {}, {}
        for name, source in (("before", base), ("after", REPO)):
            project = analysed_project(cold, work / name)
            timed[name] = stages(build(project, source, config))
            files[name] = figure_files(project)
        (before_stages, before_total), (after_stages, after_total) = timed["before"], timed["after"]
        before, after = before_stages["figures"], after_stages["figures"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rest = cold_total - cold_stages["figures"]  # the cold build without its figure stage
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    print(f"cpu={cpu}")
    print(f"cores={len(os.sched_getaffinity(0))}")
    print(f"cold_build_seconds={cold_total:.1f}")
    print(f"cold_build_figures_seconds={cold_stages['figures']:.1f}")
    print(f"analysed_build_seconds_before={before_total:.1f}")  # analyses all cache hits: mostly figures
    print(f"analysed_build_seconds_after={after_total:.1f}")
    print(f"figures_seconds_before={before:.1f}")
    print(f"figures_seconds_after={after:.1f}")
    print(f"figures_speedup={before / after:.2f}")
    print(f"figures_share_of_cold_build_before={before / (rest + before):.3f}")
    print(f"figures_share_of_cold_build_after={after / (rest + after):.3f}")
    print(f"figures_within_15_percent={after / (rest + after) <= 0.15}")
    sizes = {name: sum(size for size, _ in found.values()) for name, found in files.items()}
    print(f"figure_bytes_before={sizes['before']}")
    print(f"figure_bytes_after={sizes['after']}")
    print(f"figure_bytes_ratio={sizes['after'] / sizes['before']:.3f}")
    print(f"figures_with_other_pixels={sum(files['before'].get(f, (0, ''))[1] != p for f, (_, p) in files['after'].items())}")
    print(f"figures_only_before_or_after={len(set(files['before']) ^ set(files['after']))}")


if __name__ == "__main__":
    main()
