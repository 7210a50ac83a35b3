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
                      f"Strongest inputs of {u} from {', '.join(direct.layers)}", "Frobenius norm of incoming kernel")
        previous = direct.layers[0] if len(direct.layers) == 1 else list(direct.layers)
        summary = {"previous": previous, "top": _input_records(direct, direct.top)}
        if c.expanded_supported:
            h, w = x.top_kernels.shape[:2]
            self._weights(x, p.circuit_file(u, "expanded-kernels.png"), p.circuit_file(u, "expanded-norms.png"),
                          p.circuit_file(u, "expanded.csv"),
                          f"Expanded weights of {x.layers[0]} on {u} ({h}x{w} window), top {len(x.top)} by norm",
                          f"Strongest inputs of {u} from {x.layers[0]}", "Frobenius norm of expanded weights")
            summary["expanded"] = {"layer": x.layers[0], "top": _input_records(x, x.top)}
        columns, edges = _diagram(c)
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
        files.write_csv(self.file(table), _input_records(w, w.inputs))


def _diagram(c: Circuit) -> tuple[list, list]:
    """The circuit diagram's columns (earlier layer, the direct layers in graph order, the unit) and edges."""
    u, direct, x = c.unit, c.direct, c.expanded
    columns = [(layer, [i.unit.channel for i in direct.top if i.unit.layer == layer]) for layer in direct.layers]
    columns = [column for column in columns if column[1]] + [(u.layer, [u.channel])]
    edges = [(_node(i.unit), _node(u), i.norm, i.net) for i in direct.top]
    if c.expanded_supported and x.top and x.layers[0] not in direct.layers:
        columns.insert(0, (x.layers[0], [i.unit.channel for i in x.top]))
        edges += [(_node(i.unit), _node(u), i.norm, i.net) for i in x.top]
        edges += [(_node(e.source), _node(e.target), e.norm, e.net) for e in c.edges]
    return columns, edges


def _node(unit: Unit) -> tuple[str, int]:
    return unit.layer, unit.channel


def _input_records(weights: CircuitWeights, rows) -> list[dict]:
    """One record per input; with a ``layer`` column first where the inputs come from several layers."""
    several = len(weights.layers) > 1
    return [{**({"layer": w.unit.layer} if several else {}), "rank": w.rank, "channel": w.unit.channel,
             "norm": w.norm, "excitatory": w.excitatory, "inhibitory": w.inhibitory, "net": w.net} for w in rows]
