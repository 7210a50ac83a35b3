"""What faithfulness adds to a cold build: the attribution stage and the faithfulness stage, side by side in
one run, on a config's model, images and featured units, each from an empty cache.

    python benchmarks/bench_faithfulness.py [--config site_config.yaml] [--cold-build 371]

Both stages run as the build runs them (:class:`generator.analyses.Analyses`, in this process): the
attribution stage computes every configured method's maps with the sanity check; the faithfulness stage
scores them (deletion, insertion, µ-Fidelity and the random floor, ``attribution.faithfulness``).
Columns: wall s and this process's cpu s (the steadier figure when other processes share the CPU). The
last lines set the faithfulness stage against a cold build's seconds (``--cold-build``: the default
site's cold build on this machine, from ``benchmarks/bench_build.py``; the README's figure by default).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_attribution import cpu_model, timed  # noqa: E402  (this folder is on sys.path when run as a script)
from generator.analyses import Analyses  # noqa: E402
from generator.cache import Cache  # noqa: E402
from generator.config import image_files, load_config  # noqa: E402
from generator.images import load_images  # noqa: E402
from generator.results import Unit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "site_config.yaml"))
    parser.add_argument("--cold-build", type=float, default=371.0, help="seconds of a cold build of the same site")
    args = parser.parse_args()
    config = load_config(Path(args.config))
    units = [Unit(u.layer, u.channel) for u in config.units]
    images = load_images(image_files(config), config.images.size)
    f = config.attribution.faithfulness
    print(f"{cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start")
    print(f"{len(images)} images at {config.images.size} px, methods {', '.join(config.attribution.methods)}, "
          f"sanity check {config.attribution.sanity_check}; faithfulness: {f.steps} steps, {f.samples} subsets")
    with tempfile.TemporaryDirectory() as cache:
        analyses = Analyses(config, Cache(Path(cache)))
        analyses.model  # loaded before the clocks start
        maps, wall_a, cpu_a = timed(lambda: analyses.attributions(images, units))
        scores, wall_f, cpu_f = timed(lambda: analyses.faithfulness(images, units, maps))
    print(f"{'stage':<14}{'wall s':>9}{'cpu s':>9}")
    print(f"{'attribution':<14}{wall_a:>9.1f}{cpu_a:>9.1f}")
    print(f"{'faithfulness':<14}{wall_f:>9.1f}{cpu_f:>9.1f}   ({len(scores)} targets)")
    print(f"faithfulness / attribution: {wall_f / wall_a:.2f} wall, {cpu_f / cpu_a:.2f} cpu")
    print(f"faithfulness against a {args.cold_build:.0f} s cold build: +{100 * wall_f / args.cold_build:.1f}% wall "
          f"(+{100 * cpu_f / args.cold_build:.1f}% if counted in cpu s)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'target':<16}{'method':<22}{'deletion':>9}{'insertion':>10}{'µ-Fidelity':>11}   (means over the images)")
    for found in scores:
        for ranking in found.rankings:
            print(f"{found.target:<16}{ranking.method:<22}" + "".join(
                f"{found.mean(ranking, m):>{w}.3f}" for m, w in (("deletion_auc", 9), ("insertion_auc", 10),
                                                                   ("mu_fidelity", 11))))


if __name__ == "__main__":
    main()
