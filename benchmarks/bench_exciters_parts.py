"""Where a Lucid exciter step's time goes on Keras' JAX backend: the parts render_exciters composes, apart.

    KERAS_BACKEND=jax python benchmarks/bench_exciters_parts.py [--batch 128] [--size 224] [--quick]

Each row is one jitted forward + gradient (with respect to its input) over a batch, median of 10 after
a warm-up, in ms per batch step and in ms per image-step (the unit bench_exciters_gpu's s/unit is
512 of): the image parametrisation (Fourier spectrum -> decorrelated colour -> sigmoid), the random
transform (keras.ops.image.affine_transform, bilinear), both, and picking each image's own channel
from a full-resolution layer output (block1_conv1's shape) by gather (take + take_along_axis, as
render_exciters does for a layer it cannot slice) and by a one-hot product.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from generator.analysis import exciters  # noqa: E402
from generator.analysis.exciters import objectives  # noqa: E402
from generator.config import ExciterParams  # noqa: E402


def timed(fn, *args) -> float:
    """Median seconds of jit(grad(sum(fn)))(*args) over 10 runs after a warm-up."""
    step = jax.jit(jax.grad(lambda x, *rest: ops.sum(ops.cast(fn(x, *rest), "float32"))))
    step(*args).block_until_ready()
    times = []
    for _ in range(10):
        t = time.perf_counter()
        step(*args).block_until_ready()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--channels", type=int, default=64, help="channels of the full-resolution layer output")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.size, args.channels = 4, 32, 8
    b, s, canvas = args.batch, args.size, args.size + 12
    params = ExciterParams(method="lucid", steps=1, size=s)
    scale = exciters.spectrum_scale(s)
    rng = np.random.default_rng(0)
    spectrum = ops.convert_to_tensor(rng.normal(0, 0.01, (b, 2, 3, s, s // 2 + 1)).astype("float32"))
    transforms = ops.convert_to_tensor(np.stack([exciters.lucid_transforms(params, (k,), canvas)[0] for k in range(b)]))
    pads = [[0, 0], [6, 6], [6, 6], [0, 0]]

    def rgb(x):
        return ops.pad(exciters.spectrum_to_rgb(x, scale, s), pads, constant_values=0.5)

    def affine(image, t):
        return ops.image.affine_transform(image, t, fill_mode="constant", fill_value=0.5)

    image = ops.convert_to_tensor(rng.random((b, canvas, canvas, 3)).astype("float32"))
    y = ops.convert_to_tensor(rng.random((b, canvas, canvas, args.channels)).astype("float32"), "bfloat16")
    channels = ops.convert_to_tensor((np.arange(b) % args.channels).astype("int32"))

    def gather(y, channels):
        picked = ops.take(y, channels, axis=-1)  # (B, H, W, B)
        return objectives.own_channel(picked, ops.arange(b, dtype="int32"))

    def one_hot(y, channels):
        return ops.sum(y * ops.cast(ops.one_hot(channels, args.channels), y.dtype)[:, None, None, :], axis=-1)

    rows = [
        ("spectrum->rgb", timed(rgb, spectrum)),
        ("affine_transform", timed(affine, image, transforms)),
        ("spectrum->rgb->affine", timed(lambda x, t: affine(rgb(x), t), spectrum, transforms)),
        (f"own channel by gather ({args.channels} ch)", timed(gather, y, channels)),
        (f"own channel by one-hot ({args.channels} ch)", timed(one_hot, y, channels)),
    ]
    print(f"device={jax.devices()[0]} batch={b} size={s} canvas={canvas}")
    for name, t in rows:
        key = name.split(" (")[0].replace(" ", "_").replace("->", "_")
        print(f"part.{key}.ms_per_batch_step={t * 1e3:.3f}")
        print(f"part.{key}.ms_per_image_step={t * 1e3 / b:.4f}")


if __name__ == "__main__":
    main()
