"""The default build's attribution stage alone, cold then warm (the same work again), with its traces.

    python benchmarks/bench_attribution_stage.py [--config site_config.yaml] [--save maps.npz]

What the stage of a build runs: every configured method's maps of the output (or top class) and of the first
featured unit on the config's images, with the sanity check, then the unit's Grad-CAM on four dataset examples
(the first four of ``images/examples``, sorted). Prints each part's seconds, the process's CPU seconds (the
steadier figure on a shared machine) and how many times TensorFlow traced the scorers' compiled functions; the
cold run's surplus over the warm one is the stage's fixed cost (traces, first calls, model copies). ``--save``
writes every map, score and sanity correlation, to compare two trees' numbers byte for byte.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def traces(scorers) -> int:
    """Traces of every compiled function the kept scorers hold."""
    return sum(step.traces() or 0 for scorer in scorers.values() for step in scorer.compiled.values())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "site_config.yaml")
    ap.add_argument("--save", type=Path, help="write the cold run's numbers to this .npz")
    args = ap.parse_args(argv)
    from generator import quiet

    quiet.quiet_python_warnings()
    quiet.import_keras()
    import numpy as np

    from generator.analysis import attribution as A
    from generator.analysis.attribution import scorer
    from generator.analyses.attribution import attribution_settings
    from generator.config import image_files, load_config
    from generator.images import read_square
    from generator.models import load_model

    config = load_config(args.config)
    root, a, size = args.config.resolve().parent, config.attribution, config.images.size
    images = np.stack([read_square(path, size) for path in image_files(config)])
    examples = np.stack([read_square(path, size) for path in sorted((root / "images/examples").glob("*/*.jpg"))[:4]])
    loaded = load_model(config.model, root)
    settings = attribution_settings(a)
    unit = A.UnitTarget(config.units[0].layer, config.units[0].channel)
    targets = [A.OutputTarget() if loaded.output_kind == "map" else A.ClassTarget(rank=1), unit]

    def run_part(name, run):
        start = time.perf_counter()
        found = run()
        print(f"  {name}: {time.perf_counter() - start:.2f} s, traces so far {traces(scorer._SCORERS)}", flush=True)
        return found

    found = {}
    for when in ("cold", "warm"):
        start, cpu = time.perf_counter(), time.process_time()
        for method in a.methods:
            found[method] = run_part(method, lambda: A.site_attributions(loaded, images, targets, method, settings,
                                                                         a.sanity_check))
        found["examples"] = run_part("Grad-CAM of the examples", lambda: A.site_attributions(
            loaded, examples, [unit], "gradcam", settings, sanity=False))
        print(f"{when}: {time.perf_counter() - start:.2f} s wall, {time.process_time() - cpu:.2f} s cpu, "
              f"{traces(scorer._SCORERS)} traces; load average {os.getloadavg()[0]:.2f}", flush=True)
        if args.save and when == "cold":
            np.savez(args.save, **{f"{part}-{i}-{field}": getattr(r, field) for part, results in found.items()
                                   for i, r in enumerate(results) for field in ("maps", "scores", "sanity")
                                   if getattr(r, field) is not None})


if __name__ == "__main__":
    main()
