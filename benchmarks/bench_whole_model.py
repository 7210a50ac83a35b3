"""Whole model: a page for every conv unit of the default model, dataset examples over many images.

    python benchmarks/bench_whole_model.py [--layers all] [--images 1000] [--executor ray --workers 2]
                                           [--compare] [--set browse.examples_top_n=4 ...]

Builds the default config (``site_config.yaml``) with ``browse.layers`` (default ``all``: 4,224
units of VGG16), 10-step 64 px thumbnails and ``browse.examples_dir`` holding ``--images`` photos
made from the default images (random crops, flips and colour shifts, seeded: photo statistics,
no download), in a fresh project with an empty cache, as one ``python -m generator build``
process. Prints each stage's seconds (from the build's log), the build's, ``mkdocs build``'s, the
site's size, page count and largest page, one ``name=value`` a line.

``--compare`` builds the same twice, in-process and with ``--executor ray --workers 2`` (each on
an empty cache, one after the other), and prints the Ray build's efficiency: in-process seconds
over Ray seconds, for the stages whose work Ray runs (exciters, dataset examples, attribution) and
for the whole build. Both use the same CPUs: the in-process build TensorFlow's threads over all
cores, Ray one worker per core.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
STAGE = re.compile(r"^(\S[\w (),.-]*?)\s+(\d+\.\d) s$")
RAY_STAGES = ("exciters", "examples", "attribution")


def make_examples(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` 256 px JPEG views of the default photos: random crops, flips and colour shifts."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    photos = [Image.open(p).convert("RGB") for p in sorted((REPO / "images").glob("*.jpg"))]
    for i in range(count):
        photo = photos[rng.integers(len(photos))]
        side = int(min(photo.size) * rng.uniform(0.3, 1.0))
        left, top = rng.integers(0, photo.width - side + 1), rng.integers(0, photo.height - side + 1)
        view = photo.crop((left, top, left + side, top + side)).resize((256, 256), Image.BILINEAR)
        if rng.random() < 0.5:
            view = view.transpose(Image.FLIP_LEFT_RIGHT)
        pixels = np.asarray(view, np.float32) * rng.uniform(0.8, 1.2, 3)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"view{i:05d}.jpg", quality=90)


def make_project(folder: Path, args: argparse.Namespace) -> Path:
    config = yaml.safe_load((REPO / "site_config.yaml").read_text())
    config["browse"].update(layers=args.layers if args.layers == "all" else args.layers.split(","),
                            thumbnail_steps=10, thumbnail_size=64, examples_dir="examples")
    for item in args.set:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        config.setdefault(section, {})[name] = yaml.safe_load(value)
    folder.mkdir(parents=True)
    for name in ("images", "docs"):
        shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("generated"))
    shutil.copy(REPO / "mkdocs.yml", folder)
    shutil.copytree(args.examples, folder / "examples")
    (folder / "site_config.yaml").write_text(yaml.safe_dump(config))
    return folder


def build(project: Path, executor: list[str]) -> dict[str, float]:
    """Seconds of each stage, of the build process ("build") and of ``mkdocs build``; the site's figures."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "generator", "build", *executor], cwd=project, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"})
    figures = {"build": time.perf_counter() - start}
    if run.returncode:
        sys.exit(f"build failed:\n{run.stderr[-3000:]}")
    for line in run.stderr.splitlines():
        if m := STAGE.match(line.strip()):
            figures[m.group(1).strip()] = figures.get(m.group(1).strip(), 0.0) + float(m.group(2))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q"], cwd=project, check=True, capture_output=True,
                   env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    figures["mkdocs_build"] = time.perf_counter() - start
    files = [p for p in (project / "site").rglob("*") if p.is_file()]
    pages = [p for p in files if p.name == "index.html"]
    largest = max(pages, key=lambda p: p.stat().st_size)
    figures.update(site_mib=sum(p.stat().st_size for p in files) / 2**20, site_files=len(files), site_pages=len(pages),
                   largest_page_kib=largest.stat().st_size / 1024)
    figures["largest_page"] = largest.parent.relative_to(project / "site").as_posix()
    return figures


def show(prefix: str, figures: dict) -> None:
    for name, value in figures.items():
        key = f"{prefix}{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}"
        print(f"{key}={value:.1f}" if isinstance(value, float) else f"{key}={value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="all", help="all, or layer names separated by commas")
    parser.add_argument("--images", type=int, default=1000, help="dataset-example images")
    parser.add_argument("--executor", default="local")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--compare", action="store_true", help="in-process and Ray with 2 workers, side by side")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config key (YAML value), e.g. browse.examples_top_n=4")
    parser.add_argument("--keep", action="store_true", help="keep the projects (their folders are printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-whole-"))
    try:
        args.examples = work / "examples"
        make_examples(args.examples, args.images)
        runs = {"": ["--executor", args.executor] + (["--workers", str(args.workers)] if args.workers else [])}
        if args.compare:
            runs = {"local_": ["--executor", "local"], "ray_": ["--executor", "ray", "--workers", "2"]}
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "unknown")
        print(f"cpu={cpu}")
        print(f"cores={os.cpu_count()}")
        found = {}
        for prefix, executor in runs.items():
            found[prefix] = build(make_project(work / (prefix or "project"), args), executor)
            show(prefix, found[prefix])
        if args.compare:
            local, ray = found["local_"], found["ray_"]
            heavy = [s for s in RAY_STAGES if s in local]
            print(f"ray_efficiency_heavy_stages={sum(local[s] for s in heavy) / sum(ray[s] for s in heavy):.2f}")
            print(f"ray_efficiency_build={local['build'] / ray['build']:.2f}")
    finally:
        if args.keep:
            print(f"projects={work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
