"""Each photo's attribution files: a figure per target (the methods side by side), the raw maps and a
JSON summary (a mixin of :class:`generator.assets.AssetWriter`)."""

from __future__ import annotations

import numpy as np

from generator import figures, saved_arrays
from generator.assets import files
from generator.results import Faithfulness, ImageResult
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
            faithful = self.site.faithfulness_of(target)
            summary += [_attribution_record(a, index, faithful) for a in found]
        if summary:
            files.write_json(self.file(self.paths.image_file(im.slug, "attribution.json")), summary)

    def faithfulness(self, index: int, result: ImageResult) -> None:
        """Each target's deletion and insertion curves on image ``index`` (methods, then the random floor),
        where the score on the photo is positive (else the curves are undefined and the page says so)."""
        for target, found in self.site.attribution_targets().items():
            faithful = self.site.faithfulness_of(target)
            if faithful is None or not faithful.defined(index):
                continue
            rankings = faithful.rankings
            self.figure(self.paths.faithfulness(result.image.slug, found[0].slug), figures.faithfulness_curves,
                        [*(a.title for a in found), "random order"],
                        np.stack([s.deletion[index] for s in rankings]), np.stack([s.insertion[index] for s in rankings]),
                        title=f"Deleting and inserting the pixels of {result.image.file}, ranked by each map ({target})")


def _scale(maps: np.ndarray) -> tuple[float, float]:
    """One colour scale for a method's maps on every image: 0 to the maximum, or symmetric when signed."""
    top = largest_magnitude(maps)
    return (-top, top) if np.nanmin(maps) < 0 else (0.0, float(np.nanmax(maps)) or 1.0)


def _attribution_record(a, index: int, faithful: Faithfulness | None) -> dict:
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
    if faithful is not None:
        record["faithfulness"] = {"baseline": faithful.baseline, "steps": faithful.steps, "samples": faithful.samples,
                                  **_faithfulness_scores(faithful.of(a.method), index),
                                  "random": _faithfulness_scores(faithful.random, index)}
    return record


def _faithfulness_scores(s, index: int) -> dict:
    """One ranking's scores on image ``index`` (NaN where undefined)."""
    return {"deletion_auc": float(s.deletion_auc[index]), "insertion_auc": float(s.insertion_auc[index]),
            "mu_fidelity": float(s.mu_fidelity[index]),
            "deletion": s.deletion[index].astype(float).tolist(), "insertion": s.insertion[index].astype(float).tolist()}
