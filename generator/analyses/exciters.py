"""The exciter analyses: each unit's exciter, exciters of directions, diverse exciters and a unit's map
on its own exciter (a mixin of :class:`generator.analyses.Analyses`), with the job a worker runs."""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

from generator.analyses.parts import batch_parts
from generator.analysis.precision import resolve_precision
from generator.cache import digest
from generator.config import ExciterParams
from generator.executor import Job
from generator.images import example_image_files, file_digest
from generator.results import Exciter, RecipeQuality, Unit


class ExciterAnalyses:
    def exciters(self, units: list[Unit], params: ExciterParams, what: str) -> dict[Unit, Exciter]:
        """Exciters of ``units``; the missing ones are rendered together, a batch per layer."""
        # The precision decided here, for the keys and the jobs alike: a worker's CPU may differ from this machine's.
        params = dataclasses.replace(params, precision=resolve_precision(params.precision))
        source, spectrum = self.maco_spectrum(params)
        keys = {u: self._unit_key(u, params, source) for u in units}

        def compute(missing: list[Unit]) -> dict[Unit, Exciter]:
            from generator.analysis.exciters import batch_width

            jobs, order = [], []
            for layer in sorted({u.layer for u in missing}):
                todo = [u for u in missing if u.layer == layer]
                width = batch_width(len(todo), params.batch_size)
                for part in batch_parts(len(todo), width, self.executor.parts):
                    channels = [todo[i].channel for i in part]
                    jobs.append(Job(_exciters_job, (layer, channels, params, width, spectrum), len(part)))
                    order += [todo[i] for i in part]
            with tqdm(total=len(missing), desc=what, unit="unit", disable=None) as bar:
                found = self.executor.run(jobs, bar.update)
            return dict(zip(order, (e for part in found for e in part)))

        return self.cache.values(keys, Exciter, compute)

    def direction_exciters(self, layer: str, vectors: list[np.ndarray], params: ExciterParams,
                           what: str) -> list[Exciter]:
        """Exciters of directions over ``layer``'s channels; the missing ones rendered together."""
        source, spectrum = self.maco_spectrum(params)
        keys = {i: self._direction_key(layer, v, params, source) for i, v in enumerate(vectors)}

        def compute(missing: list[int]) -> dict[int, Exciter]:
            from generator.analysis.exciters import render_directions

            with tqdm(total=len(missing), desc=what, unit="direction", disable=None) as bar:
                result = render_directions(self.model.features, layer, np.stack([vectors[i] for i in missing]), params,
                                           self.model.preprocess, bar.update, spectrum)
            return dict(zip(missing, result.exciters()))

        return list(self.cache.values(keys, Exciter, compute).values())

    def exciters_with_directions(self, units: list[Unit], directions: list[tuple[str, np.ndarray]],
                                 params: ExciterParams, what: str) -> tuple[dict[Unit, Exciter], list[Exciter]]:
        """Exciters of ``units`` and of ``directions`` ((layer, vector over its channels) pairs), all with
        ``params``: the missing units of a layer that has directions are rendered in one batch with its missing
        directions, each unit as its one-hot direction (the same objective and random numbers: the same image
        as its own render where the batch is the same), the other layers' units by :meth:`exciters`. Each image
        is its own cache entry, under the key :meth:`exciters` or :meth:`direction_exciters` gives it. The folded
        units render in this process, not through the executor (a layer's directions are a handful), and a
        bfloat16 render that gives NaN is rendered again in float32 as a whole, the folded units with it."""
        layers = {layer for layer, _ in directions}
        found = self.exciters([u for u in units if u.layer not in layers], params, what)
        source, spectrum = self.maco_spectrum(params)
        folded = [u for u in units if u.layer in layers]
        keys = {u: self._unit_key(u, params, source) for u in folded}
        keys.update({i: self._direction_key(layer, v, params, source) for i, (layer, v) in enumerate(directions)})
        channels = {r.name: r.channels for r in self.layers}

        def compute(missing: list) -> dict:
            from generator.analysis.exciters import render_directions

            layer_of = {k: k.layer if isinstance(k, Unit) else directions[k][0] for k in missing}
            rendered = {}
            with tqdm(total=len(missing), desc=what, unit="exciter", disable=None) as bar:
                for layer in sorted(set(layer_of.values())):
                    todo = [k for k in missing if layer_of[k] == layer]
                    vectors = np.stack([_one_hot(channels[layer], k.channel) if isinstance(k, Unit)
                                        else directions[k][1] for k in todo])
                    result = render_directions(self.model.features, layer, vectors, params, self.model.preprocess,
                                               bar.update, spectrum)
                    rendered.update(zip(todo, result.exciters()))
            return rendered

        together = self.cache.values(keys, Exciter, compute)
        return {**found, **{u: together[u] for u in folded}}, [together[i] for i in range(len(directions))]

    def _unit_key(self, unit: Unit, params: ExciterParams, source: str) -> str:
        return self._key("exciter", unit.layer, unit.channel, exciter_key(params, source))

    def _direction_key(self, layer: str, vector: np.ndarray, params: ExciterParams, source: str) -> str:
        return self._key("direction", layer, vector, exciter_key(params, source))

    def diverse_exciters(self, units: list[Unit], count: int, weight: float,
                         params: ExciterParams) -> dict[Unit, tuple[Exciter, ...]]:
        """``count`` exciters of each unit pushed apart by Lucid's diversity term; missing ones a batch per layer."""
        # bfloat16 renders' Gram matrices were float32 before: those entries are stale (float32 renders' are not)
        gram = ["bfloat16 Gram"] if resolve_precision(params.precision) == "bfloat16" else []
        keys = {u: self._key("diverse", u.layer, u.channel, count, weight, exciter_key(params), *gram) for u in units}

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

    def maco_spectrum(self, params: ExciterParams) -> tuple[str, np.ndarray | None]:
        """What MACO's magnitude is for ``params`` and the magnitude to pass it: ("", None) for another method,
        ("imagenet", None) for ImageNet's (read from the xplique wheel as it renders), or ("images <digest of the
        files>", the examples folder's average spectrum at images.size), computed once and cached."""
        if params.method != "maco":
            return "", None
        channels, wanted = self.layers[0].output_shape[-1], params.maco_spectrum
        if wanted == "imagenet" or (wanted == "auto" and channels == 3):
            return "imagenet", None
        files, listing = self._spectrum_files
        size = self.config.images.size

        def compute() -> np.ndarray:
            from generator.analysis.exciters.maco import folder_magnitude

            return folder_magnitude(files, size, channels)

        return f"images {listing}", self.cache.value(self._key("maco-spectrum", listing, size), np.ndarray, compute)

    @cached_property
    def _spectrum_files(self) -> tuple[list[Path], str]:
        """The examples folder's files and a digest of their bytes: read once a build, however many renders ask."""
        files = example_image_files(self.config)
        return files, digest([file_digest(p) for p in files])

    def exciter_map(self, unit: Unit, exciter: Exciter) -> np.ndarray:
        """The unit's (h, w) map on its own exciter."""

        def compute() -> np.ndarray:
            from generator.analysis.activations import layer_activations

            return layer_activations(self.model, exciter.image[None], [unit.layer])[unit.layer][0, ..., unit.channel]

        return self.cache.value(self._key("exciter-map", unit.layer, unit.channel, exciter.image), np.ndarray, compute)

    def recipe_quality(self, unit: Unit, recipes: dict[str, Exciter], examples: np.ndarray,
                       digests: list[str]) -> dict[str, RecipeQuality]:
        """Each recipe's exciter of the unit against its top examples (``examples`` at the exciters' size)."""
        def compute() -> dict[str, RecipeQuality]:
            from generator.analysis.exciters.quality import exciter_quality

            images = np.stack([e.image for e in recipes.values()])
            found = exciter_quality(self.model, unit.layer, images, [unit.channel] * len(recipes),
                                    [examples] * len(recipes))
            return dict(zip(recipes, found))

        key = self._key("recipe-quality", unit.layer, unit.channel, digests, [e.image for e in recipes.values()])
        return self.cache.value(key, dict[str, RecipeQuality], compute)


def _one_hot(channels: int, channel: int) -> np.ndarray:
    vector = np.zeros(channels, np.float32)
    vector[channel] = 1.0
    return vector


def exciter_key(params: ExciterParams, spectrum: str = "") -> dict:
    """What an exciter depends on: the parameters with the precision resolved, without the batch size, and for
    maco the source of its magnitude ``spectrum`` (see :meth:`ExciterAnalyses.maco_spectrum`) for the setting."""
    values = dataclasses.asdict(params)
    values["precision"] = resolve_precision(params.precision)
    del values["batch_size"], values["maco_spectrum"], values["maco_crops"]
    if params.method == "lucid":
        values["relu_gradient_override_steps"] = 16  # Lucid's exciters before it was added are stale
    if params.method == "maco":
        values.update(maco_spectrum=spectrum, maco_crops=params.maco_crops)
    return values


def _exciters_job(loaded, layer: str, channels: list[int], params: ExciterParams, width: int,
                  spectrum: np.ndarray | None = None, progress=None) -> list[Exciter]:
    from generator.analysis.exciters import render_exciters

    return render_exciters(loaded.features, layer, channels, params, loaded.preprocess, progress, width,
                           spectrum).exciters()
