"""Every analysis the site needs, each one a cache key and a call into :mod:`generator.analysis`.

A key hashes everything the result depends on (the model's fingerprint, the image bytes, the
parameters), so a rebuild with nothing changed finds every result and never loads the model.
The analysis modules import Keras; they are imported here only on a cache miss.

The heavy analyses (exciters, dataset examples, attribution) are cut into jobs for the build's
executor (:mod:`generator.executor`): one per layer here, parts of layers on a cluster, cut at
batch boundaries so that both give the same results.

By topic, each a mixin of :class:`Analyses` over the cache and the model it holds: :mod:`.images`
(prediction, activations, views, groups), :mod:`.exciters`, :mod:`.circuits`, :mod:`.examples`,
:mod:`.attribution`, :mod:`.dashboards`, :mod:`.classes`; each module also holds the jobs its analyses hand the executor. A new analysis
goes in its topic's module, or in a new one added to :class:`Analyses`' bases.
"""

from __future__ import annotations

from functools import cached_property

from generator.analyses.attribution import AttributionAnalyses, attribution_key
from generator.analyses.circuits import CircuitAnalyses
from generator.analyses.classes import ClassAnalyses
from generator.analyses.dashboards import DashboardAnalyses
from generator.analyses.examples import ExampleAnalyses
from generator.analyses.exciters import ExciterAnalyses, exciter_key
from generator.analyses.images import ImageAnalyses
from generator.cache import Cache, digest
from generator.config import Config
from generator.executor import InProcess
from generator.models import describe_model, load_model
from generator.results import LayerInfo
from generator.timing import stage

__all__ = ["Analyses", "attribution_key", "exciter_key"]


class Analyses(ImageAnalyses, ExciterAnalyses, CircuitAnalyses, ExampleAnalyses, AttributionAnalyses,
               DashboardAnalyses, ClassAnalyses):
    """Every analysis the site needs, over ``cache``; the model is loaded on the first miss."""

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

        # records count each layer's calls: records cached before they did would read 1 for a shared layer
        return self.cache.value(self._key("architecture", "calls"), tuple[LayerInfo, ...], compute)

    @cached_property
    def description(self) -> str:
        return self.cache.value(self._key("model-description"), str, lambda: self.model.description)
