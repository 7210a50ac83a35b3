"""Tests for generator.figures: numbers first, then that every figure renders, reads and repeats."""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator import dashboard_figures, figures, pixels


@pytest.fixture(autouse=True)
def warnings_are_errors():
    """Any warning (RuntimeWarning from a zero std, matplotlib layout warnings ...) fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def rng():
    return np.random.default_rng(0)


def read_png(path):
    with Image.open(path) as image:
        image.load()
        return image.format, image.info, np.asarray(image.convert("RGB")).astype(int)


# --- normalise_map -----------------------------------------------------------------------------


def test_normalise_map_matches_formula():
    m = np.array([[0.0, 1.0], [2.0, 5.0]])
    mean, std = 2.0, np.sqrt((4 + 1 + 0 + 9) / 4)
    expected = np.clip((m - mean) / std * 64 + 128, 0, 255).astype(np.uint8)
    out = pixels.normalise_map(m)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    assert out[1, 1] > out[1, 0] > out[0, 1] > out[0, 0]


def test_normalise_map_matches_formula_on_many_values():
    m = rng().normal(5.0, 3.0, size=(32, 32)).astype(np.float32)
    m64 = m.astype(np.float64)
    expected = np.clip((m64 - m64.mean()) / m64.std() * 64 + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels.normalise_map(m), expected)


def test_normalise_map_clips_outliers():
    m = np.zeros(100)
    m[0] = 1000.0  # 9.95 std above the mean -> far above 255
    out = pixels.normalise_map(m)
    assert out[0] == 255
    assert np.all(out[1:] == out[1])
    assert out[1] < 128


@pytest.mark.parametrize("m", [
    np.zeros((5, 5)), np.full((3, 4), 7.5),
    np.full((3, 5), 0.1), np.full((14, 14), 0.7), np.full((14, 14), 0.1, dtype=np.float32),
    np.array([[np.nan, 1.0]]), np.array([[np.inf, 1.0]]), np.array([[1e300, -1e300]]),
    np.array([[0.0, 5e-324]]), np.zeros((0, 3)),
])
def test_normalise_map_flat_or_broken_maps_are_128(m):
    out = pixels.normalise_map(m)
    assert out.shape == m.shape and out.dtype == np.uint8
    assert np.all(out == 128)


# --- deprocess ---------------------------------------------------------------------------------


def test_deprocess_matches_formula_and_range():
    x = rng().normal(3.0, 40.0, size=(6, 5, 3))
    expected = (np.clip((x - x.mean()) / (x.std() + 1e-5) * 0.1 + 0.5, 0, 1) * 255).astype(np.uint8)
    out = pixels.deprocess(x)
    assert out.dtype == np.uint8 and out.shape == x.shape
    np.testing.assert_array_equal(out, expected)
    assert 100 < out.mean() < 155  # centred near 0.5 * 255


def test_deprocess_batch_normalises_each_image_on_its_own():
    x = rng().normal(size=(8, 8, 3))
    other = np.random.default_rng(1).normal(size=(8, 8, 3))
    batch = np.stack([x, 1000.0 * x, x + 50.0, other])
    out = pixels.deprocess(batch)
    for i in range(len(batch)):
        np.testing.assert_array_equal(out[i], pixels.deprocess(batch[i]))
    # each image's own scale and offset are normalised away, so the first three look alike
    for i in (1, 2):
        assert np.abs(out[i].astype(int) - out[0]).max() <= 1
    assert np.abs(out[3].astype(int) - out[0]).max() > 10


def test_deprocess_constant_image_is_mid_grey_without_warnings():
    out = pixels.deprocess(np.full((4, 4, 3), 9.0))
    assert np.all(out == 127)


# --- small helpers -----------------------------------------------------------------------------


def test_symmetric_limit_uses_largest_magnitude():
    kernels = np.zeros((3, 3, 2))
    kernels[0, 0, 0] = 0.5
    kernels[1, 1, 1] = -2.0
    assert pixels.symmetric_limit(kernels) == 2.0
    assert pixels.symmetric_limit(-kernels) == 2.0
    assert pixels.symmetric_limit(np.zeros((3, 3, 4))) == 1.0


def test_tile_mosaic_places_tiles_row_by_row_and_fills_the_rest():
    tiles = np.arange(5)[:, None, None] * np.ones((5, 2, 3), dtype=int)
    mosaic = pixels.tile_mosaic(tiles, per_row=2, fill=-1)
    assert mosaic.shape == (3 * 2, 2 * 3)
    for k in range(5):
        r, c = divmod(k, 2)
        assert np.all(mosaic[r * 2:(r + 1) * 2, c * 3:(c + 1) * 3] == k)
    assert np.all(mosaic[4:, 3:] == -1)


def test_tile_mosaic_keeps_colour_channels():
    tiles = rng().integers(0, 255, size=(3, 4, 4, 3), dtype=np.uint8)
    mosaic = pixels.tile_mosaic(tiles, per_row=3, fill=255)
    assert mosaic.shape == (4, 12, 3)
    np.testing.assert_array_equal(mosaic[:, 4:8], tiles[1])


def test_upsample_is_bilinear_to_the_requested_size():
    a = np.array([[0.0, 1.0], [0.0, 1.0]])
    up = pixels.upsample(a, (10, 20))
    assert up.shape == (10, 20)
    assert up.min() >= 0.0 and up.max() <= 1.0
    assert np.all(np.diff(up, axis=1) >= 0)  # ramps left to right ...
    assert 0.0 < up[5, 10] < 1.0  # ... with in-between values, not nearest-neighbour steps
    np.testing.assert_allclose(pixels.upsample(np.full((3, 3), 2.5), (7, 7)), 2.5)


# --- every figure ------------------------------------------------------------------------------

IMAGE = (rng().random((40, 48, 3)) * 255).astype(np.uint8)
RENDERERS = {
    "feature_map_grid": lambda p: figures.feature_map_grid(
        rng().random((9, 9, 20)), p, title="block1_conv1 maps"),
    "exciter_grid": lambda p: figures.exciter_grid(
        pixels.deprocess(rng().normal(size=(10, 16, 16, 3))), list(range(10, 20)), p,
        title="exciters"),
    "save_rgb": lambda p: figures.save_rgb(IMAGE, p),
    "activation_overlay": lambda p: figures.activation_overlay(
        IMAGE, rng().random((5, 6)), p, title="overlay"),
    "kernel_heatmaps": lambda p: figures.kernel_heatmaps(
        rng().normal(size=(3, 3, 7)), [f"conv:{i}" for i in range(7)], p, title="kernels"),
    "top_predictions_bar": lambda p: figures.top_predictions_bar(
        ["pizza", "bagel", "plate"], [0.1, 0.85, 0.05], p, title="top-3"),
    "output_map": lambda p: figures.output_map(IMAGE, rng().random((20, 24, 1)), p, title="edges"),
    "norm_bar": lambda p: figures.norm_bar(["a", "b", "c"], [1.0, 3.0, 2.0], p, title="norms"),
    "faithfulness_curves": lambda p: figures.faithfulness_curves(
        ["Grad-CAM", "random order"], np.array([[1, 0.4, 0.1, 0], [1, 0.7, 0.3, 0]]),
        np.array([[0, 0.8, 0.9, 1], [0, 0.3, 0.6, 1]]), p, title="curves"),
}


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_figure_writes_a_valid_png(name, tmp_path):
    path = tmp_path / "sub" / f"{name}.png"
    assert RENDERERS[name](path) == path
    fmt, info, pixels = read_png(path)
    assert fmt == "PNG"
    assert "Software" not in info
    height, width = pixels.shape[:2]
    if name == "save_rgb":
        assert (height, width) == IMAGE.shape[:2]
    else:
        assert 150 <= width <= 2000 and 100 <= height <= 2000, (width, height)
    assert pixels.std() > 0  # something was drawn


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_figure_is_byte_identical_when_rendered_twice(name, tmp_path):
    first = RENDERERS[name](tmp_path / "a.png").read_bytes()
    second = RENDERERS[name](tmp_path / "b.png").read_bytes()
    assert first == second


def test_save_rgb_round_trips_pixels_and_rejects_floats(tmp_path):
    path = figures.save_rgb(IMAGE, tmp_path / "x.png")
    np.testing.assert_array_equal(read_png(path)[2], IMAGE)
    with pytest.raises(ValueError):
        figures.save_rgb(IMAGE / 255.0, tmp_path / "y.png")


def test_feature_map_grid_handles_512_channels_with_dead_ones(tmp_path):
    maps = rng().random((14, 14, 512))
    maps[..., ::3] = 0.0  # dead channels: std == 0
    path = figures.feature_map_grid(maps, tmp_path / "g.png", title="block4_conv1")
    height, width = read_png(path)[2].shape[:2]
    assert height > 2 * width  # 32 rows of 16


def test_feature_map_grid_per_row_controls_the_shape(tmp_path):
    maps = rng().random((10, 10, 16))
    wide = read_png(figures.feature_map_grid(maps, tmp_path / "w.png", title="t", per_row=16))[2]
    tall = read_png(figures.feature_map_grid(maps, tmp_path / "t.png", title="t", per_row=2))[2]
    assert wide.shape[1] > wide.shape[0]
    assert tall.shape[0] > tall.shape[1]


def red_and_blue_pixels(pixels):
    r, b = pixels[..., 0], pixels[..., 2]
    return int(np.sum(r - b > 60)), int(np.sum(b - r > 60))


def test_kernel_heatmaps_draw_positive_red_and_negative_blue(tmp_path):
    excitatory = np.full((3, 3, 2), 0.3)
    red, blue = red_and_blue_pixels(read_png(
        figures.kernel_heatmaps(excitatory, ["a", "b"], tmp_path / "p.png", title="t"))[2])
    assert red > 5 * blue  # the colour bar adds some blue, the kernels are all red
    red, blue = red_and_blue_pixels(read_png(
        figures.kernel_heatmaps(-excitatory, ["a", "b"], tmp_path / "n.png", title="t"))[2])
    assert blue > 5 * red


def test_kernel_heatmaps_zero_kernels_and_label_mismatch(tmp_path):
    figures.kernel_heatmaps(np.zeros((3, 3, 2)), ["a", "b"], tmp_path / "z.png", title="dead")
    with pytest.raises(ValueError):
        figures.kernel_heatmaps(np.zeros((3, 3, 2)), ["a"], tmp_path / "m.png", title="t")


def test_dead_activations_render_without_warnings(tmp_path):
    figures.activation_overlay(IMAGE, np.zeros((5, 5)), tmp_path / "o.png", title="dead")
    figures.feature_map_grid(np.zeros((4, 4, 3)), tmp_path / "g.png", title="dead")


def test_bar_charts_reject_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError):
        figures.top_predictions_bar(["a", "b"], [0.5], tmp_path / "t.png", title="t")
    with pytest.raises(ValueError):
        figures.norm_bar(["a"], [1.0, 2.0], tmp_path / "n.png", title="t")


def test_faithfulness_curves_need_one_label_per_curve_and_equal_shapes(tmp_path):
    curves = np.ones((2, 5))
    with pytest.raises(ValueError):
        figures.faithfulness_curves(["a"], curves, curves, tmp_path / "c.png", title="t")
    with pytest.raises(ValueError):
        figures.faithfulness_curves(["a", "b"], curves, curves[:, :4], tmp_path / "c.png", title="t")


def test_exciter_grid_needs_one_label_per_image(tmp_path):
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError):
        figures.exciter_grid(images, [0, 1, 2], tmp_path / "e.png", title="t")
    with pytest.raises(ValueError):  # floats in [0, 1] would silently render black
        figures.exciter_grid(images / 255.0, [0, 1, 2, 3], tmp_path / "f.png", title="t")


def test_module_uses_agg_and_never_imports_tensorflow():
    code = ("import sys, matplotlib, generator.figures; "
            "assert matplotlib.get_backend().lower() == 'agg', matplotlib.get_backend(); "
            "assert not {'tensorflow', 'keras'} & set(sys.modules), 'model code imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_analysis_never_imports_display_code():
    code = ("import sys, generator.analysis.exciters, generator.analysis.circuits, generator.analysis.examples, "
            "generator.analysis.predictions, generator.analyses; "
            "shown = {'generator.figures', 'generator.circuit_diagram', 'generator.assets'} & set(sys.modules); "
            "assert not shown, shown")
    subprocess.run([sys.executable, "-c", code], check=True)
    # Keras itself may load matplotlib; the analysis modules never do.
    for module in (Path(figures.__file__).parent / "analysis").rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith("matplotlib") for n in names), module


def bar_lengths_top_to_bottom(pixels):
    """Length in pixels of each horizontal tab:blue bar, from the top of the image down."""
    blue = np.all(np.abs(pixels - [31, 119, 180]) < 8, axis=-1).sum(axis=1)
    rows = np.flatnonzero(blue > 3)
    bars = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    return [int(blue[bar].max()) for bar in bars]


@pytest.mark.parametrize("draw", [
    lambda p: figures.top_predictions_bar(["low", "high", "mid"], [0.1, 0.7, 0.2], p, title="t"),
    lambda p: figures.norm_bar(["low", "high", "mid"], [1.0, 7.0, 2.0], p, title="t"),
])
def test_bars_are_ranked_largest_at_the_top(draw, tmp_path):
    lengths = bar_lengths_top_to_bottom(read_png(draw(tmp_path / "bars.png"))[2])
    assert len(lengths) == 3
    assert lengths[0] > lengths[1] > lengths[2]
    assert lengths[0] > 3 * lengths[2]


@pytest.mark.parametrize("low, high, ticks", [
    (0.008, 700.0, [0.01, 0.1, 1.0, 10.0, 100.0]),  # wide: the powers of ten alone
    (2.1, 11.5, [5.0, 10.0]),  # under three powers inside: 2 and 5 times each too
    (0.3, 40.0, [0.5, 1.0, 2.0, 5.0, 10.0, 20.0]),
    (2.37, 4.22, [2.37, 4.22]),  # no 1, 2 or 5 times a power of ten inside: the ends, to 3 digits
    (0.913, 1.154, [0.913, 1.15]),  # only one inside (1): the ends, rounded inwards
])
def test_log_ticks_are_powers_of_ten_then_their_2_and_5_multiples(low, high, ticks):
    assert dashboard_figures.log_ticks(low, high) == pytest.approx(ticks)


@pytest.mark.parametrize("top, ticks", [(1, [0, 1]), (5, [0, 1, 2, 3, 4, 5]), (6, [0, 2, 4, 6]),
                                        (31, [0, 10, 20, 30]), (1200, [0, 500, 1000])])
def test_linear_ticks_step_by_1_2_5_times_a_power_of_ten(top, ticks):
    assert dashboard_figures.linear_ticks(top) == ticks


def test_activation_histogram_draws_each_series_where_its_images_are(tmp_path):
    from generator.analysis.distribution import EDGES

    max_counts, mean_counts = np.zeros(len(EDGES) - 1, int), np.zeros(len(EDGES) - 1, int)
    max_counts[np.searchsorted(EDGES, 10.0)] = 5  # five images peak just above 10
    mean_counts[np.searchsorted(EDGES, 0.1)] = 2  # two average just above 0.1
    mean_counts[0] = 3  # three at 0 or below: in the legend, not drawn
    path = dashboard_figures.activation_histogram(EDGES, max_counts, mean_counts, tmp_path / "h.png", title="c:1")
    with Image.open(path) as png:
        assert png.mode == "RGBA"
        pixels = np.asarray(png)
    assert pixels[0, 0, 3] == 0 and pixels[-1, -1, 3] == 0  # transparent background
    plot = pixels[dashboard_figures.LEGEND_Y + dashboard_figures.LEGEND_ROW + 4:]  # below the title and the legend
    tops = {}
    for name, colour in (("max", dashboard_figures.MAX_COLOUR), ("mean", dashboard_figures.MEAN_COLOUR)):
        ys, xs = np.nonzero(np.all(plot == colour, axis=-1))
        tops[name] = (ys.min(), xs[ys == ys.min()].mean())
    assert tops["max"][0] < tops["mean"][0]  # five images stand higher than two
    assert tops["max"][1] > tops["mean"][1] + 100  # 10 is two decades right of 0.1


def test_activation_histogram_legend_stays_in_the_picture_however_many_images(tmp_path):
    from generator.analysis.distribution import EDGES

    counts = np.zeros(len(EDGES) - 1, int)
    counts[0], counts[np.searchsorted(EDGES, 3.0)] = 250_000, 120_000  # six-digit counts in the legend's words
    path = dashboard_figures.activation_histogram(EDGES, counts, counts, tmp_path / "h.png", title="c:1")
    with Image.open(path) as png:
        alpha = np.asarray(png)[..., 3]
    assert alpha[:, -8:].max() == 0  # nothing drawn in the right margin (the plot box ends 16 px in)
    assert alpha[dashboard_figures.LEGEND_Y - 3:dashboard_figures.LEGEND_Y + dashboard_figures.LEGEND_ROW + 4].any()


def test_dollar_signs_in_class_names_and_titles_are_text_not_formulas(tmp_path):
    """Matplotlib would parse '$...$' as mathtext: an unbalanced formula failed the figure (and the build)."""
    labels = ["a $\\frac{ b", "x$y$z"]
    path = figures.top_predictions_bar(labels, [0.6, 0.4], tmp_path / "bars.png", title="class $\\frac{ x$")
    assert read_png(path)[0] == "PNG"


@pytest.mark.parametrize("side", [224, 50, figures.STRIP_TILE])
def test_a_strip_of_the_images_tiles_is_the_strip_of_the_images(tmp_path, side):
    images = rng().integers(0, 256, (3, side, side, 3), dtype=np.uint8)
    maps = rng().random((3, 7, 7)).astype(np.float32)
    tiles = figures.strip_tiles(images)
    assert tiles.shape == (3, figures.STRIP_TILE, figures.STRIP_TILE, 3) and tiles.dtype == np.uint8
    whole = figures.activation_strip(images, maps, ["a", "b", "c"], tmp_path / "whole.jpg").read_bytes()
    tiled = figures.activation_strip(tiles, maps, ["a", "b", "c"], tmp_path / "tiled.jpg").read_bytes()
    assert tiled == whole
    if side != figures.STRIP_TILE:  # the tiles are the resized images, which the strip shows
        resized = np.asarray(Image.fromarray(images[1]).resize((figures.STRIP_TILE,) * 2, Image.BILINEAR))
        np.testing.assert_array_equal(tiles[1], resized)
