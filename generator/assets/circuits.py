"""A featured unit's circuit files: its kernels, norms and tables on each side, and the diagram
(a mixin of :class:`generator.assets.AssetWriter`)."""

from __future__ import annotations

import numpy as np

from generator import figures
from generator.assets import files
from generator.circuit_diagram import circuit_diagram
from generator.results import Circuit, CircuitWeights, Unit


class CircuitAssets:
    def circuit(self, c: Circuit) -> dict:
        """A supported circuit's tables, kernels and diagram; returns its summary for ``unit.json``."""
        u, p, direct, x = c.unit, self.paths, c.direct, c.expanded
        h, w = direct.top_kernels.shape[:2]
        self._weights(direct, p.unit_file(u, "incoming-kernels.png"), p.unit_file(u, "incoming-norms.png"),
                      p.unit_file(u, "circuit.csv"), f"Incoming {h}x{w} kernels of {u}, top {len(direct.top)} by norm",
                      f"Strongest inputs of {u} from {direct.layer}", "Frobenius norm of incoming kernel")
        summary = {"previous": direct.layer, "top": [_input_record(i) for i in direct.top]}
        columns = [(direct.layer, [i.unit.channel for i in direct.top]), (u.layer, [u.channel])]
        edges = [(_node(i.unit), _node(u), i.norm, i.net) for i in direct.top]
        if c.expanded_supported:
            h, w = x.top_kernels.shape[:2]
            self._weights(x, p.circuit_file(u, "expanded-kernels.png"), p.circuit_file(u, "expanded-norms.png"),
                          p.circuit_file(u, "expanded.csv"),
                          f"Expanded weights of {x.layer} on {u} ({h}x{w} window), top {len(x.top)} by norm",
                          f"Strongest inputs of {u} from {x.layer}", "Frobenius norm of expanded weights")
            summary["expanded"] = {"layer": x.layer, "top": [_input_record(i) for i in x.top]}
            if x.top and x.layer != direct.layer:
                columns.insert(0, (x.layer, [i.unit.channel for i in x.top]))
                edges += [(_node(i.unit), _node(u), i.norm, i.net) for i in x.top]
                edges += [(_node(e.source), _node(e.target), e.norm, e.net) for e in c.edges]
        thumbnails = {(layer, ch): self.site.units[Unit(layer, ch)].exciter.image
                      for layer, channels in columns for ch in channels if Unit(layer, ch) in self.site.units}
        self.figure(p.circuit_file(u, "diagram.png"), circuit_diagram, columns, edges, title=f"Circuit into {u}",
                    thumbnails=thumbnails)
        return summary

    def _weights(self, w: CircuitWeights, kernels: str, norms: str, table: str, kernels_title: str, norms_title: str,
                 xlabel: str) -> None:
        """One side of a circuit: its top kernels on one scale, their norms as bars, every input as CSV."""
        names = [str(i.unit) for i in w.top]
        self.figure(kernels, figures.kernel_heatmaps, np.asarray(w.top_kernels, dtype=np.float32), names,
                    title=kernels_title)
        self.figure(norms, figures.norm_bar, names, [i.norm for i in w.top], title=norms_title, xlabel=xlabel)
        files.write_csv(self.file(table), [_input_record(i) for i in w.inputs])


def _node(unit: Unit) -> tuple[str, int]:
    return unit.layer, unit.channel


def _input_record(w) -> dict:
    return {"rank": w.rank, "channel": w.unit.channel, "norm": w.norm, "excitatory": w.excitatory,
            "inhibitory": w.inhibitory, "net": w.net}
