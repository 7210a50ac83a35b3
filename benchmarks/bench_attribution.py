"""Attribution speed on the default site's images and targets, side by side with the peers, in one run.

    python benchmarks/bench_attribution.py [--config site_config.yaml] [--images N] [--steps M] [--samples S]

The config's model and images (the default: vgg16-hed, 7 photos at 224 px); targets: every featured
unit (its mean activation) and, for a model whose output is a map, the map's mean, or for a
classifier the top-1 class.

Rows:
- this project, each method (gradcam, saliency, smoothgrad, integrated_gradients), every image and
  target through one compiled step per method and target network, in batches; in float32 and in
  bfloat16 (Keras' mixed_bfloat16: about twice as fast on CPUs with AVX512-BF16), with the rank
  correlation of the bfloat16 maps to the float32 ones;
- tf-keras-vis ``Gradcam``, every image of a target in one call (its own batching), same layer and score;
- a plain per-image GradientTape loop for Integrated Gradients: eager, one image, one target and one
  path point a call, the same points (midpoint rule), networks and scores.

Columns: wall s and this process's cpu s (compilation included; cpu time is the steadier figure when
other processes share the CPU), maps/s (image x target maps per wall second), and the largest
difference from this project's map relative to that map's largest value (the peers compute the same
numbers). Ratios follow, then the whole attribution (all four methods) against a cold build's time
(``--cold-build``: seconds of ``benchmarks/bench_build.py``'s cold build on this machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from generator.analysis import attribution as A  # noqa: E402
from generator.config import image_files, load_config  # noqa: E402
from generator.images import read_square  # noqa: E402
from generator.models import load_model  # noqa: E402


def cpu_model() -> str:
    lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name")), "unknown CPU")


def timed(run):
    t, c = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - t, time.process_time() - c


def score_fn(loaded, target: A.Target, classes: np.ndarray | None):
    """(network, 0..255 images -> (B,) scores of ``target``), written the plain way for the peers."""
    if isinstance(target, A.UnitTarget):
        net = keras.Model(loaded.features.input, loaded.features.get_layer(target.layer).output)
        return net, lambda out, rows: tf.reduce_mean(out[..., target.channel], axis=(1, 2))
    if isinstance(target, A.OutputTarget):
        return loaded.network, lambda out, rows: tf.reduce_mean(out, axis=(1, 2, 3))
    return loaded.network, lambda out, rows: tf.gather(out, classes[rows], axis=1, batch_dims=1)


def tf_keras_vis_gradcam(loaded, images, target, ours: A.AttributionMaps) -> np.ndarray:
    from tf_keras_vis.gradcam import Gradcam

    net, score = score_fn(loaded, target, np.array(ours.classes) if ours.classes else None)
    rows = np.arange(len(images))
    inputs = keras.ops.convert_to_numpy(loaded.preprocess(images.astype("float32")))
    return Gradcam(net)(lambda out: score(out, rows), inputs, penultimate_layer=ours.layer, normalize_cam=False)


def tape_loop_ig(loaded, images, target, ours: A.AttributionMaps, steps: int) -> np.ndarray:
    """Integrated Gradients (black baseline) one image, one target and one path point at a time."""
    net, score = score_fn(loaded, target, np.array(ours.classes) if ours.classes else None)
    maps = []
    for i, image in enumerate(images.astype("float32")):
        x = tf.constant(image[None])
        total = tf.zeros_like(x)
        for k in range(steps):
            point = x * ((k + 0.5) / steps)
            with tf.GradientTape() as tape:
                tape.watch(point)
                value = score(net(loaded.preprocess(point)), np.array([i]))
            total += tape.gradient(value, point)
        maps.append(tf.reduce_sum(x * total / steps, axis=-1)[0].numpy())
    return np.stack(maps)


def difference(theirs: np.ndarray, ours: np.ndarray) -> float:
    return float(np.abs(theirs - ours).max() / max(np.abs(ours).max(), 1e-30))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "site_config.yaml")
    ap.add_argument("--images", type=int, default=0, help="the first N images only (0: all)")
    ap.add_argument("--steps", type=int, default=A.AttributionSettings.steps)
    ap.add_argument("--samples", type=int, default=A.AttributionSettings.samples)
    ap.add_argument("--batch-size", type=int, default=A.AttributionSettings.batch_size)
    ap.add_argument("--cold-build", type=float, default=149.0, help="cold build seconds to compare with")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    tf.get_logger().setLevel("ERROR")

    config = load_config(args.config)
    root = args.config.resolve().parent
    files = image_files(config)[: args.images or None]
    images = np.stack([read_square(path, config.images.size) for path in files])
    loaded = load_model(config.model, root)
    targets = [A.UnitTarget(u.layer, u.channel) for u in config.units]
    targets.append(A.OutputTarget() if loaded.output_kind == "map" else A.ClassTarget(rank=1))
    settings = A.AttributionSettings(steps=args.steps, samples=args.samples, batch_size=args.batch_size)
    maps = len(images) * len(targets)

    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    print(f"model: {loaded.spec.name}; {len(images)} images at {config.images.size} px; targets: "
          f"{', '.join(t.label for t in targets)}; steps {args.steps}, samples {args.samples}, batch {args.batch_size}")
    header = f"{'row':52s} {'wall s':>7s} {'cpu s':>7s} {'maps/s':>7s} {'max diff':>9s} {'load':>5s}"
    print(header)
    print("-" * len(header))
    wall, cpu, ours = {}, {}, {}

    def report(name, seconds, cpu_seconds, diff=None):
        wall[name], cpu[name] = seconds, cpu_seconds
        shown = f"{diff:9.1e}" if diff is not None else f"{'':9s}"
        print(f"{name:52s} {seconds:7.1f} {cpu_seconds:7.1f} {maps / seconds:7.2f} {shown} {os.getloadavg()[0]:5.2f}",
              flush=True)

    for precision in A.PRECISIONS:
        for method in A.METHODS:
            chosen = dataclasses.replace(settings, precision=precision)
            ours[method, precision], seconds, cpu_seconds = timed(
                lambda: A.attribute(loaded, images, targets, method, chosen)
            )
            report(f"this project {method}, {precision}", seconds, cpu_seconds)
    for method in A.METHODS:
        rho = [A.spearman(a, b) for x, y in zip(ours[method, "float32"], ours[method, "bfloat16"]) for a, b in zip(x.maps, y.maps)]
        flat = int(np.isnan(rho).sum())  # a map constant on an image (a silent unit) has no ranks
        print(f"  {method} bfloat16 vs float32 maps: Spearman median {np.nanmedian(rho):.3f}, lowest "
              f"{np.nanmin(rho):.3f}" + (f" ({flat} of {len(rho)} maps constant)" if flat else ""))
    for precision in A.PRECISIONS:
        for m in ours["integrated_gradients", precision]:
            gap = m.scores - m.baseline_scores
            error = np.abs(m.maps.sum(axis=(1, 2)) / gap - 1)
            print(f"  integrated_gradients {precision} completeness, {m.target.label}: |sum / (f(x) - f(x0)) - 1| "
                  f"median {100 * np.median(error):.2f}%, worst {100 * error.max():.2f}% (|f(x) - f(x0)| from "
                  f"{np.abs(gap).min():.2g} to {np.abs(gap).max():.2g})")
    ours = {method: ours[method, "float32"] for method in A.METHODS}  # the peers are compared with float32
    theirs, seconds, cpu_seconds = timed(
        lambda: [tf_keras_vis_gradcam(loaded, images, t, m) for t, m in zip(targets, ours["gradcam"])]
    )
    report("tf-keras-vis Gradcam, all images a call", seconds, cpu_seconds,
           max(difference(t, m.maps) for t, m in zip(theirs, ours["gradcam"])))
    theirs, seconds, cpu_seconds = timed(
        lambda: [tape_loop_ig(loaded, images, t, m, args.steps) for t, m in zip(targets, ours["integrated_gradients"])]
    )
    report("GradientTape loop IG, 1 image x point a call", seconds, cpu_seconds,
           max(difference(t, m.maps) for t, m in zip(theirs, ours["integrated_gradients"])))

    def ratio(slow, fast):
        return f"{wall[slow] / wall[fast]:.2f}x by wall time, {cpu[slow] / cpu[fast]:.2f}x by cpu time"

    loop = "GradientTape loop IG, 1 image x point a call"
    for precision in A.PRECISIONS:
        print(f"gradcam {precision} vs tf-keras-vis Gradcam: "
              f"{ratio('tf-keras-vis Gradcam, all images a call', f'this project gradcam, {precision}')}")
        print(f"integrated_gradients {precision} vs the GradientTape loop: "
              f"{ratio(loop, f'this project integrated_gradients, {precision}')}")
        total = sum(wall[f"this project {m}, {precision}"] for m in A.METHODS)
        print(f"all four methods, {precision}: {total:.1f} s, {100 * total / args.cold_build:.0f}% of a "
              f"{args.cold_build:.0f} s cold build")
    for precision in A.PRECISIONS:
        print(f"speedup_vs_tape_loop_{precision}={wall[loop] / wall[f'this project integrated_gradients, {precision}']:.2f}")


if __name__ == "__main__":
    main()
