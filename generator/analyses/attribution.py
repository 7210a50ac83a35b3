"""The attribution analyses: every configured method's maps on the photos and a unit's Grad-CAM on its
dataset examples (a mixin of :class:`generator.analyses.Analyses`), with the job a worker runs."""

from __future__ import annotations

import dataclasses

import numpy as np
from tqdm import tqdm

from generator.analysis.precision import resolve_precision
from generator.executor import Job
from generator.results import Attribution, Faithfulness, InputImage, Unit


class AttributionAnalyses:
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

    def faithfulness(self, images: list[InputImage], units: list[Unit],
                     attributions: tuple[Attribution, ...]) -> tuple[Faithfulness, ...]:
        """How faithful each target's maps are (``attribution.faithfulness``): one job a target, in order."""
        a = self.config.attribution
        groups: dict[str, list[Attribution]] = {}
        for found in attributions:
            groups.setdefault(found.target, []).append(found)
        if not (a.faithfulness.enabled and groups):
            return ()
        pixels = np.stack([im.pixels for im in images])
        keys = {target: self._key("faithfulness", target, [im.digest for im in images], self.config.images.size,
                                  attribution_key(a), a.faithfulness, units) for target in groups}

        def compute(missing: list[str]) -> dict[str, Faithfulness]:
            from generator.analysis.attribution import FaithfulnessSettings

            targets = {t.label: t for t in self._attribution_targets(units)}
            measure = FaithfulnessSettings(steps=a.faithfulness.steps, samples=a.faithfulness.samples, seed=a.seed)
            jobs = [Job(_faithfulness_job, (pixels, targets[t], groups[t], self._attribution_settings(), measure))
                    for t in missing]
            with tqdm(total=len(jobs), desc="faithfulness", unit="target", disable=None) as bar:
                return dict(zip(missing, self.executor.run(jobs, bar.update)))

        found = self.cache.values(keys, Faithfulness, compute)
        return tuple(found[t] for t in groups)

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
        return attribution_settings(self.config.attribution)


def attribution_settings(section):
    """The maps' settings (``AttributionSettings``) of the config's ``attribution`` section, its precision resolved."""
    from generator.analysis import attribution

    return attribution.AttributionSettings(layer=section.layer or None, samples=section.samples, noise=section.noise,
                                           steps=section.steps, baseline=section.baseline, seed=section.seed,
                                           precision=resolve_precision(section.precision))


def attribution_key(section) -> dict:
    """What attribution maps depend on: the section with its precision resolved, without faithfulness
    (which reads the maps)."""
    values = {**dataclasses.asdict(section), "precision": resolve_precision(section.precision)}
    del values["faithfulness"]
    return values


def _attribution_job(loaded, pixels: np.ndarray, targets: list, method: str, settings, sanity: bool,
                     progress=None) -> tuple[Attribution, ...]:
    from generator.analysis.attribution import site_attributions

    found = site_attributions(loaded, pixels, targets, method, settings, sanity)
    if progress is not None:
        progress(1)
    return found


def _faithfulness_job(loaded, pixels: np.ndarray, target, found: list[Attribution], settings, measure,
                      progress=None) -> Faithfulness:
    from generator.analysis.attribution import site_faithfulness

    found = site_faithfulness(loaded, pixels, target, found, settings, measure)
    if progress is not None:
        progress(1)
    return found
