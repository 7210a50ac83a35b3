"""Every page URL and every figure or data file name of the site, in one place.

Paths are relative to the site root (``docs/generated``). A page is a folder ending in ``/``
whose Markdown is ``<folder>index.md``; a file is a path with a suffix. Microscope's scheme:
``models/<model>/<layer>/<channel>/``. The pages get a :class:`SitePaths` as ``paths`` and
turn its answers into relative links with the ``link`` filter (:func:`relative_link`).
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath

from generator.results import ClassConcepts, Unit

# Link targets with these suffixes are files; anything else names a page (layer names may hold dots).
FILE_SUFFIXES = {".png", ".jpg", ".webp", ".csv", ".json", ".md", ".npy"}

# The file suffix of each ``browse.image_format``.
PICTURE_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}


@dataclass(frozen=True)
class SitePaths:
    model_name: str
    # The format of the unit pages' pictures (exciters, activation maps, dataset examples): ``browse.image_format``.
    unit_format: str = "png"

    # --- pages ----------------------------------------------------------------------------
    home: str = ""
    report: str = "report/"
    hand_written: str = "pages/"  # the author's own pages, copied as they are
    assets: str = "assets/"

    def model(self) -> str:
        return f"models/{self.model_name}/"

    def layer(self, layer: str) -> str:
        return f"{self.model()}{layer}/"

    def unit(self, unit: Unit) -> str:
        return f"{self.layer(unit.layer)}{unit.channel}/"

    def circuit(self, unit: Unit) -> str:
        return f"{self.unit(unit)}circuit/"

    def image(self, slug: str) -> str:
        return f"images/{slug}/"

    def search(self) -> str:
        """The unit search page."""
        return "unit-search/"  # not "search/": the search plugin writes its own index there

    def search_index(self) -> str:
        """The search page's index: one line a unit, fetched only when the page opens."""
        return self.search() + "units.json"

    def from_search(self, unit: Unit) -> str:
        """The unit page's URL relative to the search page and its index (raw HTML: no Markdown link to rewrite)."""
        return self._from_search(self.unit(unit))

    def views(self) -> str:
        """Every image's DeepDream and Caricature, images x layers."""
        return f"{self.model()}views/"

    def classes(self) -> str:
        """The class index: every class with concept pages."""
        return f"{self.model()}classes/"

    def class_page(self, c: ClassConcepts) -> str:
        """The concepts of class ``c`` (of the model's output, for a model without classes)."""
        return f"{self.classes()}{class_key(c)}/"

    def from_search_class(self, c: ClassConcepts) -> str:
        """The class page's URL relative to the search page and its index (as :meth:`from_search`)."""
        return self._from_search(self.class_page(c))

    def _from_search(self, page: str) -> str:
        return PurePosixPath(os.path.relpath(page, self.search())).as_posix() + "/"

    # --- files beside the pages -------------------------------------------------------------
    def image_file(self, slug: str, name: str) -> str:
        """``input.png``, ``predictions.png``/``.json``, ``output.png``/``.json``, ``attribution.json``, ``views.json``,
        ``groups.json``."""
        return self.image(slug) + name

    def image_view(self, slug: str, layer: str, view: str) -> str:
        """``view`` is ``deepdream`` or ``caricature``."""
        return self.image(slug) + f"{view}-{layer}.png"

    def image_groups(self, slug: str, layer: str) -> str:
        """The image's activation groups at ``layer``, each in its colour."""
        return self.image(slug) + f"groups-{layer}.png"

    def group_exciter(self, slug: str, layer: str, group: int) -> str:
        """The exciter of group ``group`` (from 0) of the image at ``layer``."""
        return self.image(slug) + f"group-{layer}-{group}.png"

    def feature_maps(self, slug: str, layer: str) -> str:
        return self.image(slug) + f"feature-maps-{layer}.png"

    def attribution(self, slug: str, target: str, suffix: str = ".png") -> str:
        """One target's maps on image ``slug``: the figure (``.png``) and the raw maps (``.npy``)."""
        return self.image(slug) + f"attribution-{target}{suffix}"

    def faithfulness(self, slug: str, target: str) -> str:
        """One target's deletion and insertion curves on image ``slug``."""
        return self.image(slug) + f"faithfulness-{target}.png"

    def model_file(self, name: str) -> str:
        """``directions.json``."""
        return self.model() + name

    def direction_exciter(self, index: int) -> str:
        """The exciter of ``exciters.directions[index]``."""
        return self.model() + f"direction-{index}.png"

    def layer_file(self, layer: str, name: str) -> str:
        """``units.csv``, ``exciter-grid.png``/``.csv``."""
        return self.layer(layer) + name

    def unit_file(self, unit: Unit, name: str) -> str:
        """``incoming-kernels.png``, ``incoming-norms.png`` (charts: always PNG), ``circuit.csv``, ``unit.json``."""
        return self.unit(unit) + name

    def unit_picture(self, unit: Unit, name: str) -> str:
        """``exciter``, ``exciter-alpha``, ``exciter-map``, ``examples``, ``examples-gradcam``, in the unit pictures'
        format."""
        return self.unit(unit) + name + PICTURE_SUFFIXES[self.unit_format]

    def unit_strip(self, unit: Unit) -> str:
        """The unit's activation on the images side by side: photos, so JPEG (4x smaller) where the pictures are PNG."""
        return self.unit(unit) + "maps" + PICTURE_SUFFIXES["jpeg" if self.unit_format == "png" else self.unit_format]

    def unit_recipe(self, unit: Unit, method: str) -> str:
        """The unit's exciter by the recipe ``method`` (``gradient_ascent``, ``lucid``)."""
        return self.unit_picture(unit, f"exciter-{method}")

    def unit_diverse(self, unit: Unit, index: int) -> str:
        """The unit's ``index``-th diverse exciter."""
        return self.unit_picture(unit, f"diverse-{index}")

    def unit_map(self, unit: Unit, slug: str) -> str:
        return self.unit_picture(unit, f"map-{slug}")

    def class_file(self, c: ClassConcepts, name: str) -> str:
        """``importance.png``, ``maps.jpg``, ``embedding.png``, ``deletion.png``, ``concepts.json`` of class ``c``."""
        return self.class_page(c) + name

    def concept_picture(self, c: ClassConcepts, concept: int) -> str:
        """The MACO picture of concept ``concept`` (its index) of class ``c``."""
        return self.class_page(c) + f"concept-{concept}.png"

    def concept_crops(self, c: ClassConcepts, concept: int) -> str:
        """The crops of the class's images where concept ``concept`` is strongest: photos, so JPEG."""
        return self.class_page(c) + f"crops-{concept}.jpg"

    def image_concepts(self, slug: str, c: ClassConcepts) -> str:
        """Where the concepts of class ``c`` lie on image ``slug``, each in its colour."""
        return self.image(slug) + f"concepts-{class_key(c)}.png"

    def circuit_file(self, unit: Unit, name: str) -> str:
        """``diagram.png``, ``expanded-kernels.png``, ``expanded-norms.png``, ``expanded.csv``."""
        return self.circuit(unit) + name


def class_key(c: ClassConcepts) -> str:
    """A class in URLs and file names: its index and its name (ImageNet has two "crane"s), lower case, accents
    dropped (``café`` -> ``cafe``), runs of anything but ASCII letters and digits as one ``-`` (the index alone
    where none is left: ``猫``); ``output`` for a model's output."""
    if c.class_id is None:
        return "output"
    letters = unicodedata.normalize("NFKD", c.name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", letters).strip("-")
    return f"{c.class_id}-{slug}" if slug else str(c.class_id)


def page_file(path: str) -> str:
    """The Markdown file of a page: ``models/m/`` -> ``models/m/index.md``; files stay as they are."""
    path = path.strip("/")
    if PurePosixPath(path).suffix.lower() in FILE_SUFFIXES:
        return path
    return f"{path}/index.md" if path else "index.md"


def relative_link(target: str, page: str) -> str:
    """The link from the page at ``page`` (a folder) to ``target`` (a page or a file)."""
    return PurePosixPath(os.path.relpath(page_file(target), page.strip("/") or ".")).as_posix()
