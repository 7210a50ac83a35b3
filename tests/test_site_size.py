"""browse.image_format, browse.image_quality and browse.unit_maps: what keeps a whole model's site small."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator import figures
from generator.build import build_site
from generator.config import load_config
from generator.results import Unit
from generator.site_paths import SitePaths, relative_link

from tiny import edit_config

FORMATS = {"png": (".png", "PNG"), "jpeg": (".jpg", "JPEG"), "webp": (".webp", "WEBP")}
NOT_PICTURES = {"unit.json", "index.md", "circuit.csv", "incoming-kernels.png", "incoming-norms.png", "distribution.png"}
FEATURED = "models/tiny/c3/5"  # the configured unit: every image's map, its own overlays, recipes and charts
BROWSED = "models/tiny/c3/0"  # a browsed unit only


def build(project: Path) -> dict:
    return build_site(load_config(project / "site_config.yaml"), project)


def site_files(out: Path) -> dict[Path, bytes]:
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def unit_pictures(out: Path) -> list[Path]:
    """The pictures of every unit page (exciters, maps, examples, overlays), not its charts or data."""
    return [p for folder in (out / "models/tiny").glob("c*/*") if (folder / "unit.json").is_file()
            for p in folder.iterdir() if p.is_file() and p.name not in NOT_PICTURES]


def missing_targets(out: Path) -> list[str]:
    """Every local file or page that a generated page links to and that is not there."""
    return [f"{page.relative_to(out)} -> {target}" for page in out.rglob("*.md")
            for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8"))
            if "://" not in target and not (page.parent / target.split("#")[0]).exists()]


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_unit_pictures_take_the_format_and_the_pages_link_them(built, fmt):
    project, _ = built
    out = project / "docs" / "generated"
    before = site_files(out)
    # The band examples of the tiny site are mosaics of random-noise crops, which JPEG and WebP barely shrink:
    # they stay out of the size comparison of the other pictures.
    png_bytes = sum(p.stat().st_size for p in unit_pictures(out) if p.stem != "bands")
    edit_config(project, browse={"image_format": fmt})
    build(project)
    suffix, name = FORMATS[fmt]
    pictures = unit_pictures(out)
    assert {p.suffix for p in pictures} == {suffix}
    assert {p.name for p in (out / BROWSED).iterdir()} == {f"exciter{suffix}", f"examples{suffix}", f"maps{suffix}",
                                                           f"bands{suffix}", "distribution.png", "unit.json", "index.md"}
    assert {f"exciter-map{suffix}", f"map-photo2{suffix}", f"exciter-lucid{suffix}"} <= {p.name for p in pictures}
    for picture in pictures:
        with Image.open(picture) as image:
            assert image.format == name, picture
    for chart in ("incoming-kernels.png", "distribution.png"):
        with Image.open(out / FEATURED / chart) as image:
            assert image.format == "PNG"  # charts stay PNG
    assert sum(p.stat().st_size for p in pictures if p.stem != "bands") < png_bytes / 2
    assert missing_targets(out) == []
    assert f"](exciter{suffix})" in (out / BROWSED / "index.md").read_text()
    assert f"](0/exciter{suffix})" in (out / "models/tiny/c3/index.md").read_text()

    edit_config(project, browse={"image_format": "png"})
    assert build(project)["cache_misses"] == 0  # back to PNG: every figure from the cache,
    assert site_files(out) == before  # byte for byte the site before


def test_quality_is_part_of_a_figure_key(built):
    project, _ = built
    out = project / "docs" / "generated"
    edit_config(project, browse={"image_format": "webp"})
    build(project)
    good = site_files(out)
    edit_config(project, browse={"image_quality": 20})
    build(project)
    low = site_files(out)
    assert low.keys() == good.keys()
    webp = [name for name in good if name.suffix == ".webp"]
    assert all(low[name] != good[name] for name in webp)
    assert sum(len(low[name]) for name in webp) < 0.7 * sum(len(good[name]) for name in webp)
    edit_config(project, browse={"image_quality": 85})
    assert build(project)["cache_misses"] == 0
    assert site_files(out) == good


def test_browsed_units_show_the_first_maps_only(built):
    project, _ = built
    out = project / "docs" / "generated"
    edit_config(project, browse={"unit_maps": 2})
    build(project)
    with Image.open(out / BROWSED / "maps.jpg") as strip, Image.open(out / FEATURED / "maps.jpg") as featured:
        assert (strip.width, featured.width) == (2 * 96, 3 * 96)  # a featured unit keeps every image
    page = (out / BROWSED / "index.md").read_text()
    assert "Its activation on the first 2 of the 3 images, one shared colour scale" in page
    assert "[photo2.png](../../../../images/photo2/index.md)" in page  # the table still has every image
    assert set(json.loads((out / BROWSED / "unit.json").read_text())["maps"]) == {"photo0", "photo1", "photo2"}
    assert "Its activation on each image, one shared colour scale" in (out / FEATURED / "index.md").read_text()
    assert missing_targets(out) == []


def test_site_paths_give_each_picture_its_format():
    u = Unit("block1_conv1", 3)
    png, webp, jpeg = SitePaths("m"), SitePaths("m", "webp"), SitePaths("m", "jpeg")
    assert [png.unit_picture(u, "exciter"), png.unit_strip(u), png.unit_map(u, "cat")] == [
        "models/m/block1_conv1/3/exciter.png", "models/m/block1_conv1/3/maps.jpg", "models/m/block1_conv1/3/map-cat.png"]
    assert [webp.unit_recipe(u, "lucid"), webp.unit_strip(u), jpeg.unit_diverse(u, 1)] == [
        "models/m/block1_conv1/3/exciter-lucid.webp", "models/m/block1_conv1/3/maps.webp",
        "models/m/block1_conv1/3/diverse-1.jpg"]
    assert relative_link(webp.unit_picture(u, "exciter"), webp.layer(u.layer)) == "3/exciter.webp"
    assert relative_link(webp.unit_file(u, "unit.json"), webp.unit(u)) == "unit.json"


@pytest.mark.parametrize("suffix, name", [(".jpg", "JPEG"), (".webp", "WEBP")])
def test_lossy_pictures_are_the_same_bytes_each_time_and_smaller_at_lower_quality(tmp_path, suffix, name):
    yy, xx = np.mgrid[:96, :96]
    pixels = np.stack([xx * 2, yy * 2, (xx + yy) % 256], axis=-1).astype(np.uint8)
    pixels[::7] = 255  # some edges
    first = figures.save_rgb(pixels, tmp_path / f"a{suffix}", quality=85).read_bytes()
    assert figures.save_rgb(pixels, tmp_path / f"b{suffix}", quality=85).read_bytes() == first
    assert len(figures.save_rgb(pixels, tmp_path / f"c{suffix}", quality=20).read_bytes()) < len(first)
    with Image.open(tmp_path / f"a{suffix}") as image:
        assert image.format == name and image.size == (96, 96)
        assert np.abs(np.asarray(image.convert("RGB"), np.int16) - pixels).mean() < 8
