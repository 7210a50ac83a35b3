"""Exciters: for each unit (layer, channel), an image that drives the unit as high (or as low) as it goes,
and how well each recipe's image stands for its unit.

Three recipes, each optimising a batch of units together, one image per unit: the lab's
``gradient_ascent`` (:mod:`.lab`), Lucid's (:mod:`.lucid`) and MACO (:mod:`.maco`). They share the batch
result and loop (:mod:`.batch`) and the objectives (:mod:`.objectives`), and never import one another;
:mod:`.render` picks the recipe a render asks for. :mod:`.quality` measures any recipe's exciters.
"""

from generator.analysis.exciters.batch import ExciterResult, Items, batch_width
from generator.analysis.exciters.fourier import irfft2
from generator.analysis.exciters.lab import start_image
from generator.analysis.exciters.lucid import adam_ascent, lucid_transforms, spectrum_scale, spectrum_to_rgb
from generator.analysis.exciters.objectives import (
    as_rgb, channel_maps, direction_objective, every_channel_maps, map_objective, own_channel, unit_maps, unit_objective)
from generator.analysis.exciters.render import RECIPES, render_directions, render_exciters, render_items

__all__ = [
    "RECIPES", "ExciterResult", "Items", "adam_ascent", "as_rgb", "batch_width", "channel_maps",
    "direction_objective", "every_channel_maps", "irfft2", "map_objective", "own_channel", "lucid_transforms", "render_directions", "render_exciters", "render_items",
    "spectrum_scale", "spectrum_to_rgb", "start_image", "unit_maps", "unit_objective",
]
