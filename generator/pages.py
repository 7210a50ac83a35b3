"""Markdown pages from the Jinja2 templates in ``templates/``, plus the site navigation.

Each page is ``<folder>/index.md``; links between pages and to figures are relative, so
MkDocs checks them (``mkdocs build --strict``) and the site works under any base URL.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from generator.units import Unit

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TOP_UNITS_PER_IMAGE = 8
# Link targets with these suffixes are files; anything else names a page (layer names may hold dots).
FILE_SUFFIXES = {".png", ".jpg", ".csv", ".json", ".md"}


def plain_text(markdown: str) -> str:
    """Markdown inline text without links and code marks, for alt attributes."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown).replace("`", "")


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
    env.filters["plain"] = plain_text
    return env


class PageWriter:
    def __init__(self, out: Path):
        self.out = out
        self.env = environment()
        self.count = 0

    def write(self, folder: str, template: str, **context) -> str:
        """Render ``template`` to ``<folder>/index.md``; ``link(target)`` makes site paths relative."""
        here = folder.strip("/")

        def link(target: str) -> str:
            target = target.strip("/")
            if Path(target).suffix.lower() not in FILE_SUFFIXES:  # a page: its folder's index.md
                target = f"{target}/index.md" if target else "index.md"
            return Path(os.path.relpath(target, here or ".")).as_posix()

        path = self.out / here / "index.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.env.get_template(template).render(link=link, **context), encoding="utf-8")
        self.count += 1
        return f"{here}/index.md" if here else "index.md"


def render_site(out: Path, *, config, model, model_description, layers, images, composite, predictions,
                featured, inputs, units, grid_layer, pictures, hand_written: Path) -> int:
    """Write every page of the site into ``out``; returns the number of pages."""
    w = PageWriter(out)
    m = model.name
    common = dict(site=config.site, model=model, model_description=model_description, pictures=pictures)
    unit_layers = {u.layer for u in units}
    analysed = {r["name"]: r for r in layers if r["name"] in unit_layers}

    w.write("", "home.md.j2", images=images, featured=featured, units=units, layers=analysed, **common)
    w.write(
        "report", "report.md.j2", images=images, composite=composite, predictions=predictions,
        featured=featured, inputs=inputs, units=units, grid_layer=grid_layer, config=config,
        layers_by_name={r["name"]: r for r in layers},
        notes={k: config.note(v) for k, v in vars(config.notes).items()}, **common,
    )
    by_layer = {name: sorted(u for u in units if u.layer == name) for name in analysed}
    for i, im in enumerate(images):
        top_units = {name: sorted(us, key=lambda u: -units[u].map_stats[im.slug]["max"])[:TOP_UNITS_PER_IMAGE]
                     for name, us in by_layer.items()}
        w.write(
            im.url, "image.md.j2", image=im, prediction=predictions[im.slug], feature_layers=config.feature_maps.layers,
            units=units, top_units=top_units,
            previous=images[i - 1] if i else None, next=images[i + 1] if i + 1 < len(images) else None, **common,
        )
    w.write(f"models/{m}", "model.md.j2", layers=layers, analysed=analysed, **common)
    for name, record in analysed.items():
        layer_units = by_layer[name]
        w.write(f"models/{m}/{name}", "layer.md.j2", layer=record, layer_units=layer_units, units=units,
                dead=[u for u in layer_units if units[u].stats["dead"]], n_images=len(images),
                grid=pictures["grid"] if name == grid_layer else "", **common)
    for name, layer_units in by_layer.items():
        for j, u in enumerate(layer_units):
            w.write(
                u.url(m), "unit.md.j2", unit=u, result=units[u], images=images, units=units,
                previous=layer_units[j - 1] if j else None,
                next=layer_units[j + 1] if j + 1 < len(layer_units) else None, **common,
            )
    for u, result in units.items():
        if result.circuit and result.circuit["previous"]:
            w.write(f"{u.url(m)}circuit", "circuit.md.j2", unit=u, circuit=result.circuit, unit_of=Unit, **common)
    shutil.copytree(TEMPLATES / "assets", out / "assets")
    own_pages = _copy_hand_written(hand_written, out / "pages")
    _write_nav(out, config.site, m, images, analysed, own_pages)
    return w.count + len(own_pages)


def _copy_hand_written(source: Path, dest: Path) -> list[str]:
    """The author's own pages (``docs/pages/*.md``) go into the site as they are."""
    if not source.is_dir():
        return []
    shutil.copytree(source, dest)
    return sorted(p.relative_to(dest.parent).as_posix() for p in dest.rglob("*.md"))


def _write_nav(out: Path, site, model: str, images, analysed: dict, hand_written: list[str]) -> None:
    """``mkdocs-generated.yml``, which ``mkdocs.yml`` inherits: the site's name and its navigation
    (report, model, layers, images); unit pages stay out."""
    nav = [
        {"Home": "index.md"},
        {"Lab report": "report/index.md"},
        {"Model": [{"Architecture": f"models/{model}/index.md"}]
         + [{name: f"models/{model}/{name}/index.md"} for name in analysed]},
        {"Images": [{im.file: f"{im.url}index.md"} for im in images]},
    ]
    if hand_written:
        nav.append({"Notes": hand_written})
    settings = {"site_name": site.title, "site_description": site.description.strip(), "nav": nav}
    if site.url:  # project pages live under /<repository>/: the 404 page and the sitemap need it
        settings["site_url"] = site.url.rstrip("/") + "/"
    (out / "mkdocs-generated.yml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
