"""The report from a notebook: ``report = generator.open("site_config.yaml")``.

The results come from the build's own code and cache (:func:`generator.build.site_results`, the
project's ``.cache/generator``), so a notebook and the site never disagree and nothing is
computed twice: after a build everything is a cache hit, and what a notebook computes first a
later build finds. Figures are drawn by the build's :class:`~generator.assets.AssetWriter`
through the same figure cache, so they are the site's files byte for byte; Jupyter shows them as
PIL images.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from generator.assets import AssetWriter
from generator.config import Config
from generator.errors import GeneratorError
from generator.results import Circuit, Site, Unit, UnitExample, UnitResult
from generator.site_paths import SitePaths


def open_report(config: str | Path = "site_config.yaml", project: str | Path | None = None) -> Report:
    """The report of ``config``; ``project`` (where the build runs, holding ``.cache``) defaults to the
    config file's folder."""
    from generator.config import load_config

    config_path = Path(config)
    return Report(load_config(config_path), Path(project) if project else config_path.resolve().parent)


@dataclass(frozen=True)
class Figures:
    """Figures as the site has them: site path -> file bytes."""

    files: dict[str, bytes]

    def image(self, path: str) -> Image.Image:
        """The figure at site path ``path`` as a PIL image."""
        return Image.open(io.BytesIO(self.files[path]))


@dataclass(frozen=True)
class UnitView:
    """One unit as its page shows it: the typed result, its figures and their site paths."""

    result: UnitResult
    figures: Figures
    paths: SitePaths

    @property
    def exciter(self) -> Image.Image:
        return self.picture("exciter")

    @property
    def circuit(self) -> Circuit | None:
        """The incoming circuit (a configured unit's; None for other units)."""
        return self.result.circuit

    @property
    def examples(self) -> tuple[UnitExample, ...]:
        """The dataset examples, best first (``picture("examples")`` draws them)."""
        return self.result.examples

    def picture(self, name: str) -> Image.Image:
        """A picture of the unit's page: ``exciter``, ``examples``, and for configured units ``exciter-map``."""
        return self.figures.image(self.paths.unit_picture(self.result.unit, name))


@dataclass(frozen=True)
class ImageAttribution:
    """Where the evidence is on one image: each target's maps and the site's figure of each target."""

    image: str
    maps: dict[tuple[str, str], np.ndarray]  # (target, method) -> the map on this image
    figures: dict[str, Image.Image]  # target -> the methods side by side, as on the image's page


class Report:
    """Every result of the site, computed (or found in the cache) on first use."""

    def __init__(self, config: Config, project: Path):
        from generator.analyses import Analyses
        from generator.build import CACHE
        from generator.cache import Cache

        self.config, self.project = config, project
        self.analyses = Analyses(config, Cache(project / CACHE))

    @cached_property
    def site(self) -> Site:
        from generator.build import site_results

        return site_results(self.analyses)

    @cached_property
    def paths(self) -> SitePaths:
        return SitePaths(self.site.model, self.config.browse.image_format)

    def unit(self, layer: str, channel: int) -> UnitView:
        """A unit with a page (a configured unit, one of its circuit's inputs, or a browsed layer's unit)."""
        from generator.analysis.graph import find_layer
        from generator.model_checks import browse_layers

        u = Unit(find_layer(self.site.layers, layer, "report", channels=False).name, channel)
        if u not in self.site.units:
            browsed = ", ".join(browse_layers(self.analyses.config, self.site.layers)) or "none"
            raise GeneratorError(f"unit {u} has no page in this report: the units of the browsed layers ({browsed}), "
                                 "the configured units and their circuits' inputs have; add it to `units` or its "
                                 "layer to `browse.layers`")
        result = self.site.units[u]
        return UnitView(result, self._figures(lambda w: w.unit(result)), self.paths)

    def attribution(self, image: str) -> ImageAttribution:
        """The attribution maps and figures of the configured image file ``image`` (say ``chelsea.jpg``)."""
        files = [r.image.file for r in self.site.images]
        if image not in files:
            raise GeneratorError(f"image {image!r} is not in this report; its images: {', '.join(files)}")
        index = files.index(image)
        result = self.site.images[index]
        figures = self._figures(lambda w: w.attribution(index, result))
        targets = self.site.attribution_targets()
        return ImageAttribution(
            image=image,
            maps={(a.target, a.method): a.maps[index] for found in targets.values() for a in found},
            figures={t: figures.image(self.paths.attribution(result.image.slug, found[0].slug))
                     for t, found in targets.items()},
        )

    def _figures(self, queue: Callable[[AssetWriter], None]) -> Figures:
        """The figures that ``queue`` asks the build's writer for, rendered through the figure cache (its data
        files land in a scratch folder)."""
        with tempfile.TemporaryDirectory() as scratch:
            # (self.site first: its check writes the config's layers as the model names them)
            writer = AssetWriter(Path(scratch), self.analyses.cache, self.site, self.analyses.config)
            with writer.pool:
                queue(writer)
                placed = [dest for _, dest in writer.to_copy]
                writer.render_figures()
            return Figures({dest.relative_to(scratch).as_posix(): dest.read_bytes() for dest in placed})
