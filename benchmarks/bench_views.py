"""The cost of the views beyond one exciter per unit, for the default config's images and layers.

    python benchmarks/bench_views.py [--config site_config.yaml] [--quick]

Times (wall and process CPU seconds: on a shared machine the CPU seconds divided by the cores
estimate an idle machine's wall time), uncached, each view the config asks for (DeepDream and Caricature of every image at each of
``views.layers``, each featured unit's exciter by the other recipe, ``exciters.diversity`` exciters of
each featured unit, the ``exciters.directions``, the
activation groups) and their total, one figure a line, with the CPU model. ``--quick`` takes two images,
a quarter of the steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np

from generator.config import image_files, load_config
from generator.images import load_images
from generator.model_checks import configured_directions
from generator.models import load_model


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="site_config.yaml")
    parser.add_argument("--quick", action="store_true", help="two images, a quarter of the steps")
    args = parser.parse_args()
    config = load_config(args.config)
    images = load_images(image_files(config), config.images.size)
    if args.quick:
        images = images[:2]
    fraction = 4 if args.quick else 1
    loaded = load_model(config.model, config.root)
    model, preprocess = loaded.features, loaded.preprocess
    pixels = np.stack([im.pixels for im in images])
    v, e = config.views, config.exciters
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(name: str, run) -> None:
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        timings[name], cpu[name] = time.perf_counter() - start, time.process_time() - start_cpu
        print(f"{name}: seconds={timings[name]:.1f} cpu_seconds={cpu[name]:.1f}", flush=True)

    print(f"cpu={cpu_model()!r} images={len(images)} size={config.images.size} views_layers={list(v.layers)} "
          f"featured={len(config.units)} diversity={e.diversity} directions={len(e.directions)} "
          f"groups_layers={list(config.groups.layers)} precision={e.precision}")
    from generator.analysis.views import Batches, caricature, deepdream

    for layer in v.layers:
        timed(f"deepdream {layer}", lambda: deepdream(model, layer, pixels, preprocess, v.deepdream_steps // fraction,
                                                      v.deepdream_step_size, Batches(e.batch_size, e.precision)))
        timed(f"caricature {layer}", lambda: caricature(model, layer, pixels, preprocess,
                                                        v.caricature_steps // fraction, e.seed,
                                                        Batches(e.batch_size, e.precision)))
    params = dataclasses.replace(e.params(), steps=e.steps // fraction)
    if config.units:
        from generator.analysis.exciters import render_exciters

        for layer in dict.fromkeys(u.layer for u in config.units):
            channels = [u.channel for u in config.units if u.layer == layer]
            other = "lucid" if e.method == "gradient_ascent" else "gradient_ascent"
            timed(f"featured units by the other recipe ({other}) {layer} ({len(channels)})",
                  lambda: render_exciters(model, layer, channels, dataclasses.replace(params, method=other), preprocess))
    if e.diversity and config.units:
        from generator.analysis.diversity import render_diverse

        for layer in dict.fromkeys(u.layer for u in config.units):
            channels = [u.channel for u in config.units if u.layer == layer]
            timed(f"diversity {layer} ({len(channels)} units x {e.diversity})",
                  lambda: render_diverse(model, layer, channels, e.diversity, e.diversity_weight,
                                         dataclasses.replace(params, method="lucid"), preprocess))
    if e.directions:
        from generator.analysis.exciters import render_directions
        from generator.analysis.graph import summarise

        found = configured_directions(config, summarise(model))
        for layer in dict.fromkeys(spec.layer for spec, _ in found):
            vectors = np.stack([vec for spec, vec in found if spec.layer == layer])
            timed(f"directions {layer} ({len(vectors)})", lambda: render_directions(model, layer, vectors, params,
                                                                                   preprocess))
    if config.groups.layers:
        from generator.analysis.activations import layer_activations
        from generator.analysis.exciters import render_directions
        from generator.analysis.groups import activation_groups

        g = config.groups
        group_params = dataclasses.replace(e.params(g.exciter_size), steps=e.steps // fraction,
                                           method=g.method or e.method)
        for layer in g.layers:
            found = []
            timed(f"groups {layer} NMF ({len(images)} images x {g.count})",
                  lambda: found.extend(activation_groups(a, g.count, e.seed)
                                       for a in layer_activations(loaded, pixels, [layer])[layer]))
            vectors = np.concatenate([f.directions for f in found])
            timed(f"groups {layer} exciters ({len(vectors)})",
                  lambda: render_directions(model, layer, vectors, group_params, preprocess))
    print(f"total: seconds={sum(timings.values()):.1f} cpu_seconds={sum(cpu.values()):.1f} "
          f"(cpu_seconds / cores: the wall time on an otherwise idle machine, roughly; cores={os.cpu_count()})")


if __name__ == "__main__":
    main()
