"""Each photo's attribution files: a figure per target (the methods side by side), the raw maps and a
JSON summary (a mixin of :class:`generator.assets.AssetWriter`)."""

from __future__ import annotations

import numpy as np

from generator import figures, saved_arrays
from generator.assets import files
from generator.results import ImageResult
from generator.saved_arrays import largest_magnitude


class AttributionAssets:
    def attribution(self, index: int, result: ImageResult) -> None:
        """Each target's maps on image ``index``: one figure (the methods side by side, each on the scale it
        shares with every image), the raw maps (``.npy``, see :mod:`generator.saved_arrays`) and a JSON summary."""
        im, summary = result.image, []
        for target, found in self.site.attribution_targets().items():
            self.figure(self.paths.attribution(im.slug, found[0].slug), figures.attribution_overlays, im.pixels,
                        np.stack([a.maps[index] for a in found]), [a.title for a in found],
                        [_scale(a.maps) for a in found], title=f"Where the evidence for {target} is: {im.file}")
            path = self.file(self.paths.attribution(im.slug, found[0].slug, ".npy"))
            saved_arrays.save_maps(path, np.stack([a.maps[index] for a in found]))
            summary += [_attribution_record(a, index) for a in found]
        if summary:
            files.write_json(self.file(self.paths.image_file(im.slug, "attribution.json")), summary)


def _scale(maps: np.ndarray) -> tuple[float, float]:
    """One colour scale for a method's maps on every image: 0 to the maximum, or symmetric when signed."""
    top = largest_magnitude(maps)
    return (-top, top) if np.nanmin(maps) < 0 else (0.0, float(np.nanmax(maps)) or 1.0)


def _attribution_record(a, index: int) -> dict:
    m = a.maps[index]
    record = {"target": a.target, "method": a.method, "settings": a.settings, "score": float(a.scores[index]),
              "min": float(m.min()), "max": float(m.max()), "sum": float(m.sum())}
    if a.classes:
        record["class"] = a.classes[index]
    if a.layer:
        record["layer"] = a.layer
    if a.baseline_scores is not None:
        record["baseline_score"] = float(a.baseline_scores[index])
    if a.sanity is not None:
        record["sanity_spearman"] = float(a.sanity[index])
        record["randomised_layers"] = list(a.randomised)
    return record
