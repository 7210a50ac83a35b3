"""Markdown pages from the Jinja2 templates in ``templates/``, plus the site navigation.

Each page is ``<folder>/index.md``. Templates get the :class:`generator.results.Site` as ``site``,
the config as ``config`` and a :class:`generator.site_paths.SitePaths` as ``paths``; the ``link``
filter turns a site path into a link relative to the page being written, so MkDocs checks every
link (``mkdocs build --strict``) and the site works under any base URL.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context

from generator.assets.classes import MAPS_SHOWN
from generator.concept_links import class_title, site_links
from generator.config import Config
from generator.results import Site, Unit
from generator.search_index import write_search_index
from generator.site_paths import SitePaths, page_file, relative_link

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TOP_UNITS_PER_IMAGE = 8
NAV_CLASSES = 50  # up to this many classes have their pages in the navigation; more: the class index alone


def plain_text(markdown: str) -> str:
    """Markdown inline text without links and code marks, for alt attributes (a mark escaped by :func:`literal`
    stays, escaped)."""
    return re.sub(r"(?<!\\)`", "", re.sub(r"\[((?:\\.|[^\]\\])*)\]\([^)]*\)", r"\1", markdown))


MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]{}|#])")


def literal(words: object) -> str:
    """Text shown as it is (a class name, a label, a file name): Markdown's marks, a table's bar and an
    attribute list's braces (``{.x}`` ending a heading or a cell) escaped, HTML's ``&``, ``<`` and ``>`` as entities."""
    text = str(words).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


@pass_context
def _link(context, target: str) -> str:
    return relative_link(target, context["here"])


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pct"] = lambda p: f"{100 * p:.1f}%"
    env.filters["num"] = lambda x: f"{x:.4g}"
    env.filters["score"] = lambda x: f"{x:.3f}" if np.isfinite(x) else "—"  # a faithfulness score; "—": undefined
    env.filters["plain"] = plain_text
    env.filters["literal"] = literal
    env.filters["link"] = _link
    env.filters["median"] = lambda values: float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")
    env.globals["unit"] = Unit
    env.globals["class_title"] = class_title
    env.globals["maps_shown"] = MAPS_SHOWN
    env.globals["recipe_names"] = {"gradient_ascent": "the lab's recipe", "lucid": "Lucid's recipe", "maco": "MACO"}
    return env


class PageWriter:
    def __init__(self, out: Path, **shared):
        self.out = out
        self.env = environment()
        self.shared = shared
        self.count = 0

    def write(self, page: str, template: str, **context) -> None:
        """Render ``template`` into the page at site path ``page`` (a folder)."""
        path = self.out / page_file(page)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.env.get_template(template).render(here=page, **self.shared, **context)
        path.write_text(text, encoding="utf-8")
        self.count += 1


def render_site(out: Path, site: Site, config: Config, hand_written: Path) -> int:
    """Write every page of the site into ``out``; returns the number of pages."""
    paths = SitePaths(site.model, config.browse.image_format)
    w = PageWriter(out, site=site, config=config, paths=paths, concepts=site_links(site, config))
    w.write(paths.home, "home.md.j2")
    w.write(paths.report, "report.md.j2")
    images = site.images
    for i, result in enumerate(images):
        top_units = {
            layer.name: sorted(site.layer_units(layer.name),
                               key=lambda u: -site.units[u].map_stats[result.image.slug].max)[:TOP_UNITS_PER_IMAGE]
            for layer in site.analysed_layers
        }
        w.write(paths.image(result.image.slug), "image.md.j2", result=result, index=i, top_units=top_units,
                previous=images[i - 1].image if i else None, next=images[i + 1].image if i + 1 < len(images) else None)
    w.write(paths.model(), "model.md.j2")
    if config.views.layers:
        w.write(paths.views(), "views.md.j2")
    for layer in site.analysed_layers:
        layer_units = site.layer_units(layer.name)
        w.write(paths.layer(layer.name), "layer.md.j2", layer=layer, layer_units=layer_units,
                dead=[u for u in layer_units if site.units[u].stats.dead])
        for j, u in enumerate(layer_units):
            w.write(paths.unit(u), "unit.md.j2", unit=u, result=site.units[u],
                    previous=layer_units[j - 1] if j else None,
                    next=layer_units[j + 1] if j + 1 < len(layer_units) else None)
    for u, result in site.units.items():
        if result.circuit and result.circuit.supported:
            w.write(paths.circuit(u), "circuit.md.j2", unit=u, circuit=result.circuit)
    if site.classes:
        w.write(paths.classes(), "classes.md.j2")
        for i, c in enumerate(site.classes):
            w.write(paths.class_page(c), "class.md.j2", c=c, class_index=i)
    w.write(paths.search(), "search.md.j2")
    write_search_index(out / paths.search_index(), site, paths)
    shutil.copytree(TEMPLATES / "assets", out / paths.assets)
    own_pages = _copy_hand_written(hand_written, out / paths.hand_written)
    _write_nav(out, config, site, paths, own_pages)
    return w.count + len(own_pages)


def _copy_hand_written(source: Path, dest: Path) -> list[str]:
    """The author's own pages (``docs/pages/*.md``) go into the site as they are."""
    if not source.is_dir():
        return []
    shutil.copytree(source, dest)
    return sorted(p.relative_to(dest.parent).as_posix() for p in dest.rglob("*.md"))


def _write_nav(out: Path, config: Config, site: Site, paths: SitePaths, hand_written: list[str]) -> None:
    """``mkdocs-generated.yml``, which ``mkdocs.yml`` inherits: the site's name and its navigation
    (report, model, layers, classes, images); unit pages stay out, and so do class pages past NAV_CLASSES."""
    nav = [
        {"Home": page_file(paths.home)},
        {"Lab report": page_file(paths.report)},
        {"Model": [{"Architecture": page_file(paths.model())}]
         + ([{"DeepDream and Caricature": page_file(paths.views())}] if config.views.layers else [])
         + [{layer.name: page_file(paths.layer(layer.name))} for layer in site.analysed_layers]},
        {"Images": [{r.image.file: page_file(paths.image(r.image.slug))} for r in site.images]},
        {"Find a unit": page_file(paths.search())},
    ]
    if site.classes:
        listed = site.classes if len(site.classes) <= NAV_CLASSES else ()
        nav.insert(3, {"Classes": [{"All classes": page_file(paths.classes())}]
                       + [{class_title(c): page_file(paths.class_page(c))} for c in listed]})
    if hand_written:
        nav.append({"Notes": hand_written})
    settings = {"site_name": config.site.title, "site_description": config.site.description.strip(), "nav": nav}
    if config.site.url:  # project pages live under /<repository>/: the 404 page and the sitemap need it
        settings["site_url"] = config.site.url.rstrip("/") + "/"
    (out / "mkdocs-generated.yml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
