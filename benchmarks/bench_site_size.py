"""Bytes per browsed unit page by picture format and maps per unit, extrapolated to a whole VGG16.

    python benchmarks/bench_site_size.py [--layers block1_conv1 block2_conv1 ...] [--steps 5]

Builds vgg16-hed on the 7 default images with every unit of one layer per block browsed (cheap
thumbnails: the point is the bytes, not the exciters; no featured units, views or attribution),
once per setting (the analyses are cached after the first), runs ``mkdocs build`` and measures
what GitHub Pages would serve (``site/``): the mean bytes of a unit page (its HTML, pictures and
unit.json) in each measured layer, by part, and a site browsing all 4,224 conv units of VGG16
(``browse.layers: all``), each layer counted as the measured layer of its block, against the
1 GB that Pages publishes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
VGG16 = {"block1_conv1": 64, "block1_conv2": 64, "block2_conv1": 128, "block2_conv2": 128,
         "block3_conv1": 256, "block3_conv2": 256, "block3_conv3": 256, "block4_conv1": 512, "block4_conv2": 512,
         "block4_conv3": 512, "block5_conv1": 512, "block5_conv2": 512, "block5_conv3": 512}
SETTINGS = {  # name -> browse keys
    "png": {},
    "jpeg": {"image_format": "jpeg"},
    "webp": {"image_format": "webp"},
    "png_maps2": {"unit_maps": 2},
    "webp_maps2": {"image_format": "webp", "unit_maps": 2},
    "webp_q60_maps2": {"image_format": "webp", "image_quality": 60, "unit_maps": 2},
}
PARTS = ("html", "exciter", "maps", "examples", "data")
PAGES_LIMIT_MB = 1000


def part(path: Path) -> str:
    if path.name == "index.html":
        return "html"
    return path.stem if path.stem in PARTS else "data"


def measure(site: Path, layers: list[str]) -> tuple[dict[str, Counter], dict[str, int], int]:
    """Mean bytes by part of a unit page of each layer, each layer page's bytes, and the rest of the site."""
    model = site / "models" / "vgg16-hed"
    per_unit, layer_pages, counted = {}, {}, 0
    for layer in layers:
        units = [folder for folder in (model / layer).iterdir() if folder.is_dir()]
        parts = Counter()
        for f in (f for folder in units for f in folder.rglob("*") if f.is_file()):
            parts[part(f)] += f.stat().st_size
        per_unit[layer] = Counter({name: size / len(units) for name, size in parts.items()})
        layer_pages[layer] = sum(f.stat().st_size for f in (model / layer).iterdir() if f.is_file())
        counted += sum(parts.values()) + layer_pages[layer]
    return per_unit, layer_pages, sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) - counted


def whole_vgg16(per_unit: dict[str, Counter], layer_pages: dict[str, int]) -> tuple[Counter, int]:
    """Bytes by part of all of VGG16's unit pages, and of its layer pages, each layer as the measured one of its block."""
    block = {layer.split("_")[0]: layer for layer in per_unit}
    units, pages = Counter(), 0
    for layer, channels in VGG16.items():
        measured = block[layer.split("_")[0]]
        units.update({name: channels * size for name, size in per_unit[measured].items()})
        pages += layer_pages[measured]
    return units, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="+", default=[f"block{b}_conv1" for b in range(1, 6)],
                        help="one layer per VGG16 block")
    parser.add_argument("--steps", type=int, default=5, help="thumbnail exciter steps")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="bench-site-size-"))
    try:
        default = yaml.safe_load((REPO / "site_config.yaml").read_text())
        config = {"model": default["model"], "images": {**default["images"], "dir": str(REPO / "images")},
                  "attribution": {"methods": []}}
        shutil.copy(REPO / "mkdocs.yml", project)
        env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1", "NO_MKDOCS_2_WARNING": "1",
               "TF_CPP_MIN_LOG_LEVEL": "3"}
        n_units = sum(VGG16.values())
        print(f"layers={','.join(args.layers)} images={len(config['images']['files'])} thumbnail_steps={args.steps} "
              f"vgg16_units={n_units}")
        for name, browse in SETTINGS.items():
            config["browse"] = {"layers": args.layers, "thumbnail_steps": args.steps, **browse}
            (project / "site_config.yaml").write_text(yaml.safe_dump(config))
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "generator", "build"], cwd=project, env=env, check=True,
                           capture_output=True)
            generate = time.perf_counter() - start
            subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q"], cwd=project, env=env, check=True,
                           capture_output=True)
            per_unit, layer_pages, rest = measure(project / "site", args.layers)
            units, pages = whole_vgg16(per_unit, layer_pages)
            total_mb = (sum(units.values()) + pages + rest) / 1e6
            print(f"{name}_generate_seconds={generate:.1f}" + (" (with the analyses)" if name == "png" else ""))
            print(f"{name}_unit_page_kb_by_layer=" + ",".join(
                f"{layer}:{sum(per_unit[layer].values()) / 1e3:.1f}" for layer in args.layers))
            print(f"{name}_vgg16_unit_page_kb={sum(units.values()) / n_units / 1e3:.1f} ("
                  + ", ".join(f"{p} {units[p] / n_units / 1e3:.1f}" for p in PARTS) + ")")
            print(f"{name}_vgg16_site_mb={total_mb:.0f} (unit pages {sum(units.values()) / 1e6:.0f}, "
                  f"layer pages {pages / 1e6:.1f}, the rest {rest / 1e6:.1f})")
            print(f"{name}_vgg16_fits_pages={total_mb < PAGES_LIMIT_MB}")
    finally:
        shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
