"""Reading photos: the centre square, resized; errors name the file; the cache key is the file's bytes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from generator.errors import GeneratorError
from generator.images import load_image, load_images, read_square, square

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


def striped(width: int, height: int) -> Image.Image:
    """Red first quarter, green last quarter, blue between, along the longer side."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[...] = BLUE
    if width >= height:
        pixels[:, : width // 4], pixels[:, width - width // 4:] = RED, GREEN
    else:
        pixels[: height // 4], pixels[height - height // 4:] = RED, GREEN
    return Image.fromarray(pixels)


@pytest.mark.parametrize("width, height", [(80, 40), (40, 80)])
def test_square_is_the_centre_crop_not_a_corner(width, height):
    out = square(striped(width, height), 20)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    assert (out == BLUE).all()  # the red and green quarters lie outside the centre square


def test_square_keeps_the_whole_of_a_square_image_and_resizes_it():
    image = striped(64, 64)
    out = square(image, 32)
    np.testing.assert_array_equal(out, np.asarray(image.resize((32, 32), Image.BICUBIC)))
    assert tuple(out[16, 0]) == RED and tuple(out[16, -1]) == GREEN


@pytest.mark.parametrize("shape", [(4, 7), (7, 4)])
def test_square_of_an_odd_excess_rounds_the_offset_down(shape):
    pixels = np.zeros((*shape, 3), np.uint8)
    if shape[1] > shape[0]:
        pixels[:, 1:5] = 200  # columns 1..4: the centre crop of width 4 starts at (7 - 4) // 2 = 1
    else:
        pixels[1:5] = 200
    np.testing.assert_array_equal(square(Image.fromarray(pixels), 4), np.full((4, 4, 3), 200, np.uint8))


def test_square_converts_grey_and_alpha_to_rgb():
    assert square(Image.new("L", (10, 10), 77), 10).shape == (10, 10, 3)
    assert (square(Image.new("RGBA", (10, 10), (1, 2, 3, 0)), 10) == (255, 255, 255)).all()  # transparent: on white
    assert (square(Image.new("RGBA", (10, 10), (1, 2, 3, 255)), 10) == (1, 2, 3)).all()


def test_read_square_errors_name_the_file_and_the_key(tmp_path):
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(GeneratorError) as e:
        read_square(tmp_path / "gone.png", 8)
    assert str(e.value) == "config key 'images.files': image 'gone.png' not found"
    with pytest.raises(GeneratorError) as e:
        read_square(tmp_path / "text.png", 8, "dataset examples")
    assert str(e.value) == "dataset examples: image 'text.png' is unreadable (not an image Pillow can read)"


def test_load_image_keys_the_cache_by_the_file_bytes(tmp_path):
    striped(30, 20).save(tmp_path / "a b.png")
    image = load_image(tmp_path / "a b.png", 16)
    assert (image.slug, image.file) == ("a b", "a b.png")
    assert image.digest == hashlib.blake2b((tmp_path / "a b.png").read_bytes(), digest_size=16).hexdigest()
    np.testing.assert_array_equal(image.pixels, read_square(tmp_path / "a b.png", 16))


def test_load_images_keeps_order_and_refuses_one_name_twice(tmp_path):
    for name in ("b.png", "a.png", "a.jpg"):
        striped(20, 20).save(tmp_path / name)
    assert [im.slug for im in load_images([tmp_path / "b.png", tmp_path / "a.png"], 8)] == ["b", "a"]
    with pytest.raises(GeneratorError) as e:
        load_images([tmp_path / "a.png", tmp_path / "b.png", tmp_path / "a.jpg"], 8)
    assert str(e.value) == "config key 'images.files': two images share the name 'a'; rename one"


def test_a_truncated_photo_says_what_pillow_found(tmp_path):
    striped(64, 64).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(GeneratorError) as e:
        read_square(tmp_path / "cut.png", 8)
    assert str(e.value).startswith("config key 'images.files': image 'cut.png' is unreadable (")
    assert "not an image Pillow can read" not in str(e.value) and "truncated" in str(e.value).lower()
