"""The dataset pass with and without the unit dashboards' statistics, side by side in one run.

    python benchmarks/bench_dashboards.py [--quick] [--images N]

Generates N synthetic photos (those of ``bench_examples.py``), then streams them through vgg16-hed to
one layer for every unit's top N (``example_shard`` in the build's batches, so ``--batch`` is ignored),
once without and once with the statistics of :mod:`generator.analysis.distribution` (histograms of each
image's maximum and mean, density, minima, seeded band samples). The two passes alternate over quarters of the images, so a
neighbour's load on a shared machine falls on both alike; the statistics' results are checked to
count every image.

One figure a line:
- seconds_without / seconds_with: wall time of the two passes (decoding included), and their ratio.
- cpu_seconds_without / cpu_seconds_with: process CPU time of each, steadier on a shared machine.
- peak_rss_mib_without / peak_rss_mib: the process' peak resident memory after the first quarter without
  the statistics (before they were ever computed) and at the end; tally_mib: what the statistics of one layer keep, whatever N.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_examples import pass_arguments, peak_rss_mib, write_images  # noqa: E402


def main() -> None:
    args = pass_arguments(__doc__.splitlines()[0])
    n = 64 if args.quick else args.images

    import keras

    from generator.analysis.examples import BATCH, example_shard, merge_tables
    from generator.config import ModelSection
    from generator.models import load_model

    with tempfile.TemporaryDirectory(prefix="bench_dashboards_") as tmp:
        paths = write_images(Path(tmp), n)
        model = load_model(ModelSection(name="vgg16-hed", weights="bundled"), Path("."))
        print(f"images={n} size={args.size} batch={BATCH} layer={args.layer} top_n={args.top_n} "
              f"backend={keras.backend.backend()} cpus={os.cpu_count()}")
        def warm_up(seed):  # compile the step and every batch shape outside the timed passes
            example_shard(model, [args.layer], paths[:BATCH + n % BATCH], 0, args.size, args.top_n, seed=seed)

        warm_up(None)
        step = BATCH * max(1, -(-n // (4 * BATCH)))  # quarters that start at batch boundaries
        wall, cpu, found = {None: 0.0, 0: 0.0}, {None: 0.0, 0: 0.0}, {None: [], 0: []}
        rss_without = None
        for first in range(0, n, step):
            for seed in (None, 0):
                if seed == 0 and rss_without is None:  # after the first quarter without the statistics
                    rss_without = peak_rss_mib()
                    warm_up(0)
                t, c = time.perf_counter(), time.process_time()
                found[seed].append(example_shard(model, [args.layer], paths[first:first + step], first, args.size,
                                                 args.top_n, seed=seed)[args.layer])
                wall[seed] += time.perf_counter() - t
                cpu[seed] += time.process_time() - c
        tally = merge_tables(found[0], args.top_n).tally
        assert tally.count == n and (tally.max_hist.sum(axis=1) == n).all()
        kept = sum(a.nbytes for a in vars(tally).values() if hasattr(a, "nbytes"))
        print(f"seconds_without={wall[None]:.1f}")
        print(f"seconds_with={wall[0]:.1f}")
        print(f"ratio={wall[0] / wall[None]:.3f}")
        print(f"cpu_seconds_without={cpu[None]:.1f}")
        print(f"cpu_seconds_with={cpu[0]:.1f}")
        print(f"cpu_ratio={cpu[0] / cpu[None]:.3f}")
        print(f"peak_rss_mib_without={rss_without:.0f}")
        print(f"peak_rss_mib={peak_rss_mib():.0f}")
        print(f"tally_mib={kept / 2**20:.1f}")


if __name__ == "__main__":
    main()
