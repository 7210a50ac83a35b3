"""Seconds a class of the class pages' CRAFT concepts, stage by stage, at the default sizes.

    python benchmarks/bench_classes.py [--quick] [--model vgg16-hed] [--images 50] [--size 224]

The default site's model (vgg16-hed: one "output" class over the configured images and the
examples folder, as ``classes.output`` builds it), at ``classes``' defaults (10 concepts, 8 crops an
image, a Sobol design of 32, 20 random directions) and its default layer; ``--model`` takes a
keras.applications name (random weights: timings only) for a classifier's class, the images' most
predicted class. The stages are timed by wrapping the analysis module's steps, so the numbers are
those of the build's own code:

- crops: the seeded boxes, cut and resized;
- activations: the crops and the images through the network to the layer (and the held tensors);
- nmf: the factorisation and the images written in the concepts;
- importance: the Sobol total indices (N x (k + 2) head runs an image);
- deletion: each concept zeroed, and the random floor;
- pictures: the concepts' exciters (``classes.method``, maco, at ``classes.exciter_size``, the default
  exciter steps), rendered together;
- class: all of it. ``--quick``: 8 images, a design of 8, 4 exciter steps.

One line a figure, ``name=value``; the CPU model and the load are for the reader to add.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = {"crops": ("crop_boxes", "cut_crops"), "activations": (),
         "nmf": ("factorise",), "importance": ("sobol_importance",),
         "deletion": ("deletion_drops", "random_floor")}


def timed_steps(seconds: dict) -> None:
    """Wrap the concept module's steps (and the head's encoder) so that each call adds its seconds."""
    from generator.analysis import after_layer, concepts

    def wrap(owner, name, stage):
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                seconds[stage] += time.perf_counter() - start
        setattr(owner, name, timed)

    for stage, names in STEPS.items():
        for name in names:
            wrap(concepts, name, stage)
    wrap(concepts.Factorisation, "transform", "nmf")
    wrap(after_layer.LayerHead, "encode", "activations")


def class_images(model, args):
    from generator.analysis.concepts import ClassImages
    from generator.config import list_images, load_config
    from generator.images import read_square

    config = load_config(ROOT / "site_config.yaml")
    examples = list_images(ROOT / "images" / "examples", recursive=True)
    files = [ROOT / "images" / name for name in config.images.files] + examples
    pixels = __import__("numpy").stack([read_square(p, args.size) for p in files[:args.images]])
    if model.output_kind != "classes":
        return ClassImages("output", None, "all", tuple(files[:args.images]), pixels)
    top = model.predict(pixels.astype("float32")).argmax(axis=-1)
    k = int(__import__("numpy").bincount(top).argmax())
    return ClassImages(f"class {k}", k, "predicted", tuple(files[:args.images]), pixels[top == k])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", default="vgg16-hed")
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    if args.quick:
        args.images = 8

    import dataclasses

    import keras

    from generator.analysis.after_layer import last_spatial_layer
    from generator.analysis.concepts import ConceptSettings, class_concepts
    from generator.analysis.exciters import render_directions
    from generator.config import ClassesSection, ExcitersSection, ModelSection
    from generator.models import load_model

    model = load_model(ModelSection(name=args.model, weights="bundled" if args.model == "vgg16-hed" else "none"), ROOT)
    images = class_images(model, args)
    section = ClassesSection()
    settings = ConceptSettings(concepts=section.concepts, crops=section.crops, crop_size=section.crop_size,
                               design=8 if args.quick else section.design, top_crops=section.top_crops,
                               random_directions=section.random_directions, seed=section.seed)
    layer = last_spatial_layer(model)
    print(f"model={args.model} layer={layer} class={images.name} images={len(images.pixels)} size={args.size} "
          f"concepts={settings.concepts} crops={settings.crops} design={settings.design} "
          f"backend={keras.backend.backend()} cpus={os.cpu_count()}")
    seconds: dict = defaultdict(float)
    timed_steps(seconds)
    start = time.perf_counter()
    found = class_concepts(model, layer, images, settings)
    for name in STEPS:
        print(f"{name}={seconds[name]:.1f}", flush=True)
    print(f"deletion_correlation={found.deletion_correlation:.3f} random_floor={found.random_floor:.4g} "
          f"mean_score={found.mean_score:.4g} importances={[round(c.importance, 3) for c in found.concepts]} "
          f"drops={[round(c.deletion_drop, 4) for c in found.concepts]}", flush=True)
    picture_start = time.perf_counter()
    exciters = ExcitersSection()
    params = dataclasses.replace(exciters.params(section.exciter_size), method=section.method,
                                 steps=4 if args.quick else exciters.steps)
    vectors = __import__("numpy").stack([c.vector for c in found.concepts])
    render_directions(model.features, layer, vectors, params, model.preprocess)
    seconds["pictures"] = time.perf_counter() - picture_start
    seconds["class"] = time.perf_counter() - start
    for name in ("pictures", "class"):
        print(f"{name}={seconds[name]:.1f}")


if __name__ == "__main__":
    main()
