"""The circuit analyses: a unit's circuit and each layer's links to its neighbours (a mixin of
:class:`generator.analyses.Analyses`)."""

from __future__ import annotations

from generator.results import Circuit, LayerLinks, Unit


class CircuitAnalyses:
    def circuit(self, unit: Unit) -> Circuit:
        c = self.config.circuits

        def compute() -> Circuit:
            from generator.analysis.circuits import circuit

            return circuit(self.model.features, unit, c.top_k, c.earlier_layer, c.window or None, size)

        size = self.config.images.size  # places merged paths after strided "same" layers in any-size models
        return self.cache.value(self._key("circuit-v2", unit.layer, unit.channel, c, size), Circuit, compute)

    def layer_links(self, layer: str) -> LayerLinks:
        def compute() -> LayerLinks:
            from generator.analysis.circuits import layer_links

            return layer_links(self.model.features, layer)

        return self.cache.value(self._key("neighbours-v2", layer), LayerLinks, compute)
