"""The files beside the pages: figures (rendered through the cache) and the data behind them.

Every number a page shows is also written here as JSON or CSV, next to its figure. Every file
name comes from :class:`generator.site_paths.SitePaths`, which the pages use to link to them.
Figures the cache lacks are rendered over the machine's cores by a pool of fresh ("spawn")
processes: the build has TensorFlow loaded, which must not be forked, and the figure functions
import none of it. Each figure's bytes depend on its inputs alone, so the pool changes no file.

By what they show, each a mixin of :class:`AssetWriter`: :mod:`.images`, :mod:`.attribution`,
:mod:`.units`, :mod:`.circuits`, :mod:`.layers` (grid, directions); the unit dashboards (:mod:`.dashboards`)
and the class pages (:mod:`.classes`) are functions of the writer; :mod:`.files` writes the JSON and
CSV, :mod:`.rendering` the pool that draws the figures.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable


from generator import canvas, figures
from generator.assets import classes, dashboards
from generator.assets.attribution import AttributionAssets
from generator.assets.circuits import CircuitAssets
from generator.assets import files
from generator.assets.images import ImageAssets
from generator.assets.layers import ModelAssets
from generator.assets.rendering import FigurePool
from generator.assets.units import UnitAssets, ExamplePixels
from generator.cache import Cache, copy_figure
from generator.concept_links import site_links
from generator.config import Config
from generator.machine import cores
from generator.model_checks import input_size
from generator.results import Site
from generator.site_paths import SitePaths

__all__ = ["AssetWriter", "write_assets"]


class AssetWriter(ImageAssets, AttributionAssets, UnitAssets, CircuitAssets, ModelAssets):
    """Writes one site's files under ``out``, figures through the cache."""

    def __init__(self, out: Path, cache: Cache, site: Site, config: Config):
        self.out, self.cache, self.site, self.config = out, cache, site, config
        self.paths = SitePaths(site.model, config.browse.image_format)
        self.example_pixels = ExamplePixels(list(site.example_files), config.images.size)
        self.pool = FigurePool(cores(), cache.keep)  # draws the figures the cache lacks as they are queued
        self.to_copy: list[tuple[Path, Path]] = []  # (cache file, destination)
        self.at_least = small_model_zoom(site.layers)

    def figure(self, path: str, render, *args, **kwargs) -> None:
        """Queue a figure: rendered (if the cache lacks it) from now on, and copied into place by
        :meth:`render_figures`."""
        if render is figures.save_rgb and self.at_least:
            kwargs["at_least"] = self.at_least
        dest = self.out / path
        stored, missing = self.cache.figure_entry(dest, render, args, kwargs)
        if missing:
            self.pool.add(stored, (render, args, kwargs))
        self.to_copy.append((stored, dest))

    def picture(self, path: str, render, *args, **kwargs) -> None:
        """Queue a unit page's picture: in the format its path's suffix names, at ``browse.image_quality`` when
        that format is lossy (JPEG, WebP), the quality then being part of its cache key."""
        if Path(path).suffix in canvas.LOSSY:
            kwargs["quality"] = self.config.browse.image_quality
        self.figure(path, render, *args, **kwargs)

    def render_figures(self) -> None:
        """Finish rendering the queued figures the cache lacks, then copy every figure into place."""
        self.pool.finish()
        self.cache.commit()  # (batched writes) the figures drawn are published before they are copied
        for stored, dest in self.to_copy:
            copy_figure(stored, dest)
        self.to_copy = []

    def file(self, path: str) -> Path:
        return self.out / path

    def write_all(self, meanwhile: Callable[[], object] = lambda: None) -> object:
        """Every figure and data file; ``meanwhile()`` runs once the figures are queued, while the pool draws them
        (the build writes its pages then), and its result is returned."""
        with self.pool:
            self._queue_all()
            result = meanwhile()
            self.render_figures()
        for layer in self.site.analysed_layers:
            rows = [{"channel": u.channel, **dataclasses.asdict(self.site.units[u].stats),
                     **dashboards.layer_columns(self.site.units[u])}
                    for u in self.site.layer_units(layer.name)]
            files.write_csv(self.file(self.paths.layer_file(layer.name, "units.csv")), rows)
        return result

    def _queue_all(self) -> None:
        for i, result in enumerate(self.site.images):
            self.image(result)
            self.attribution(i, result)
            self.faithfulness(i, result)
        for result in self.site.units.values():
            self.unit(result)
        if self.site.grid:
            self.grid()
        if self.site.directions:
            self.directions()
        if self.site.classes:
            classes.class_files(self, site_links(self.site, self.config))


SMALL_INPUT = 64  # a model taking fixed images under this side (MNIST 28, CIFAR 32 px) ...
SMALL_SHOWN = 128  # ... gets its pictures zoomed (nearest neighbour) to at least this side


def small_model_zoom(layers) -> int:
    """``at_least`` for :func:`figures.save_rgb`: SMALL_SHOWN for a small fixed-input model, else 0 (as saved)."""
    size = input_size(layers)
    return SMALL_SHOWN if size and size < SMALL_INPUT else 0


def write_assets(out: Path, cache: Cache, site: Site, config: Config,
                 meanwhile: Callable[[], object] = lambda: None) -> object:
    """Every figure and data file of ``site`` under ``out``, and ``meanwhile()``'s result (see
    :meth:`AssetWriter.write_all`)."""
    return AssetWriter(out, cache, site, config).write_all(meanwhile)
