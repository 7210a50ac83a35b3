"""Every analysis the site needs, each one a cache key and a call into :mod:`generator.analysis`.

A key hashes everything the result depends on (the model's fingerprint, the image bytes, the
parameters), so a rebuild with nothing changed finds every result and never loads the model.
The analysis modules import Keras; they are imported here only on a cache miss.

The heavy analyses (exciters, dataset examples, attribution) are cut into jobs for the build's
executor (:mod:`generator.executor`): one per layer here, parts of layers on a cluster, cut at
batch boundaries so that both give the same results.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

from generator.analysis.precision import resolve_precision
from generator.cache import Cache, digest
from generator.config import Config, ExciterParams
from generator.executor import InProcess, Job
from generator.models import describe_model, load_model
from generator.results import (
    ActivationGroups, Attribution, Circuit, DatasetExamples, Exciter, ImageViews, InputImage, LayerInfo, LayerLinks,
    Prediction, Unit,
)
from generator.timing import stage


class Analyses:
    def __init__(self, config: Config, cache: Cache, executor=None):
        self.config = config
        self.cache = cache
        self.spec = describe_model(config.model, config.root)
        self.executor = executor or InProcess(lambda: self.model)

    def _key(self, *parts: object) -> str:
        return digest(parts[0], self.spec.fingerprint, *parts[1:])

    @cached_property
    def model(self):
        """The loaded model: only when a result is missing from the cache."""
        with stage("load model"):
            return load_model(self.config.model, self.config.root)

    @cached_property
    def layers(self) -> tuple[LayerInfo, ...]:
        def compute() -> tuple[LayerInfo, ...]:
            from generator.analysis.graph import summarise

            return summarise(self.model.features)

        return self.cache.value(self._key("architecture"), tuple[LayerInfo, ...], compute)

    @cached_property
    def description(self) -> str:
        return self.cache.value(self._key("model-description"), str, lambda: self.model.description)

    def prediction(self, image: InputImage) -> Prediction:
        def compute() -> Prediction:
            from generator.analysis.predictions import predict

            return predict(self.model, image.pixels)

        return self.cache.value(self._key("prediction", image.digest, self.config.images.size), Prediction, compute)

    def activations(self, image: InputImage, layers: list[str]) -> dict[str, np.ndarray]:
        """Activations (h, w, C) of ``image`` at each layer, one forward pass for all missing ones."""
        keys = {name: self._key("activations", image.digest, self.config.images.size, name) for name in layers}

        def compute(missing: list[str]) -> dict[str, np.ndarray]:
            from generator.analysis.activations import layer_activations

            return {name: a[0] for name, a in layer_activations(self.model, image.pixels[None], missing).items()}

        return self.cache.values(keys, np.ndarray, compute)

    def exciters(self, units: list[Unit], params: ExciterParams, what: str) -> dict[Unit, Exciter]:
        """Exciters of ``units``; the missing ones are rendered together, a batch per layer."""
        # The precision decided here, for the keys and the jobs alike: a worker's CPU may differ from this machine's.
        params = dataclasses.replace(params, precision=resolve_precision(params.precision))
        keys = {u: self._key("exciter", u.layer, u.channel, exciter_key(params)) for u in units}

        def compute(missing: list[Unit]) -> dict[Unit, Exciter]:
            from generator.analysis.exciters import batch_width

            jobs, order = [], []
            for layer in sorted({u.layer for u in missing}):
                todo = [u for u in missing if u.layer == layer]
                width = batch_width(len(todo), params.batch_size)
                for part in _parts(len(todo), width, self.executor.parts):
                    channels = [todo[i].channel for i in part]
                    jobs.append(Job(_exciters_job, (layer, channels, params, width), len(part)))
                    order += [todo[i] for i in part]
            with tqdm(total=len(missing), desc=what, unit="unit", disable=None) as bar:
                found = self.executor.run(jobs, bar.update)
            return dict(zip(order, (e for part in found for e in part)))

        return self.cache.values(keys, Exciter, compute)

    def direction_exciters(self, layer: str, vectors: list[np.ndarray], params: ExciterParams,
                           what: str) -> list[Exciter]:
        """Exciters of directions over ``layer``'s channels; the missing ones rendered together."""
        keys = {i: self._key("direction", layer, v, exciter_key(params)) for i, v in enumerate(vectors)}

        def compute(missing: list[int]) -> dict[int, Exciter]:
            from generator.analysis.exciters import render_directions

            with tqdm(total=len(missing), desc=what, unit="direction", disable=None) as bar:
                result = render_directions(self.model.features, layer, np.stack([vectors[i] for i in missing]), params,
                                           self.model.preprocess, bar.update)
            return dict(zip(missing, result.exciters()))

        return list(self.cache.values(keys, Exciter, compute).values())

    def diverse_exciters(self, units: list[Unit], count: int, weight: float,
                         params: ExciterParams) -> dict[Unit, tuple[Exciter, ...]]:
        """``count`` exciters of each unit pushed apart by Lucid's diversity term; missing ones a batch per layer."""
        keys = {u: self._key("diverse", u.layer, u.channel, count, weight, exciter_key(params)) for u in units}

        def compute(missing: list[Unit]) -> dict[Unit, tuple[Exciter, ...]]:
            from generator.analysis.diversity import render_diverse

            rendered = {}
            with tqdm(total=len(missing) * count, desc="diverse exciters", unit="image", disable=None) as bar:
                for layer in sorted({u.layer for u in missing}):
                    todo = [u for u in missing if u.layer == layer]
                    found = render_diverse(self.model.features, layer, [u.channel for u in todo], count, weight,
                                           params, self.model.preprocess, bar.update).exciters()
                    rendered.update((u, tuple(found[i * count:(i + 1) * count])) for i, u in enumerate(todo))
            return rendered

        return self.cache.values(keys, tuple[Exciter, ...], compute)

    def layer_views(self, images: list[InputImage], layer: str) -> dict[str, ImageViews]:
        """DeepDream and Caricature of each image at ``layer``; the missing images in one batch."""
        v, seed = self.config.views, self.config.exciters.seed
        precision = resolve_precision(self.config.exciters.precision)
        keys = {im.slug: self._key("views", im.digest, self.config.images.size, layer, v, seed, precision)
                for im in images}
        by_slug = {im.slug: im for im in images}

        def compute(slugs: list[str]) -> dict[str, ImageViews]:
            from generator.analysis.views import batch_count, caricature, deepdream

            pixels, batch = np.stack([by_slug[slug].pixels for slug in slugs]), self.config.exciters.batch_size
            steps = batch_count(len(slugs), batch) * (v.deepdream_steps + v.caricature_steps)
            with stage(f"views {layer} ({len(slugs)} images)"), \
                    tqdm(total=steps, desc=f"views {layer} (DeepDream, Caricature)", unit="step", disable=None) as bar:
                dream = deepdream(self.model.features, layer, pixels, self.model.preprocess, v.deepdream_steps,
                                  v.deepdream_step_size, batch, precision, bar.update)
                cari = caricature(self.model.features, layer, pixels, self.model.preprocess, v.caricature_steps, seed,
                                  batch, precision, bar.update)
            return {slug: ImageViews(d, c) for slug, d, c in zip(slugs, dream.exciters(), cari.exciters())}

        return self.cache.values(keys, ImageViews, compute)

    def activation_groups(self, image: InputImage, layer: str, activations: np.ndarray) -> ActivationGroups:
        """The image's activations (h, w, C) at ``layer`` split into ``groups.count`` groups."""
        count, seed = self.config.groups.count, self.config.exciters.seed

        def compute() -> ActivationGroups:
            from generator.analysis.groups import activation_groups

            return activation_groups(activations, count, seed)

        key = self._key("groups", image.digest, self.config.images.size, layer, count, seed)
        return self.cache.value(key, ActivationGroups, compute)

    def exciter_map(self, unit: Unit, exciter: Exciter) -> np.ndarray:
        """The unit's (h, w) map on its own exciter."""

        def compute() -> np.ndarray:
            from generator.analysis.activations import layer_activations

            return layer_activations(self.model, exciter.image[None], [unit.layer])[unit.layer][0, ..., unit.channel]

        return self.cache.value(self._key("exciter-map", unit.layer, unit.channel, exciter.image), np.ndarray, compute)

    def circuit(self, unit: Unit) -> Circuit:
        c = self.config.circuits

        def compute() -> Circuit:
            from generator.analysis.circuits import circuit

            return circuit(self.model.features, unit, c.top_k, c.earlier_layer, c.window or None)

        return self.cache.value(self._key("circuit", unit.layer, unit.channel, c), Circuit, compute)

    def layer_links(self, layer: str) -> LayerLinks:
        def compute() -> LayerLinks:
            from generator.analysis.circuits import layer_links

            return layer_links(self.model.features, layer)

        return self.cache.value(self._key("neighbours", layer), LayerLinks, compute)

    def examples(self, layers: list[str], files: list[Path], listing: str) -> dict[str, DatasetExamples]:
        """Top images of the examples folder for every channel of each of ``layers``; ``listing`` keys the
        folder. Each layer's images are searched in shards (one here), whose top tables are merged."""
        size, top_n = self.config.images.size, self.config.browse.examples_top_n
        keys = {layer: self._key("examples", layer, listing, top_n, size) for layer in layers}

        def compute(missing: list[str]) -> dict[str, DatasetExamples]:
            from generator.analysis import examples

            shards = _parts(len(files), examples.BATCH, self.executor.parts)
            jobs = [Job(_example_shard_job, (missing, files[s.start:s.stop], s.start, size, top_n), len(s))
                    for s in shards]
            with tqdm(total=len(files), desc="dataset examples", unit="image", disable=None) as bar:
                found = self.executor.run(jobs, bar.update)
            tables = {layer: examples.merge_tables([f[layer] for f in found], top_n) for layer in missing}
            images = {layer: t.image for layer, t in tables.items()}
            parts = _parts(len(examples.needed_images(images)), examples.BATCH, self.executor.parts)
            jobs = [Job(_example_maps_job, (images, files, size, part), len(part)) for part in parts]
            with tqdm(total=sum(len(p) for p in parts), desc="example maps", unit="image", disable=None) as bar:
                maps = examples.merge_maps(images, parts, self.executor.run(jobs, bar.update))
            return examples.finish_examples(self.model, tables, maps, size)

        return self.cache.values(keys, DatasetExamples, compute)

    def attributions(self, images: list[InputImage], units: list[Unit]) -> tuple[Attribution, ...]:
        """Every configured method's maps of every target on ``images``: the top classes (classifiers),
        the output map's mean (map models), ``units``; grouped by target, then method."""
        a = self.config.attribution
        methods = list(dict.fromkeys(a.methods))
        pixels = np.stack([im.pixels for im in images])
        keys = {method: self._key("attribution", method, [im.digest for im in images], self.config.images.size,
                                  attribution_key(a), units) for method in methods}

        def compute(missing: list[str]) -> dict[str, tuple[Attribution, ...]]:
            targets = self._attribution_targets(units)
            if not targets:
                return {m: () for m in missing}
            jobs = [Job(_attribution_job, (pixels, targets, m, self._attribution_settings(), a.sanity_check))
                    for m in missing]
            with tqdm(total=len(jobs), desc="attribution", unit="method", disable=None) as bar:
                return dict(zip(missing, self.executor.run(jobs, bar.update)))

        found = self.cache.values(keys, tuple[Attribution, ...], compute)
        targets = list(dict.fromkeys(r.target for rs in found.values() for r in rs))
        return tuple(r for t in targets for m in methods for r in found[m] if r.target == t)

    def example_gradcam(self, unit: Unit, pixels: np.ndarray, digests: list[str]) -> Attribution:
        """The unit's Grad-CAM on its dataset examples (``pixels``; ``digests`` key them)."""
        def compute() -> Attribution:
            from generator.analysis import attribution

            target = attribution.UnitTarget(unit.layer, unit.channel)
            (result,) = attribution.site_attributions(self.model, pixels, [target], "gradcam",
                                                      self._attribution_settings(), sanity=False)
            return result

        key = self._key("example-gradcam", unit.layer, unit.channel, digests, attribution_key(self.config.attribution))
        return self.cache.value(key, Attribution, compute)

    def _attribution_targets(self, units: list[Unit]) -> list:
        from generator.analysis import attribution

        a = self.config.attribution
        if self.model.output_kind == "classes":
            targets = [attribution.ClassTarget(rank=k) for k in range(1, a.classes + 1)]
        else:
            targets = [attribution.OutputTarget()] if a.output else []
        return targets + ([attribution.UnitTarget(u.layer, u.channel) for u in units] if a.units else [])

    def _attribution_settings(self):
        from generator.analysis import attribution

        a = self.config.attribution
        return attribution.AttributionSettings(layer=a.layer or None, samples=a.samples, noise=a.noise, steps=a.steps,
                                               baseline=a.baseline, seed=a.seed,
                                               precision=resolve_precision(a.precision))


def attribution_key(section) -> dict:
    """What attribution maps depend on: the section with its precision resolved."""
    return {**dataclasses.asdict(section), "precision": resolve_precision(section.precision)}


def exciter_key(params: ExciterParams) -> dict:
    """What an exciter depends on: the parameters with the precision resolved, without the batch size."""
    values = dataclasses.asdict(params)
    values["precision"] = resolve_precision(params.precision)
    del values["batch_size"]
    if params.method == "lucid":
        values["relu_gradient_override_steps"] = 16  # Lucid's exciters before it was added are stale
    return values


def _parts(count: int, width: int, parts: int) -> list[range]:
    """``range(count)`` cut into at most ``parts`` runs as even as whole batches of ``width`` allow,
    each starting at a multiple of ``width`` (so each part sees the batches of one pass over all)."""
    if count == 0:
        return []
    batches = math.ceil(count / width)
    step = width * math.ceil(batches / max(1, min(parts, batches)))
    return [range(start, min(start + step, count)) for start in range(0, count, step)]


# --- the jobs an executor runs: (loaded model, *args, progress) -> a picklable result ------------


def _exciters_job(loaded, layer: str, channels: list[int], params: ExciterParams, width: int,
                  progress=None) -> list[Exciter]:
    from generator.analysis.exciters import render_exciters

    return render_exciters(loaded.features, layer, channels, params, loaded.preprocess, progress, width).exciters()


def _example_shard_job(loaded, layers: list[str], files: list[Path], first: int, size: int, top_n: int,
                       progress=None) -> dict:
    from generator.analysis.examples import example_shard

    return example_shard(loaded, layers, files, first, size, top_n, progress)


def _example_maps_job(loaded, images: dict[str, np.ndarray], files: list[Path], size: int, part: range,
                      progress=None) -> dict[str, np.ndarray]:
    from generator.analysis.examples import BATCH, example_maps

    maps = example_maps(loaded, images, files, size, BATCH, part)
    if progress is not None:
        progress(len(part))
    return maps


def _attribution_job(loaded, pixels: np.ndarray, targets: list, method: str, settings, sanity: bool,
                     progress=None) -> tuple[Attribution, ...]:
    from generator.analysis.attribution import site_attributions

    found = site_attributions(loaded, pixels, targets, method, settings, sanity)
    if progress is not None:
        progress(1)
    return found
