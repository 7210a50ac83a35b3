"""MkDocs at scale: a site with every unit of two 256-channel layers of vgg16-hed.

    python benchmarks/bench_site.py [--layers block3_conv1 block3_conv2] [--steps 5]

Generates the site (cheap thumbnails: the point is the site, not the exciters), then times
``mkdocs build`` and prints the site's size, the largest unit page's HTML and the search
index. Targets (issue: browse like Microscope): build under 60 s, unit page under 100 kB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="+", default=["block3_conv1", "block3_conv2"])
    parser.add_argument("--steps", type=int, default=5, help="thumbnail exciter steps")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="bench-site-"))
    try:
        config = yaml.safe_load((REPO / "site_config.yaml").read_text())
        config["images"]["dir"] = str(REPO / "images")
        config["browse"].update(layers=args.layers, thumbnail_steps=args.steps)
        config["units"] = [{**u, "note": str(REPO / u["note"])} if u.get("note") else u for u in config["units"]]
        config["notes"] = {k: (str(REPO / v) if str(v).endswith(".md") else v) for k, v in config["notes"].items()}
        (project / "site_config.yaml").write_text(yaml.safe_dump(config))
        shutil.copy(REPO / "mkdocs.yml", project)
        env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1", "NO_MKDOCS_2_WARNING": "1"}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "generator", "build"], cwd=project, env=env, check=True, capture_output=True)
        generate = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q"], cwd=project, env=env, check=True, capture_output=True)
        mkdocs = time.perf_counter() - start
        site = project / "site"
        files = [p for p in site.rglob("*") if p.is_file()]
        unit_pages = [p for layer in args.layers for p in (site / "models" / "vgg16-hed" / layer).glob("*/index.html")]
        largest = max(unit_pages, key=lambda p: p.stat().st_size)
        print(f"layers={','.join(args.layers)} unit_pages={len(unit_pages)}")
        print(f"generate_seconds={generate:.1f}")
        print(f"mkdocs_build_seconds={mkdocs:.1f}")
        print(f"site_mib={sum(p.stat().st_size for p in files) / 2**20:.1f}")
        print(f"html_mib={sum(p.stat().st_size for p in files if p.suffix == '.html') / 2**20:.1f}")
        print(f"largest_unit_page_kb={largest.stat().st_size / 1000:.1f} ({largest.relative_to(site).parent})")
        print(f"search_index_kb={(site / 'search' / 'search_index.json').stat().st_size / 1000:.1f}")
        print(f"mkdocs_under_60s={mkdocs < 60}")
    finally:
        shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
