"""Each photo's files: its input, predictions or output map, views, activation groups and feature maps
(a mixin of :class:`generator.assets.AssetWriter`)."""

from __future__ import annotations

import dataclasses

from generator import figures
from generator.assets import files
from generator.results import ImageResult


class ImageAssets:
    def image(self, result: ImageResult) -> None:
        im, p = result.image, self.paths
        self.figure(p.image_file(im.slug, "input.png"), figures.save_rgb, im.pixels)
        prediction = result.prediction
        if prediction.top5:
            top5 = prediction.top5
            self.figure(p.image_file(im.slug, "predictions.png"), figures.top_predictions_bar,
                        [c.name for c in top5], [c.probability for c in top5], title=f"Top-5 predictions: {im.file}")
            files.write_json(self.file(p.image_file(im.slug, "predictions.json")),
                             [_score_record(c) for c in top5])
        else:
            m = prediction.output_map
            self.figure(p.image_file(im.slug, "output.png"), figures.output_map, im.pixels, m,
                        title=f"Model output: {im.file}")
            files.write_json(self.file(p.image_file(im.slug, "output.json")),
                             {"shape": list(m.shape), "mean": float(m.mean()), "max": float(m.max()),
                              "fraction_above_0.5": float((m > 0.5).mean())})
        for layer, views in result.views.items():
            self.figure(p.image_view(im.slug, layer, "deepdream"), figures.save_rgb, views.deepdream.image)
            self.figure(p.image_view(im.slug, layer, "caricature"), figures.save_rgb, views.caricature.image)
        if result.views:
            files.write_json(self.file(p.image_file(im.slug, "views.json")),
                             {layer: {"deepdream": {"mean_squared_activation": [v.deepdream.start_activation,
                                                                                 v.deepdream.activation]},
                                      "caricature": {"cosine_similarity": [v.caricature.start_activation,
                                                                           v.caricature.activation]}}
                              for layer, v in result.views.items()})
        for layer, groups in result.groups.items():
            self.figure(p.image_groups(im.slug, layer), figures.activation_groups, im.pixels, groups.maps,
                        title=f"Activation groups of {im.file} at {layer} (NMF, {len(groups.maps)} groups)")
            for k, e in enumerate(groups.exciters):
                self.figure(p.group_exciter(im.slug, layer, k), figures.save_rgb, e.image)
        if result.groups:
            files.write_json(self.file(p.image_file(im.slug, "groups.json")),
                             {layer: {"reconstruction_error": g.error, "random_factorisation_error": g.random_error,
                                      "groups": [{"group": k + 1, "strongest_channels": [c for c, _ in g.strongest(k, 8)],
                                                  "direction": g.directions[k],
                                                  "exciter_activation": g.exciters[k].activation if g.exciters else None}
                                                 for k in range(len(g.directions))]}
                              for layer, g in result.groups.items()})
        for layer in self.config.feature_maps.layers:
            self.figure(p.feature_maps(im.slug, layer), figures.feature_map_grid, result.activations[layer],
                        title=f"{layer} feature maps on {im.file} (each map normalised on its own)",
                        per_row=self.config.feature_maps.per_row)


def _score_record(score) -> dict:
    """A class's row of predictions.json: its logit too where the head gives logits."""
    record = dataclasses.asdict(score)
    if record["logit"] is None:
        del record["logit"]
    return record
