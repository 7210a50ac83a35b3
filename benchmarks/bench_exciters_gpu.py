"""Exciter speed on an accelerator: Lucid's recipe, 512 steps, 224 px, VGG19, Keras' JAX backend.

    KERAS_BACKEND=jax python benchmarks/bench_exciters_gpu.py [--out DIR] [--budget S]
    KERAS_BACKEND=jax python benchmarks/bench_exciters_gpu.py --quick      # CPU smoke test, ~1 minute

Everything runs through ``generator.analysis.exciters.render_exciters`` (method "lucid"), as a build
runs it, on keras.applications.VGG19(weights=None, include_top=False) with seeded random weights: the
arithmetic is the same as with trained weights, and nothing has to be downloaded.

Stages, in order; a stage that would start after ``--budget`` seconds is skipped (its lines say so):

1. sweep: one layer (``--sweep-layer``), each precision x batch size, ``--measure-steps`` steps,
   two batches: the first batch's time holds the compilation (tracing + XLA + autotuning of the
   three compiled functions), the second is the steady time. s/unit is scaled to ``--steps``.
2. layers: the best sweep configuration on each of ``--layers`` the same way (width capped at the
   layer's channels; channels repeat so that there are always two batches).
3. whole layer: every unit of ``--whole-layer`` at the full ``--steps``, batch by batch: the wall
   time of a real layer, and its s/unit from the batches after the first; then ``--more-layers``
   as in stage 2.
4. prediction: s/unit of each of the model's conv layers (measured; else interpolated in the layer's
   FLOPs per unit between the measured layers around it, or outside them a least-squares line), times its channels, summed; on N workers the
   units are split into N contiguous runs of equal cost (units are independent), and each worker
   also pays one compilation per layer it touches.

FLOPs are the convolutions' only: forward up to the target (its kernel sliced to the batch's
channels where render_exciters slices it) and the gradient with respect to the input, counted as
the forward's again; no weight gradients are computed.

Output: ``name=value`` lines as the figures come, then a table; with ``--out`` a results.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import ops  # noqa: E402

from generator.seeding import seed_weights  # noqa: E402
from generator.analysis import exciters  # noqa: E402
from generator.analysis.exciters import render  # noqa: E402
from generator.analysis.precision import resolve_precision  # noqa: E402
from generator.config import ExciterParams  # noqa: E402

IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications' "caffe" preprocessing of VGG
RESULTS: dict = {"figures": {}, "runs": []}


def caffe_preprocess(x):
    return ops.flip(ops.cast(x, "float32"), axis=-1) - ops.convert_to_tensor(IMAGENET_MEAN_BGR)


def figure(name: str, value) -> None:
    RESULTS["figures"][name] = value
    if isinstance(value, float):
        value = f"{value:.4g}"
    print(f"{name}={value}", flush=True)


def save(out: Path | None) -> None:
    if out is not None:
        (out / "results.json").write_text(json.dumps(RESULTS, indent=1, default=str))


# --- the model and its arithmetic ----------------------------------------------------------------


def conv_layers(model: keras.Model, canvas: int) -> list[dict]:
    """Each Conv2D in order: name, channels, forward FLOPs per image at canvas x canvas (sequential model)."""
    side, rows = canvas, []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            side = side if layer.padding == "same" else side - kh + 1
            rows.append({"layer": layer.name, "channels": int(cout), "flops": 2.0 * side * side * kh * kw * cin * cout})
        elif isinstance(layer, keras.layers.MaxPooling2D):
            side = side // layer.strides[0]
    return rows


def step_flops(convs: list[dict], layer: str, width: int) -> float:
    """Conv FLOPs of one optimisation step of one image for a target ``layer`` in a batch of ``width``."""
    total = 0.0
    for row in convs:
        if row["layer"] == layer:
            share = width / row["channels"] if width < row["channels"] else 1.0  # the sliced kernel
            return 2.0 * (total + row["flops"] * share)  # forward + gradient w.r.t. the input
        total += row["flops"]
    raise KeyError(layer)


def environment() -> None:
    import jax

    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        smi = "none"
    figure("device", smi or "none")
    figure("jax_devices", ",".join(str(d) for d in jax.devices()))
    figure("jax_version", jax.__version__)
    figure("keras_version", keras.__version__)
    figure("keras_backend", keras.backend.backend())
    figure("python", platform.python_version())
    figure("precision_auto_resolves_to", resolve_precision("auto"))


def matmul_peak(dtype: str, n: int) -> float:
    """TFLOP/s of an n^3 matmul in ``dtype`` (jax default precision), median of 10 after a warm-up."""
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(0)
    a = jax.random.normal(key, (n, n), dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), dtype)
    f = jax.jit(jnp.matmul)
    f(a, b).block_until_ready()
    times = []
    for _ in range(10):
        t = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / float(np.median(times)) / 1e12


# --- measuring render_exciters -------------------------------------------------------------------


def measure(model, convs, layer: str, width: int, precision: str, steps: int, size: int, batches: int,
            channels: list[int] | None = None) -> dict:
    """Run render_exciters on ``batches`` batches of ``width`` units of ``layer``; time each batch."""
    filters = next(r["channels"] for r in convs if r["layer"] == layer)
    width = min(width, filters)
    if channels is None:
        channels = [i % filters for i in range(width * batches)]  # repeats cost the same as new units
    params = ExciterParams(method="lucid", steps=steps, size=size, batch_size=width, precision=precision, seed=0)
    stamps: list[float] = []
    start = time.perf_counter()
    result = exciters.render_exciters(model, layer, channels, params, caffe_preprocess,
                                      progress=lambda n: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - start
    times = np.diff([start, *stamps])
    steady = float(np.median(times[1:])) if len(times) > 1 else float("nan")
    run = {
        "layer": layer, "width": width, "precision": precision, "steps": steps, "size": size,
        "units": len(channels), "batch_s": [round(float(t), 4) for t in times], "wall_s": wall,
        "compile_s": float(times[0] - steady), "steady_batch_s": steady,
        "s_per_unit_at_steps": steady / width,
        "finite": bool(np.isfinite(result.activation).all() and np.isfinite(result.start_activation).all()),
        "median_start": float(np.median(result.start_activation)),
        "median_reached": float(np.median(result.activation)),
        "tflops": step_flops(convs, layer, width) * width * steps / steady / 1e12,
    }
    RESULTS["runs"].append(run)
    return run


def show(run: dict, full_steps: int, tag: str) -> float:
    """Print a run's figures; return its s/unit scaled to ``full_steps``."""
    per_unit = run["s_per_unit_at_steps"] * full_steps / run["steps"]
    key = f"{tag}.{run['layer']}.{run['precision']}.b{run['width']}"
    figure(f"{key}.s_per_unit", per_unit)
    figure(f"{key}.compile_s", run["compile_s"])
    figure(f"{key}.conv_tflops", run["tflops"])
    figure(f"{key}.finite", run["finite"])
    run["s_per_unit"] = per_unit
    return per_unit


# --- the prediction -----------------------------------------------------------------------------


def predict(convs: list[dict], measured: dict[str, tuple[float, float]], width: int, workers: list[int]) -> list[dict]:
    """Per-layer s/unit and compile s (measured, else fitted on FLOPs per unit), and wall time on N workers."""
    names = list(measured)
    x = np.array([step_flops(convs, n, width) for n in names])
    y = np.array([measured[n][0] for n in names])
    if len(names) >= 2:
        slope, intercept = np.polyfit(x, y, 1)
    else:
        slope, intercept = y[0] / x[0], 0.0
    compile_mean = float(np.mean([measured[n][1] for n in names]))
    rows = []
    for row in convs:
        f = step_flops(convs, row["layer"], width)
        if row["layer"] in measured:
            s, c, how = measured[row["layer"]][0], measured[row["layer"]][1], "measured"
        elif x.min() <= f <= x.max():  # between measured layers: along the line joining its neighbours
            order = np.argsort(x)
            s, c, how = float(np.interp(f, x[order], y[order])), compile_mean, "interpolated"
        else:
            s, c, how = max(float(intercept + slope * f), 0.0), compile_mean, "fitted"
        rows.append({**row, "gflop_per_unit_step": f / 1e9, "s_per_unit": s, "compile_s": c, "source": how})
    costs = np.concatenate([np.full(r["channels"], r["s_per_unit"]) for r in rows])
    layer_of = np.concatenate([np.full(r["channels"], i) for i, r in enumerate(rows)])
    total = float(costs.sum())
    figure("predict.units", int(len(costs)))
    figure("predict.unit_seconds_total", total)
    figure("predict.compile_s_all_layers", float(sum(r["compile_s"] for r in rows)))
    cumulative = np.cumsum(costs)
    for n in workers:
        # contiguous runs of equal cost; each worker compiles each layer it touches once
        edges = np.searchsorted(cumulative, total * np.arange(1, n) / n)
        walls = []
        for part, idx in zip(np.split(costs, edges), np.split(layer_of, edges)):
            walls.append(float(part.sum()) + sum(rows[i]["compile_s"] for i in set(idx.tolist())))
        figure(f"predict.wall_s.gpus{n}", max(walls))
        figure(f"predict.wall_h.gpus{n}", max(walls) / 3600)
    return rows


# --- main ---------------------------------------------------------------------------------------


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CPU smoke test: 32 px, few steps, small batches")
    ap.add_argument("--steps", type=int, default=512)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--measure-steps", type=int, default=64, help="steps of the sweep and per-layer runs")
    ap.add_argument("--sweep", default="bfloat16:64,float32:64,bfloat16:128,bfloat16:32,float32:32,bfloat16:16",
                    help="precision:batch_size pairs of the sweep, most telling first")
    ap.add_argument("--sweep-layer", default="block4_conv1")
    ap.add_argument("--layers", default="block1_conv1,block2_conv1,block5_conv4",
                    help="layers timed in the best configuration before the whole layer")
    ap.add_argument("--more-layers", default="block4_conv4,block3_conv4,block5_conv1,block1_conv2,block2_conv2",
                    help="layers timed after the whole layer, while the budget lasts")
    ap.add_argument("--whole-layer", default="block3_conv1")
    ap.add_argument("--workers", default="1,8,64")
    ap.add_argument("--budget", type=float, default=330.0, help="seconds after which no new stage starts")
    ap.add_argument("--matmul", type=int, default=8192, help="side of the matmul peak check (0: skip)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.size, args.measure_steps, args.matmul = 24, 32, 20, 512
        args.sweep = "bfloat16:4,float32:4,float32:2"
        args.layers, args.whole_layer, args.more_layers = "block1_conv1", "block1_conv2", "block3_conv1"
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()

    def time_left(stage: str) -> bool:
        if time.perf_counter() - began > args.budget:
            figure(f"skipped.{stage}", f"budget {args.budget:.0f} s spent")
            return False
        return True

    environment()
    figure("recipe", f"lucid steps={args.steps} size={args.size} measure_steps={args.measure_steps}")
    seed_weights(0)
    model = keras.applications.VGG19(weights=None, include_top=False)
    canvas = render._canvas(model, ExciterParams(method="lucid", size=args.size))
    convs = conv_layers(model, canvas)
    figure("canvas_px", canvas)
    figure("model_conv_units", sum(r["channels"] for r in convs))
    if args.matmul:
        for dtype in ("bfloat16", "float32"):
            figure(f"matmul_tflops.{dtype}", matmul_peak(dtype, args.matmul))
    save(args.out)

    # 1. sweep
    sweep = []
    for pair in args.sweep.split(","):
        precision, width = pair.split(":")
        if not time_left(f"sweep.{precision}.b{width}"):
            continue
        run = measure(model, convs, args.sweep_layer, int(width), precision, args.measure_steps, args.size, 2)
        sweep.append((show(run, args.steps, "sweep"), run))
        save(args.out)
    if not sweep:
        return
    best_s, best = min(sweep, key=lambda item: item[0] if item[1]["finite"] else math.inf)
    precision, width = best["precision"], best["width"]
    figure("best.precision", precision)
    figure("best.batch_size", width)
    figure("best.s_per_unit", best_s)

    # 2. per-layer timings in the best configuration
    measured = {args.sweep_layer: (best_s, best["compile_s"])}

    def time_layers(layers: str) -> None:
        for layer in filter(None, layers.split(",")):
            if layer in measured or not time_left(f"layer.{layer}"):
                continue
            run = measure(model, convs, layer, width, precision, args.measure_steps, args.size, 2)
            measured[layer] = (show(run, args.steps, "layer"), run["compile_s"])
            save(args.out)

    time_layers(args.layers)

    # 3. a whole layer at the full step count
    if time_left(f"whole.{args.whole_layer}"):
        filters = next(r["channels"] for r in convs if r["layer"] == args.whole_layer)
        run = measure(model, convs, args.whole_layer, width, precision, args.steps, args.size, 0,
                      channels=list(range(filters)))
        per_unit = show(run, args.steps, "whole")
        figure(f"whole.{args.whole_layer}.wall_s", run["wall_s"])
        figure(f"whole.{args.whole_layer}.wall_s_per_unit", run["wall_s"] / run["units"])
        if args.whole_layer in measured:
            figure(f"whole.{args.whole_layer}.vs_short_run", per_unit / measured[args.whole_layer][0])
        else:
            measured[args.whole_layer] = (per_unit, run["compile_s"])
        save(args.out)
    time_layers(args.more_layers)

    # 4. prediction
    rows = predict(convs, measured, width, [int(n) for n in args.workers.split(",")])
    RESULTS["prediction"] = rows
    save(args.out)
    figure("target_0.2_s_per_unit_met_at_sweep_layer", best_s <= 0.2)
    weighted = sum(r["s_per_unit"] * r["channels"] for r in rows) / sum(r["channels"] for r in rows)
    figure("predict.mean_s_per_unit_all_units", weighted)
    figure("target_0.2_s_per_unit_met_on_average", weighted <= 0.2)

    print(f"\n{precision}, batch {width}, {args.steps} steps, {args.size} px (canvas {canvas})")
    print(f"{'layer':<14}{'units':>6}{'GFLOP/u/step':>13}{'s/unit':>9}{'compile s':>10}  source")
    for r in rows:
        print(f"{r['layer']:<14}{r['channels']:>6}{r['gflop_per_unit_step']:>13.1f}{r['s_per_unit']:>9.3f}"
              f"{r['compile_s']:>10.1f}  {r['source']}")
    print(f"total wall {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
