"""The exciter analyses: each unit's exciter, exciters of directions, diverse exciters and a unit's map
on its own exciter (a mixin of :class:`generator.analyses.Analyses`), with the job a worker runs."""

from __future__ import annotations

import dataclasses

import numpy as np
from tqdm import tqdm

from generator.analyses.parts import batch_parts
from generator.analysis.precision import resolve_precision
from generator.config import ExciterParams
from generator.executor import Job
from generator.results import Exciter, RecipeQuality, Unit


class ExciterAnalyses:
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
                for part in batch_parts(len(todo), width, self.executor.parts):
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


def exciter_key(params: ExciterParams) -> dict:
    """What an exciter depends on: the parameters with the precision resolved, without the batch size."""
    values = dataclasses.asdict(params)
    values["precision"] = resolve_precision(params.precision)
    del values["batch_size"]
    if params.method == "lucid":
        values["relu_gradient_override_steps"] = 16  # Lucid's exciters before it was added are stale
    return values


def _exciters_job(loaded, layer: str, channels: list[int], params: ExciterParams, width: int,
                  progress=None) -> list[Exciter]:
    from generator.analysis.exciters import render_exciters

    return render_exciters(loaded.features, layer, channels, params, loaded.preprocess, progress, width).exciters()
