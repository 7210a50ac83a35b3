"""Tests for generator.circuit_diagram: renders, repeats, colours edges by sign, validates."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from generator.circuit_diagram import circuit_diagram


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def read_png(path):
    with Image.open(path) as image:
        image.load()
        return image.format, image.info, np.asarray(image.convert("RGB")).astype(int)


def red_and_blue_pixels(pixels):
    r, b = pixels[..., 0], pixels[..., 2]
    return int(np.sum(r - b > 60)), int(np.sum(b - r > 60))


COLUMNS = [("block3_conv1", [203, 137, 212]), ("block3_conv2", [8, 31]), ("block3_conv3", [5])]


def edges(sign: float):
    """Every conv1 -> conv2 and conv2 -> conv3 edge, plus one skipping conv2, all of one sign."""
    out = [(("block3_conv1", s), ("block3_conv2", t), 0.2 + 0.1 * i, sign * (1 + i))
           for i, (s, t) in enumerate((s, t) for s in (203, 137, 212) for t in (8, 31))]
    out += [(("block3_conv2", 8), ("block3_conv3", 5), 2.0, sign),
            (("block3_conv2", 31), ("block3_conv3", 5), 0.01, sign),
            (("block3_conv1", 212), ("block3_conv3", 5), 1.0, sign)]
    return out


def thumbnails():
    rng = np.random.default_rng(0)
    return {("block3_conv1", 203): rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
            ("block3_conv2", 31): rng.integers(0, 256, (16, 24, 3), dtype=np.uint8),
            ("block3_conv3", np.int64(5)): np.zeros((8, 8, 3), dtype=np.uint8)}


def draw(path, edge_list=None, **kwargs):
    return circuit_diagram(COLUMNS, edges(1.0) if edge_list is None else edge_list,
                                   path, title="block3_conv3:5 circuit", **kwargs)


@pytest.mark.parametrize("thumbs", [None, thumbnails()], ids=["boxes", "thumbnails"])
def test_circuit_diagram_writes_a_valid_png(thumbs, tmp_path):
    path = tmp_path / "sub" / "circuit.png"
    assert draw(path, thumbnails=thumbs) == path
    fmt, info, pixels = read_png(path)
    assert fmt == "PNG"
    assert "Software" not in info
    height, width = pixels.shape[:2]
    assert 150 <= width <= 2000 and 100 <= height <= 2000, (width, height)
    assert pixels.std() > 0


@pytest.mark.parametrize("thumbs", [None, thumbnails()], ids=["boxes", "thumbnails"])
def test_circuit_diagram_is_byte_identical_when_rendered_twice(thumbs, tmp_path):
    first = draw(tmp_path / "a.png", thumbnails=thumbs).read_bytes()
    second = draw(tmp_path / "b.png", thumbnails=thumbs).read_bytes()
    assert first == second


def test_edges_are_red_when_excitatory_and_blue_when_inhibitory(tmp_path):
    # The legend always shows a red and a blue sample; an edge-less diagram measures them.
    base_red, base_blue = red_and_blue_pixels(read_png(draw(tmp_path / "0.png", []))[2])
    red, blue = red_and_blue_pixels(read_png(draw(tmp_path / "p.png", edges(1.0)))[2])
    assert blue == base_blue  # no blue line pixels at all
    assert red > base_red + 1000
    red, blue = red_and_blue_pixels(read_png(draw(tmp_path / "n.png", edges(-1.0)))[2])
    assert red == base_red
    assert blue > base_blue + 1000


def test_zero_net_edges_are_neither_red_nor_blue(tmp_path):
    base = red_and_blue_pixels(read_png(draw(tmp_path / "0.png", []))[2])
    grey = red_and_blue_pixels(read_png(draw(tmp_path / "g.png", edges(0.0)))[2])
    assert grey == base


def test_line_width_grows_with_norm(tmp_path):
    one = [(("block3_conv1", 137), ("block3_conv2", 8), 1.0, 1.0)]
    thin = one + [(("block3_conv1", 203), ("block3_conv2", 31), 100.0, -1.0)]
    thick = one + [(("block3_conv1", 203), ("block3_conv2", 31), 0.01, -1.0)]
    red_thin = red_and_blue_pixels(read_png(draw(tmp_path / "a.png", thin))[2])[0]
    red_thick = red_and_blue_pixels(read_png(draw(tmp_path / "b.png", thick))[2])[0]
    assert red_thick > 2 * red_thin  # the same edge, largest norm in one diagram, not the other


def test_unknown_node_raises_naming_it(tmp_path):
    bad = edges(1.0) + [(("block3_conv1", 999), ("block3_conv2", 8), 1.0, 1.0)]
    with pytest.raises(ValueError, match="block3_conv1:999"):
        draw(tmp_path / "x.png", bad)
    bad = [(("block3_conv1", 203), ("block9_conv9", 8), 1.0, 1.0)]
    with pytest.raises(ValueError, match="block9_conv9:8"):
        draw(tmp_path / "y.png", bad)
    with pytest.raises(ValueError, match="block3_conv2:77"):
        draw(tmp_path / "z.png", thumbnails={("block3_conv2", 77): thumbnails()[
            ("block3_conv1", 203)]})
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("edge", [
    (("block3_conv2", 8), ("block3_conv1", 203), 1.0, 1.0),  # runs right to left
    (("block3_conv1", 203), ("block3_conv1", 137), 1.0, 1.0),  # within one column
    (("block3_conv1", 203), ("block3_conv2", 8), -1.0, 1.0),  # negative norm
    (("block3_conv1", 203), ("block3_conv2", 8), 1.0, float("nan")),
])
def test_bad_edges_raise(edge, tmp_path):
    with pytest.raises(ValueError):
        draw(tmp_path / "x.png", [edge])


def test_bad_thumbnail_and_columns_raise(tmp_path):
    with pytest.raises(ValueError):
        draw(tmp_path / "x.png", thumbnails={("block3_conv1", 203): np.zeros((8, 8, 3))})
    with pytest.raises(ValueError):
        circuit_diagram([("a", [1, 1])], [], tmp_path / "y.png", title="t")
    with pytest.raises(ValueError):
        circuit_diagram([("a", [1]), ("a", [2])], [], tmp_path / "z.png", title="t")


def test_thumbnails_are_drawn(tmp_path):
    pixels = read_png(draw(tmp_path / "t.png", [], thumbnails=thumbnails()))[2]
    boxes = read_png(draw(tmp_path / "b.png", []))[2]
    assert pixels.shape[0] > boxes.shape[0]  # thumbnails need taller rows
    assert np.sum(np.all(pixels == 0, axis=-1)) > 1000  # the 8x8 black thumbnail, ~80x80 px


def test_twelve_nodes_three_columns_with_skips(tmp_path):
    rng = np.random.default_rng(1)
    columns = [("l1", list(range(12))), ("l2", list(range(100, 112))), ("l3", [7, 8, 9])]
    edge_list = [(("l1", s), ("l2", t), float(rng.random()), float(rng.normal()))
                 for s in range(12) for t in range(100, 112, 3)]
    edge_list += [(("l2", s), ("l3", t), float(rng.random()), float(rng.normal()))
                  for s in range(100, 112) for t in (7, 8, 9)]
    edge_list += [(("l1", s), ("l3", 8), 0.5, (-1) ** s) for s in range(12)]
    thumbs = {("l1", c): rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) for c in range(12)}
    path = circuit_diagram(columns, edge_list, tmp_path / "big.png", title="big",
                                   thumbnails=thumbs)
    height, width = read_png(path)[2].shape[:2]
    assert height <= 2000 and width <= 2000
