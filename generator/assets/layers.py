"""The model-wide files: a layer's exciter grid and the directions' exciters (a mixin of
:class:`generator.assets.AssetWriter`)."""

from __future__ import annotations

import numpy as np

from generator import figures
from generator.assets import files


class ModelAssets:
    def grid(self) -> None:
        g, layer = self.site.grid, self.site.grid.layer
        self.figure(self.paths.layer_file(layer, "exciter-grid.png"), figures.exciter_grid,
                    np.stack([e.image for e in g.exciters]), [u.channel for u in g.units],
                    title=f"Exciters of {layer}, channels 0-{len(g.units) - 1}", per_row=self.config.exciters.grid.per_row)
        files.write_csv(self.file(self.paths.layer_file(layer, "exciter-grid.csv")),
                        [{"channel": u.channel, "activation": e.activation, "start_activation": e.start_activation}
                         for u, e in zip(g.units, g.exciters)])

    def directions(self) -> None:
        records = []
        for i, d in enumerate(self.site.directions):
            self.figure(self.paths.direction_exciter(i), figures.save_rgb, d.exciter.image)
            records.append({"direction": d.text, "layer": d.layer, "weights": d.weights,
                            "activation": d.exciter.activation, "start_activation": d.exciter.start_activation})
        files.write_json(self.file(self.paths.model_file("directions.json")), records)
