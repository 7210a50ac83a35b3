"""Dataset examples at scale: stream a folder of images through VGG16 and keep each unit's top N.

    python benchmarks/bench_examples.py [--quick] [--images N]

Generates N deterministic synthetic photos (smooth colour blobs plus a stripe pattern, seeded
by index, 256 x 256 JPEG) in a temporary folder, then runs ``stream_images`` + ``top_examples``
on the offline model (vgg16-hed: VGG16 with HED's trained conv weights) for every channel of
one layer. Runs N/4 images, then N, both after a warm-up that compiles every batch shape.

One figure a line:
- images_per_second: N over the wall time of the N-image run (decoding included).
- decode_seconds: the part of that time spent reading and resizing JPEGs.
- peak_rss_mib / peak_rss_mib_after_quarter: the process' peak resident memory (ru_maxrss)
  after the N/4 run and after the N run; equal values mean memory does not grow with N.
- all_activations_mib: what keeping every activation of the layer would have needed instead.
- linearity_ratio: seconds per image at N over seconds per image at N/4 (1.0 = linear);
  linearity_ratio_cpu the same in process CPU time, steadier on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def synthetic_image(index: int, side: int = 256) -> np.ndarray:
    """Smooth random colour blobs (8x8 noise, bicubic) blended with a random colour grating."""
    rng = np.random.default_rng(index)
    blobs = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(blobs).resize((side, side), Image.BICUBIC), dtype=np.float32)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 40)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    colour = rng.uniform(0, 255, 3).astype(np.float32)
    mix = rng.uniform(0.2, 0.7)
    image = (1 - mix) * base + mix * wave[..., None] * colour
    return np.clip(image, 0, 255).astype(np.uint8)


def write_images(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"synthetic_{i:05d}.jpg"
        Image.fromarray(synthetic_image(i)).save(path, quality=90)
        paths.append(path)
    return paths


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def pass_arguments(description: str) -> argparse.Namespace:
    """The command line of a dataset-pass benchmark: how many images, which layer, top N, size, batch."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short run: 64 images")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--layer", default="block3_conv2")
    parser.add_argument("--top-n", type=int, default=9)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    return parser.parse_args()


def main() -> None:
    args = pass_arguments(__doc__.splitlines()[0])
    n = 64 if args.quick else args.images
    quarter = max(n // 4, 1)

    import keras

    from generator.analysis.examples import stream_images, top_examples
    from generator.config import ModelSection
    from generator.models import load_model

    with tempfile.TemporaryDirectory(prefix="bench_examples_") as tmp:
        start = time.perf_counter()
        paths = write_images(Path(tmp), n)
        print(f"images={n} quarter={quarter} size={args.size} batch={args.batch} layer={args.layer} "
              f"top_n={args.top_n} backend={keras.backend.backend()} cpus={os.cpu_count()}")
        print(f"generate_seconds={time.perf_counter() - start:.1f}")

        model = load_model(ModelSection(name="vgg16-hed", weights="bundled"), Path("."))
        features, preprocess = model.features, model.preprocess
        channels = list(range(features.get_layer(args.layer).output.shape[-1]))

        def run(count: int) -> tuple[float, float, float, dict]:
            decode = [0.0]

            def timed(batches):
                while True:
                    t = time.perf_counter()
                    batch = next(batches, None)
                    decode[0] += time.perf_counter() - t
                    if batch is None:
                        return
                    yield batch

            t, cpu = time.perf_counter(), time.process_time()
            top = top_examples(features, preprocess, args.layer, channels,
                               timed(stream_images(paths[:count], args.size, args.batch)), args.top_n)
            return time.perf_counter() - t, time.process_time() - cpu, decode[0], top

        # Warm-up: compile the full batch and both last-batch shapes outside the timed runs.
        start = time.perf_counter()
        sizes = sorted({args.batch, n % args.batch or args.batch, quarter % args.batch or args.batch})
        warm = np.zeros((1, args.size, args.size, 3), np.uint8)
        top_examples(features, preprocess, args.layer, channels,
                     (np.repeat(warm, s, axis=0) for s in sizes), args.top_n)
        print(f"warmup_seconds={time.perf_counter() - start:.1f}")
        rss_before = peak_rss_mib()

        t_quarter, cpu_quarter, _, _ = run(quarter)
        rss_quarter = peak_rss_mib()
        t_full, cpu_full, decode_full, top = run(n)
        rss_full = peak_rss_mib()

        cut = keras.Model(features.input, features.get_layer(args.layer).output)
        per_image = int(np.prod(cut.compute_output_shape((1, args.size, args.size, 3))[1:])) * 4
        print(f"images_per_second={n / t_full:.2f}")
        print(f"seconds={t_full:.1f}")
        print(f"decode_seconds={decode_full:.1f}")
        print(f"quarter_images_per_second={quarter / t_quarter:.2f}")
        print(f"linearity_ratio={(t_full / n) / (t_quarter / quarter):.3f}")
        print(f"cpu_seconds={cpu_full:.1f}")
        print(f"linearity_ratio_cpu={(cpu_full / n) / (cpu_quarter / quarter):.3f}")
        print(f"peak_rss_mib_before_streaming={rss_before:.0f}")
        print(f"peak_rss_mib_after_quarter={rss_quarter:.0f}")
        print(f"peak_rss_mib={rss_full:.0f}")
        print(f"all_activations_mib={per_image * n / 2**20:.0f}")
        best = top[channels[0]][0]
        counts = np.bincount([e.image for c in channels for e in top[c]], minlength=n)
        print(f"channel_0_best=image {best.image} score {best.score:.3g} at ({best.y}, {best.x}) "
              f"of grid {cut.compute_output_shape((1, args.size, args.size, 3))[1:3]}")
        print(f"distinct_images_in_top={int((counts > 0).sum())}")


if __name__ == "__main__":
    main()
