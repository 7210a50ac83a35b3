"""Each unit's files: its exciter, maps, recipes, diverse exciters, dataset examples and ``unit.json``
(a mixin of :class:`generator.assets.AssetWriter`)."""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path

import numpy as np

from generator import figures
from generator.assets import dashboards
from generator.assets import files
from generator.geometry import box_map, peak_crop
from generator.images import read_square
from generator.pixels import upsample
from generator.results import UnitResult


class UnitAssets:
    @cached_property
    def strip_tiles(self) -> np.ndarray:
        """The site's images as every unit's activation strip shows them, resized once (:func:`figures.strip_tiles`)."""
        return figures.strip_tiles(np.stack([r.image.pixels for r in self.site.images]))

    def unit(self, result: UnitResult) -> None:
        u, p = result.unit, self.paths
        labels = [r.image.slug for r in self.site.images]
        shown = len(result.maps)  # the first images' maps (browse.unit_maps)
        self.picture(p.unit_picture(u, "exciter"), figures.save_rgb, result.exciter.image)
        if result.exciter.alpha is not None:
            self.picture(p.unit_picture(u, "exciter-alpha"), figures.transparent_exciter, result.exciter.image,
                         result.exciter.alpha)
        self.picture(p.unit_strip(u), figures.activation_strip, self.strip_tiles[:shown],
                     np.stack(list(result.maps.values())),
                     labels[:shown])
        if result.featured:
            self.picture(p.unit_picture(u, "exciter-map"), figures.activation_overlay, result.exciter.image,
                         result.exciter_map, title=f"{u} on its own exciter")
            for r in self.site.images:
                self.picture(p.unit_map(u, r.image.slug), figures.activation_overlay, r.image.pixels,
                             result.maps[r.image.slug], title=f"{u} on {r.image.file}")
        for method, e in result.recipes.items():
            self.picture(p.unit_recipe(u, method), figures.save_rgb, e.image)
        for k, e in enumerate(result.diverse):
            self.picture(p.unit_diverse(u, k), figures.save_rgb, e.image)
        if result.examples:
            crops, maps = self._example_crops(result)
            self.picture(p.unit_picture(u, "examples"), figures.example_crops, crops, maps,
                         [x.score for x in result.examples], title=f"Images that excite {u} most")
        if result.example_gradcam:
            whole = np.stack([self.example_pixels[x.image] for x in result.examples])
            self.picture(p.unit_picture(u, "examples-gradcam"), figures.example_crops, whole,
                         result.example_gradcam.maps, [x.score for x in result.examples],
                         title=f"Grad-CAM of {u} at {result.example_gradcam.layer} on its top images",
                         label="Grad-CAM")
        data = {
            "layer": u.layer, "channel": u.channel,
            "exciter": {"size": int(result.exciter.image.shape[0]), "activation": result.exciter.activation,
                        "start_activation": result.exciter.start_activation},
            "stats": dataclasses.asdict(result.stats),
            "maps": {slug: dataclasses.asdict(s) for slug, s in result.map_stats.items()},
            "incoming": [_link_record(link) for link in result.incoming],
            "outgoing": [_link_record(link) for link in result.outgoing],
            "examples": [{"rank": x.rank, "file": x.file, "image": x.image, "score": x.score, "y": x.y, "x": x.x}
                         for x in result.examples],
        }
        if result.recipes:
            data["recipes"] = {method: {"activation": e.activation, "start_activation": e.start_activation,
                                        **_quality_record(result.recipe_quality.get(method))}
                               for method, e in result.recipes.items()}
        if result.diverse:
            data["diverse"] = [{"activation": e.activation, "start_activation": e.start_activation}
                               for e in result.diverse]
        data.update(dashboards.unit_files(self, result))
        c = result.circuit
        if c and c.supported:
            data["circuit"] = self.circuit(c)
        files.write_json(self.file(p.unit_file(u, "unit.json")), data)

    def _example_crops(self, result: UnitResult) -> tuple[np.ndarray, np.ndarray]:
        """Square crops around each example's peak, sized to the receptive field, with the map over the
        same square; the whole image where the receptive field is unknown (a model that is not a chain)."""
        rf = result.receptive_field
        crops, maps = [], []
        for x in result.examples:
            crop, box = peak_crop(self.example_pixels[x.image], rf, x.y, x.x)
            crops.append(crop)
            maps.append(upsample(x.map, crop.shape[:2]) if box is None else box_map(rf, x.map, box))
        return np.stack(crops), np.stack(maps)


class ExamplePixels:
    """Pixels of example images, read once each and only when a figure needs them."""

    def __init__(self, paths: list[Path], size: int):
        self.paths, self.size, self.loaded = paths, size, {}

    def __getitem__(self, index: int) -> np.ndarray:
        if index not in self.loaded:
            self.loaded[index] = read_square(self.paths[index], self.size, "dataset examples")
        return self.loaded[index]


def _link_record(link) -> dict:
    return {"layer": link.unit.layer, "channel": link.unit.channel, "norm": link.norm}


def _quality_record(quality) -> dict:
    """A recipe's quality for unit.json (none where the unit has no dataset examples)."""
    return {} if quality is None else {"ratio_to_best_example": quality.ratio, "plausibility": quality.plausibility}
