"""The FLOP account of a cold build: each compute stage's FLOPs, seconds, GFLOP/s and the machine's peak.

    python benchmarks/bench_flops.py [--config site_config.yaml] [--peak-size 2048]

Builds the config in a fresh temporary project (empty cache), in this process, and counts the work
each stage asks for as it asks for it: the photos' predictions and activations, every exciter batch (recipe, steps,
canvas, items, the channels its objective needs; the configured directions render with the units of their layer, in
the exciters stage), every view, dataset-example pass (and the recipes' quality beside it) and attribution run, in FLOPs from
the model's layer shapes (``generator/analysis/flops.py``: forward passes and input gradients,
without the padding of a last batch: what the stage must do). The peak is a large matrix product
timed here in each precision the stages use, before (float32 and what ``auto`` resolves to) and after the build
(the better of the two: a shared machine's speed drifts). One line a stage:

    stage=<name> seconds=<s> gflops=<achieved> peak=<measured> fraction=<achieved/peak>

where a stage mixing precisions gets the peak its FLOPs would run at, and a last line
``build seconds=<s> compute_fraction=<sum of the stages' FLOP-times at peak / build seconds>``.
Diversity's steps count every channel of the unit's layer (its Gram matrices read them all). Classes
count their crops and images to the layer and every head run (the network less its part up to the
layer). Left out of the counts: NMF (groups, classes), the Gram matrices' products, objectives'
elementwise arithmetic, occlusion (not counted yet). A last line gives a 3x3 convolution's rate beside the
matmul's: where oneDNN's convolutions outrun its matrix product, a stage's fraction can pass 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this tree's generator, also where another checkout is installed (a "before" copy)
STAGES = ("predictions", "exciters", "diversity", "activations", "views", "groups", "examples", "attribution",
          "faithfulness", "classes")


class Account:
    """FLOPs by (stage, precision), and each stage's seconds."""

    def __init__(self):
        self.flops: dict[tuple[str, str], float] = defaultdict(float)
        self.seconds: dict[str, float] = {}
        self.current = ""

    def add(self, flops: float, precision: str) -> None:
        self.flops[self.current, precision] += flops

    @contextmanager
    def stage(self, name: str):
        previous, self.current = self.current, name
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
            self.current = previous
            print(f"# {name} {seconds:.1f} s", file=sys.stderr, flush=True)  # what a run cut short still shows


def measured_peak(precision: str, n: int, repeats: int = 5) -> float:
    """GFLOP/s of an (n, n) by (n, n) matrix product in ``precision``, the best of ``repeats``."""
    import keras
    import numpy as np

    from generator.analysis import backend
    from generator.analysis.flops import matmul_flops

    a = keras.ops.cast(keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(n, n)).astype("float32")),
                       precision)
    product = backend.compile_step(lambda x, y: keras.ops.matmul(x, y))
    return matmul_flops(n, n, n) / best_seconds(product, (a, a), repeats) / 1e9


def best_seconds(step, args: tuple, repeats: int) -> float:
    """The shortest of ``repeats`` timed calls of the compiled ``step(*args)``, after one that traces and warms it."""
    import keras

    keras.ops.convert_to_numpy(step(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(step(*args))
        best = min(best, time.perf_counter() - start)
    return best


CONV = (8, 56, 256)  # batch, side, channels in and out: a VGG block-3 convolution


def measured_conv_peak(precision: str, repeats: int = 5) -> float:
    """GFLOP/s of a 3x3 'same' convolution of shape CONV in ``precision``, the best of ``repeats``: oneDNN's
    convolutions can outrun its matrix product (AMX), which is what a stage's fraction above 1 means."""
    import keras
    import numpy as np

    from generator.analysis import backend

    batch, side, channels = CONV
    rng = np.random.default_rng(0)
    x, kernel = (keras.ops.cast(keras.ops.convert_to_tensor(rng.normal(size=shape).astype("float32")), precision)
                 for shape in ((batch, side, side, channels), (3, 3, channels, channels)))
    convolve = backend.compile_step(lambda a, k: keras.ops.conv(a, k, padding="same"))
    return 2 * batch * side * side * channels * channels * 9 / best_seconds(convolve, (x, kernel), repeats) / 1e9


def install_counters(account: Account) -> None:
    """Wrap the analyses' entry points so that each call adds its FLOPs to the current stage."""
    from generator import build

    build.stage = account.stage  # the build's stages (the analyses' own inner timings stay as they are)
    _count_images(account)
    _count_exciters(account)
    _count_views(account)
    _count_examples(account)
    _count_attribution(account)
    _count_faithfulness(account)
    _count_classes(account)


def _count_images(account: Account) -> None:
    """The photos' predictions (the whole network) and their activations (to the deepest layer asked; the compiled
    pass, which the activations stage alone runs), float32."""
    from generator.analysis import activations, predictions
    from generator.analysis.flops import forward_flops

    predict, compiled_activations = predictions.predict, activations.compiled_activations

    def counted_predict(loaded, pixels):
        side = loaded.network.input.shape[1] or pixels.shape[1]  # a fixed-size network sees the photos resized
        account.add(len(pixels) * forward_flops(loaded.network, side), "float32")
        return predict(loaded, pixels)

    def counted_activations(loaded, pixels, layers):
        account.add(len(pixels) * forward_flops(loaded.features, pixels.shape[1], _deepest(loaded, layers)), "float32")
        return compiled_activations(loaded, pixels, layers)

    predictions.predict, activations.compiled_activations = counted_predict, counted_activations


def _deepest(loaded, layers: list[str]) -> str:
    """The one of ``layers`` that comes last in the model's features."""
    return max(layers, key=[layer.name for layer in loaded.features.layers].index)


def _count_exciters(account: Account) -> None:
    """Every exciter batch (units, directions, diverse images, groups' directions): its steps and final values."""
    import numpy as np

    from generator.analysis import diversity
    from generator.analysis.exciters import render
    from generator.analysis.flops import forward_flops, step_flops
    from generator.analysis.precision import resolve_precision

    def counted(render_items, every_channel: bool):
        """``every_channel``: the steps compute all of the target's channels (diversity's Gram matrices)."""
        def counted_render_items(model, target, items, params, *args, **kwargs):
            canvas = render._canvas(model, params)
            targets = np.asarray(items.targets)
            needed = targets.shape[1] if targets.ndim == 2 else 1  # a direction's support, or one channel
            climbed = None if every_channel else needed
            per_item = params.steps * step_flops(model, canvas, target.name, climbed)
            per_item += (2 if params.method == "lucid" else 1) * forward_flops(model, params.size, target.name, needed)
            account.add(len(items.keys) * per_item, resolve_precision(params.precision))
            return render_items(model, target, items, params, *args, **kwargs)

        return counted_render_items

    render.render_items = counted(render.render_items, every_channel=False)
    diversity.render_items = counted(diversity.render_items, every_channel=True)


def _count_views(account: Account) -> None:
    from generator.analysis import views
    from generator.analysis.flops import forward_flops, step_flops
    from generator.analysis.precision import resolve_precision

    def counted_view(view, extra_forwards: int):
        def counted(model, layer, images, preprocess, steps, *args, **kwargs):
            precision = kwargs.get("batches", args[-1]).precision  # the view's Batches (its last argument)
            size, n = images.shape[1], len(images)
            work = steps * step_flops(model, size, layer) + extra_forwards * forward_flops(model, size, layer)
            account.add(n * work, resolve_precision(precision))
            return view(model, layer, images, preprocess, steps, *args, **kwargs)

        return counted

    views.deepdream = counted_view(views.deepdream, 1)  # the measure after (before: the first step's own pass)
    views.caricature = counted_view(views.caricature, 3)  # the target's activations, the measure before and after


def _count_examples(account: Account) -> None:
    """The dataset pass: every image through the model to the deepest of the layers (the winners' maps come from
    the same pass); and the recipes' quality: the exciters and the unit's top examples to the unit's layer."""
    from generator.analysis import examples
    from generator.analysis.exciters import quality
    from generator.analysis.flops import forward_flops

    shard, vectors = examples.example_shard, quality.layer_vectors

    def counted_shard(loaded, layers, paths, first, size, *args, **kwargs):
        account.add(len(paths) * forward_flops(loaded.features, size, _deepest(loaded, layers)), "float32")
        return shard(loaded, layers, paths, first, size, *args, **kwargs)

    def counted_vectors(loaded, layer, images):
        account.add(len(images) * forward_flops(loaded.features, images.shape[1], layer), "float32")
        return vectors(loaded, layer, images)

    examples.example_shard, quality.layer_vectors = counted_shard, counted_vectors


def _count_attribution(account: Account) -> None:
    from generator.analysis.attribution import maps, sanity

    run = maps.run

    def counted_run(method, scorer, images, targets, settings, selectors=None):
        account.add(_attribution_flops(method, scorer, images, targets, settings, selectors), settings.precision)
        return run(method, scorer, images, targets, settings, selectors)

    maps.run = sanity.run = counted_run


def _count_faithfulness(account: Account) -> None:
    """Faithfulness' forward passes: every item it scores (``site_results``' batched calls of a scorer's forward
    step), through the network of that scorer."""
    import numpy as np

    from generator.analysis.attribution import site_results
    from generator.analysis.attribution.scorer import Scorer
    from generator.analysis.flops import forward_flops

    forward_step, batched = Scorer.forward_step, site_results.batched
    nets: dict[int, Scorer] = {}  # each compiled forward step's scorer

    def counted_forward_step(scorer):
        step = forward_step(scorer)
        nets[id(step)] = scorer
        return step

    def counted_batched(step, inputs, selectors, batch_size, keep=None):
        scorer = nets[id(step)]
        net, unit = scorer.net, scorer.key[0] == "unit"
        size = np.asarray(inputs(np.arange(1))).shape[1]
        per_image = forward_flops(net, size, net.layers[-1].name if unit else None, 1 if unit else None)
        account.add(len(selectors) * per_image, net.layers[-1].compute_dtype)
        return batched(step, inputs, selectors, batch_size, keep)

    Scorer.forward_step = counted_forward_step
    site_results.batched = counted_batched


def _attribution_flops(method, scorer, images, targets, settings, selectors) -> float:
    """One attribution run's FLOPs: every (image, target) pair's forward passes and gradients."""
    from generator.analysis.flops import forward_flops

    net, size = scorer.net, images.shape[1]
    unit = scorer.key[0] == "unit"
    forward = forward_flops(net, size, net.layers[-1].name if unit else None, 1 if unit else None)
    pairs = len(images) * len(targets)
    ranking = len(images) * forward if scorer.key[0] == "classes" and selectors is None else 0
    if method in ("gradcam", "gradcam_plus_plus"):  # the forward, and the gradient down to the CAM's layer only
        below = forward_flops(net, size, scorer.gradcam_layer(settings))
        return ranking + pairs * (2 * forward - below)
    per_pair = {"saliency": 2 * forward, "smoothgrad": settings.samples * 2 * forward + forward,
                "integrated_gradients": settings.steps * 2 * forward + 2 * forward}.get(method, 0)  # occlusion: not counted
    return ranking + pairs * per_pair


def _count_classes(account: Account) -> None:
    """The class concepts: crops and images to the layer (with the held tensors: the whole network), and every
    head run (the network's FLOPs less those up to the layer, at the size last encoded); their pictures are
    direction exciters, counted with the exciters' batches."""
    from generator.analysis.after_layer import LayerHead
    from generator.analysis.flops import forward_flops

    encode, scores = LayerHead.encode, LayerHead.scores

    def counted_encode(head, pixels, held=True):
        head.counted_size = pixels.shape[1]
        account.add(len(pixels) * forward_flops(head.network, pixels.shape[1], None if held else head.layer), "float32")
        return encode(head, pixels, held)

    def counted_scores(head, activations, held):
        size = getattr(head, "counted_size", head.input_size)
        per = forward_flops(head.network, size) - forward_flops(head.network, size, head.layer)
        account.add(len(activations) * per, "float32")
        return scores(head, activations, held)

    LayerHead.encode, LayerHead.scores = counted_encode, counted_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "site_config.yaml")
    parser.add_argument("--peak-size", type=int, default=2048, help="side of the timed matrix product")
    args = parser.parse_args()
    config_path = args.config.resolve()

    from generator import quiet

    quiet.quiet_python_warnings()
    quiet.import_keras()
    from generator.analysis.precision import resolve_precision
    from generator.build import build_site
    from generator.config import load_config

    account = Account()
    install_counters(account)
    project = Path(tempfile.mkdtemp(prefix="bench-flops-"))
    try:
        shutil.copy(REPO / "mkdocs.yml", project)
        os.environ.setdefault("TQDM_DISABLE", "1")
        before = {p: measured_peak(p, args.peak_size) for p in {"float32", resolve_precision("auto")}}
        start = time.perf_counter()
        build_site(load_config(config_path), project)
        build_seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(project, ignore_errors=True)
    used = sorted({p for _, p in account.flops})
    # The best of before and after the build: a shared machine's speed drifts, and a peak measured in a slow
    # moment would make the stages look faster than the machine.
    peaks = {p: max(before.get(p, 0.0), measured_peak(p, args.peak_size)) for p in used}
    at_peak_total = 0.0
    for name in STAGES:
        if name not in account.seconds:
            continue
        work = {p: f for (s, p), f in account.flops.items() if s == name}
        flops = sum(work.values())
        at_peak = sum(f / (peaks[p] * 1e9) for p, f in work.items())
        at_peak_total += at_peak
        seconds = account.seconds[name]
        achieved = flops / seconds / 1e9
        peak = flops / at_peak / 1e9 if at_peak else 0.0
        print(f"stage={name} seconds={seconds:.1f} gflops={achieved:.1f} peak={peak:.1f} "
              f"fraction={achieved / peak if peak else 0.0:.3f}")
    print(f"build seconds={build_seconds:.1f} compute_fraction={at_peak_total / build_seconds:.3f}")
    print("peaks " + " ".join(f"{p}={g:.1f}" for p, g in peaks.items()) + f" (GFLOP/s, {args.peak_size}^3 matmul)")
    batch, side, channels = CONV
    print("conv " + " ".join(f"{p}={measured_conv_peak(p):.1f}" for p in peaks)
          + f" (GFLOP/s, 3x3 convolution of {batch}x{side}x{side}x{channels} to {channels} channels)")


if __name__ == "__main__":
    main()
