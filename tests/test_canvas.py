"""The Pillow figures' values: matplotlib's colours and scales, colour bars' ends, known pixels, and that
rendering in a pool of processes writes the same bytes as rendering in this one."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from PIL import Image

from generator import canvas, figures
from generator.assets import rendering


def read(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        return np.asarray(image).astype(int)


def where(pixels: np.ndarray, colour) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels of exactly this colour."""
    return np.nonzero(np.all(pixels == np.asarray(colour), axis=-1))


@pytest.mark.parametrize("name", ["viridis", "magma", "gray_r", "RdBu_r"])
def test_colours_and_scale_are_matplotlibs(name):
    values = np.random.default_rng(0).uniform(-3, 13, size=(50, 40))
    values[0, :4] = [0.0, 10.0, -1.0, 11.0]  # both ends and beyond them
    ours = canvas.colorize(values, name, 0.0, 10.0)
    theirs = ScalarMappable(Normalize(0.0, 10.0), colormaps[name]).to_rgba(values, bytes=True)[..., :3]
    np.testing.assert_array_equal(ours, theirs)


def test_known_colour_table_entries():
    assert canvas.lut("viridis")[0].tolist() == [68, 1, 84]
    assert canvas.lut("viridis")[255].tolist() == [253, 231, 36]
    assert canvas.lut("gray_r")[0].tolist() == [255, 255, 255]
    assert canvas.lut("gray_r")[255].tolist() == [0, 0, 0]


def test_horizontal_colour_bar_runs_low_to_high_left_to_right():
    bar = np.asarray(canvas.colour_bar("viridis", -2.0, 5.0, 200, "value")).astype(int)
    lut = canvas.lut("viridis")
    low_rows, low_cols = where(bar, lut[0])
    high_rows, high_cols = where(bar, lut[255])
    assert low_cols.size and high_cols.size
    assert high_cols.min() - low_cols.max() > 150  # the two ends, about the bar's length apart
    assert set(low_rows) == set(high_rows)  # on the same rows: one strip
    assert len(set(low_rows)) == canvas.BAR - 2  # inside its 1 px outline
    below = bar[low_rows.max() + 2:]
    assert (below < 100).all(axis=-1).any()  # tick labels and the label are drawn under it


def test_vertical_colour_bar_has_the_high_end_at_the_top():
    bar = np.asarray(canvas.colour_bar("magma", 0.0, 1.0, 120, "activation", vertical=True)).astype(int)
    lut = canvas.lut("magma")
    assert bar.shape[0] == 120
    assert where(bar, lut[255])[0].max() < 10
    assert where(bar, lut[0])[0].min() > 110


def test_feature_map_grid_pixels_are_viridis_of_the_normalised_values(tmp_path):
    maps = np.zeros((64, 64, 3))
    maps[:, 32:, 0] = 1.0  # channel 0: mean 0.5, std 0.5 -> -1 and +1 std -> 64 and 192
    maps[..., 1] = 7.0  # dead: flat 128
    maps[:, :, 2] = np.arange(64)[None, :] % 2  # stripes: 64 and 192 too
    pixels = read(figures.feature_map_grid(maps, tmp_path / "g.png", title="t"))
    lut = canvas.lut("viridis")
    left, right, dead = (where(pixels, lut[v])[0].size for v in (64, 192, 128))
    assert left > 0.8 * 32 * 64 and right > 0.8 * 32 * 64
    assert dead > 0.8 * 64 * 64
    # the colour bar: viridis' first colour at its left end, its last at its right end, nowhere else
    low, high = where(pixels, lut[0]), where(pixels, lut[255])
    assert set(low[0]) == set(high[0])
    assert high[1].min() - low[1].max() > 100  # the bar: 60% of the mosaic (3 tiles of 64 px) wide


def test_activation_overlay_blends_magma_at_alpha_0_6(tmp_path):
    image = np.full((32, 32, 3), 100, dtype=np.uint8)
    pixels = read(figures.activation_overlay(image, np.full((4, 4), 3.0), tmp_path / "o.png", title="t"))
    flat = np.round(0.4 * 100 + 0.6 * canvas.lut("magma")[0]).astype(int)  # a flat map sits at the low end
    assert where(pixels, flat)[0].size == 224 * 224  # enlarged by 7 to 224 px
    lut = canvas.lut("magma")
    assert where(pixels, lut[255])[0].mean() < where(pixels, lut[0])[0].mean()  # colour bar: high on top


def test_activation_overlay_peak_is_brightest_where_the_map_peaks(tmp_path):
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    activation = np.zeros((5, 5))
    activation[4, 4] = 1.0
    pixels = read(figures.activation_overlay(image, activation, tmp_path / "o.png", title="t"))
    top = np.round(0.6 * canvas.lut("magma")[255]).astype(int)
    rows, cols = where(pixels, top)
    assert rows.size > 0
    dark = where(pixels, np.round(0.6 * canvas.lut("magma")[0]).astype(int))
    assert rows.mean() > dark[0].mean() and cols.mean() > dark[1].mean()  # bottom right


def test_output_map_draws_high_values_dark(tmp_path):
    image = np.full((20, 20, 3), 200, dtype=np.uint8)
    output = np.zeros((20, 20))
    output[:10] = 1.0
    pixels = read(figures.output_map(image, output, tmp_path / "m.png", title="t"))
    black, white = where(pixels, (0, 0, 0)), where(pixels, (255, 255, 255))
    assert black[0].size >= 240 * 120  # the top half of the 240 px output panel, and more for text
    panel = (white[1] > black[1].min()) & (white[1] < black[1].max())
    assert white[0][panel].mean() > black[0].mean()


def test_example_crops_share_one_scale(tmp_path):
    crops = np.full((2, 32, 32, 3), 50, dtype=np.uint8)
    maps = np.stack([np.zeros((4, 4)), np.ones((4, 4))]).astype(np.float32)
    pixels = read(figures.example_crops(crops, maps, [2.0, 1.0], tmp_path / "e.png", title="t"))
    lut = canvas.lut("magma")
    low = np.round(0.4 * 50 + 0.6 * lut[0]).astype(int)
    high = np.round(0.4 * 50 + 0.6 * lut[255]).astype(int)
    assert where(pixels, low)[0].size > 0.8 * 96 * 96  # the first crop at the low end of the shared scale
    assert where(pixels, high)[0].size > 0.8 * 96 * 96  # the second at the high end


def test_mosaic_lines_and_label_boxes():
    tiles = np.full((3, 40, 60, 3), 90, dtype=np.uint8)
    out = np.asarray(canvas.mosaic(tiles, ["a", "b", "c"], cols=2)).astype(int)
    assert out.shape == (2 * 40 + 1, 2 * 60 + 1, 3)
    assert (out[:, 60] == 255).all() and (out[40] == 255).all()  # 1 px white lines between tiles
    assert (out[41:, 61:] == 255).all()  # the empty slot stays white
    for top, left in ((0, 0), (0, 61), (41, 0)):
        corner = out[top + 2:top + 14, left + 2:left + 12]
        assert (corner > 200).all(axis=-1).any() and (corner < 40).all(axis=-1).any()  # white on a dark box
        assert (out[top + 20:top + 40, left + 20:left + 60] == 90).all()  # the rest of the tile as it was


def pool_jobs(copies: int) -> dict[str, tuple]:
    """``copies`` of four kinds of figure, each copy with its own title: more than IN_PROCESS start the pool."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    jobs = {}
    for k in range(copies):
        jobs |= {
            f"grid{k}.png": (figures.feature_map_grid, (rng.random((9, 9, 20)),), {"title": f"maps {k}"}),
            f"overlay{k}.png": (figures.activation_overlay, (image, rng.random((5, 5))), {"title": f"overlay {k}"}),
            f"bars{k}.png": (figures.norm_bar, (["a", "b"], [1.0, 2.0 + k]), {"title": "norms"}),
            f"strip{k}.jpg": (figures.activation_strip, (image[None], rng.random((1, 5, 5)), [f"x{k}"]), {}),
        }
    return jobs


def test_png_files_are_deflated_at_png_level_with_their_pixels_intact(tmp_path):
    pixels = np.random.default_rng(3).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    saved = canvas.save(Image.fromarray(pixels), tmp_path / "a.png")
    at_level = io.BytesIO()
    Image.fromarray(pixels).save(at_level, format="PNG", compress_level=canvas.PNG_LEVEL)
    default = io.BytesIO()
    Image.fromarray(pixels).save(default, format="PNG")
    assert saved.read_bytes() == at_level.getvalue() != default.getvalue()
    np.testing.assert_array_equal(np.asarray(Image.open(saved)), pixels)


def test_a_matplotlib_figure_keeps_the_pixels_of_its_default_png(tmp_path):
    def drawn():
        fig = figures.new_figure(3, 2)
        fig.add_subplot().plot([0, 1, 2], [2, 0, 1])
        return fig

    saved = figures.save_figure(drawn(), tmp_path / "curve.png")
    reference = io.BytesIO()
    drawn().savefig(reference, format="png", dpi=figures.DPI, metadata={"Software": None}, bbox_inches="tight",
                    pad_inches=0.1)
    expected = np.asarray(Image.open(reference).convert("RGBA"))
    np.testing.assert_array_equal(np.asarray(Image.open(saved)), expected)
    assert expected.shape[2] == 4 and expected[..., 3].min() == 0  # transparent background kept


def test_a_label_drawn_again_is_the_same_mask_without_a_second_layout(monkeypatch):
    canvas.ink.cache_clear()
    first = canvas.ink("0.25", canvas.TICK)
    laid_out = []
    monkeypatch.setattr(canvas, "font", lambda size: laid_out.append(size))  # a second layout would call it
    assert canvas.ink("0.25", canvas.TICK) is first and not laid_out
    assert first.mode == "L" and np.asarray(first).max() == 255  # the text's ink, on a black (0) ground
    assert np.asarray(first)[0].max() == 0  # a pixel of margin above the ink


def render_all(jobs: dict, workers: int) -> None:
    """Each job ``cache file -> (render, args, kwargs)`` drawn as the build draws its figures."""
    with rendering.FigurePool(workers, os.replace) as pool:
        for stored, job in jobs.items():
            pool.add(stored, job)


def test_pool_writes_the_same_bytes_as_this_process(tmp_path):
    jobs = pool_jobs(3)
    assert len(jobs) > rendering.IN_PROCESS
    for folder, workers in (("one", 1), ("pool", 2)):
        render_all({tmp_path / folder / name: job for name, job in jobs.items()}, workers)
    for name in jobs:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "pool" / name).read_bytes(), name


def test_a_failed_figure_in_the_pool_is_raised_and_the_rest_cancelled(tmp_path, monkeypatch):
    first = tmp_path / "broken.png"
    jobs = {first: (figures.feature_map_grid, (np.zeros((9, 9)),), {"title": "a map without channels"})}
    jobs |= {tmp_path / name: job for name, job in pool_jobs(30).items()}
    bars = []

    class Bar(rendering.tqdm):  # drawn into a string, so that it counts (a bar off a terminal is disabled)
        def __init__(self, **kwargs):
            super().__init__(**{**kwargs, "disable": False, "file": io.StringIO()})
            bars.append(self)

    monkeypatch.setattr(rendering, "tqdm", Bar)
    with pytest.raises(ValueError, match="feature_map_grid expects"):
        render_all(jobs, 2)
    assert list(tmp_path.iterdir()) == []  # none kept, and the ones drawn (to temporary files) removed
    assert bars[0].n < len(jobs) - 1 and bars[0].total == len(jobs)  # the figures not yet started were not drawn


def test_the_pool_starts_while_figures_are_queued_and_not_for_a_handful(tmp_path):
    jobs = list(pool_jobs(3).items())
    with rendering.FigurePool(2, os.replace) as pool:
        for name, job in jobs[:rendering.IN_PROCESS]:
            pool.add(tmp_path / name, job)
        assert pool.pool is None  # a rebuild's handful: drawn in this process by finish
        pool.add(tmp_path / jobs[rendering.IN_PROCESS][0], jobs[rendering.IN_PROCESS][1])
        assert pool.pool is not None and len(pool.futures) == rendering.IN_PROCESS + 1  # drawing before finish
    assert all((tmp_path / name).exists() for name, _ in jobs[:rendering.IN_PROCESS + 1])
