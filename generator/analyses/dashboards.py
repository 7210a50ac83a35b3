"""The unit dashboards' class effects (a mixin of :class:`generator.analyses.Analyses`); their activation
statistics come with the dataset examples (:mod:`generator.analyses.examples`)."""

from __future__ import annotations

import numpy as np

from generator.results import ClassEffects, InputImage


class DashboardAnalyses:
    def class_effects(self, layer: str, images: list[InputImage]) -> ClassEffects:
        """How every unit of ``layer`` moves the logits, over ``images`` (or why the model has no classes)."""
        def compute() -> ClassEffects:
            from generator.analysis.class_effects import layer_class_effects

            return layer_class_effects(self.model, layer, np.stack([im.pixels for im in images]))

        key = self._key("class-effects", layer, [im.digest for im in images], self.config.images.size)
        return self.cache.value(key, ClassEffects, compute)
