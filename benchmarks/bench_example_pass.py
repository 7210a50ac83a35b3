"""The build's dataset-example stage, this tree against a base revision, side by side.

    python benchmarks/bench_example_pass.py [--base 9bf342a] [--images 96] [--layers block3_conv2] [--rounds 2]

Writes ``--images`` synthetic 224 px photos (``bench_examples.synthetic_image``), then times
``Analyses.examples`` (every channel of ``--layers``, the config's ``examples_top_n``, an empty cache: the
shards' top tables and the winners' maps) on the default config's model (vgg16-hed), once with the base
revision's generator (``git archive``) and once with this tree's, each in a fresh process, alternating for
``--rounds`` rounds (a shared machine's speed drifts). Before 2026-12-07 the maps took a second pass over the
winning images; this tree keeps them from the first. One figure a line: each run's seconds and peak memory, the
ratio of the best runs, and how far the two trees' results differ (the tables must be equal; the maps equal or
within float32 rounding where a second pass batched the winners differently).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

RUN = r"""
import json, os, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from generator import quiet
quiet.quiet_python_warnings(); quiet.import_keras()
import numpy as np
from generator.analyses import Analyses
from generator.cache import Cache
from generator.config import load_config
config = load_config(Path(sys.argv[2]))
files = sorted(Path(sys.argv[3]).glob("*.jpg"))
analyses = Analyses(config, Cache(Path(sys.argv[4]) / "cache"), None)
analyses.layers  # the model, loaded before the clock starts
start = time.perf_counter()
found = analyses.examples(sys.argv[5].split(","), files, "bench")
seconds = time.perf_counter() - start
np.savez(Path(sys.argv[4]) / "found.npz", **{f"{layer}.{name}": getattr(e, name) for layer, e in found.items()
                                           for name in ("image", "score", "y", "x", "maps")})
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(tree: Path, config: Path, images: Path, layers: str, work: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, str(tree), str(config), str(images), str(work), layers],
                         capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if out.returncode:
        raise SystemExit(f"{tree}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="9bf342a", help="git revision to compare against (two passes)")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--layers", default="block3_conv2", help="comma-separated layer names")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--config", type=Path, default=REPO / "site_config.yaml")
    args = parser.parse_args()

    import numpy as np

    from bench_examples import write_images

    with tempfile.TemporaryDirectory(prefix="bench-example-pass-") as tmp:
        work = Path(tmp)
        base = work / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.base], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        (work / "images").mkdir()
        write_images(work / "images", args.images)
        runs: dict[str, list[dict]] = {"base": [], "this": []}
        for round_ in range(args.rounds):
            for name, tree in (("base", base), ("this", REPO)):
                folder = work / f"{name}-{round_}"
                folder.mkdir()
                result = run(tree, args.config.resolve(), work / "images", args.layers, folder)
                runs[name].append(result)
                print(f"run={name} round={round_} seconds={result['seconds']:.2f} peak_mib={result['peak_mib']:.0f}",
                      flush=True)
        best = {name: min(r["seconds"] for r in found) for name, found in runs.items()}
        print(f"images={args.images} layers={args.layers} base={args.base} best_base={best['base']:.2f} "
              f"best_this={best['this']:.2f} speedup={best['base'] / best['this']:.2f}")
        before, after = (np.load(work / f"{name}-0" / "found.npz") for name in ("base", "this"))
        for key in before.files:
            a, b = before[key], after[key]
            same = a.shape == b.shape and np.array_equal(a, b)
            worst = 0.0 if same or a.shape != b.shape else float(np.max(np.abs(a - b)))
            print(f"result={key} shape={b.shape} identical={same} max_abs_difference={worst:.3g}")


if __name__ == "__main__":
    main()
