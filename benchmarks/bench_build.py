"""Cold build, rebuild with nothing changed, and peak memory of the default site.

    python benchmarks/bench_build.py [--config site_config.yaml]

Builds in a fresh temporary project folder (empty cache), then again with nothing changed,
each as its own ``python -m generator build`` process, and prints one figure a line.
Targets (issue: the lab report site): cold <= 600 s, rebuild <= 10% of cold, peak < 4 GiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build(project: Path, config: Path) -> float:
    """Seconds of one build process."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "generator", "build", "--config", str(config)], cwd=project,
                         env={**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"},
                         capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode:
        sys.exit(f"build failed:\n{run.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "site_config.yaml")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        shutil.copy(REPO / "mkdocs.yml", project)
        cold = build(project, args.config.resolve())
        cold_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
        warm = build(project, args.config.resolve())
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q"], cwd=project, check=True,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True)
        mkdocs_seconds = time.perf_counter() - start
        site_mib = sum(p.stat().st_size for p in (project / "site").rglob("*") if p.is_file()) / 2**20
        pages = sum(1 for _ in (project / "site").rglob("index.html"))
    finally:
        shutil.rmtree(project, ignore_errors=True)
    print(f"cold_build_seconds={cold:.1f}")
    print(f"rebuild_seconds={warm:.1f}")
    print(f"peak_rss_mib={cold_peak:.0f}")
    print(f"mkdocs_build_seconds={mkdocs_seconds:.1f}")
    print(f"site_pages={pages}")
    print(f"site_mib={site_mib:.1f}")
    print(f"cold_within_600s={cold <= 600}")
    print(f"rebuild_over_cold={warm / cold:.3f}")


if __name__ == "__main__":
    main()
