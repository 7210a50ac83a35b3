"""Photos as people take them: EXIF orientation, every pixel format, animations, huge files."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from generator import images
from generator.errors import GeneratorError
from generator.images import read_square

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(h: int, w: int) -> np.ndarray:
    """An (h, w, 3) picture: red top-left, green top-right, blue bottom-left, white bottom-right."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2], a[: h // 2, w // 2 :] = RED, GREEN
    a[h // 2 :, : w // 2], a[h // 2 :, w // 2 :] = BLUE, WHITE
    return a


def corners(pixels: np.ndarray) -> list[tuple[int, ...]]:
    """The colour at the middle of each quadrant: top-left, top-right, bottom-left, bottom-right."""
    q = pixels.shape[0] // 4
    return [tuple(int(v) for v in pixels[y, x]) for y, x in ((q, q), (q, 3 * q), (3 * q, q), (3 * q, 3 * q))]


def assert_colours(pixels: np.ndarray, expected: list[tuple[int, ...]], tol: int = 12) -> None:
    got = corners(pixels)
    assert all(abs(g - e) <= tol for gc, ec in zip(got, expected) for g, e in zip(gc, ec)), (got, expected)


@pytest.mark.parametrize("orientation, turn", [(6, 1), (8, -1), (3, 2)])
def test_phone_photos_are_turned_upright_by_their_exif_orientation(tmp_path, orientation, turn):
    upright = quadrants(96, 64)  # portrait, as the photographer held the phone
    stored = np.ascontiguousarray(np.rot90(upright, k=turn))  # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    pixels = read_square(path, 32)
    assert pixels.shape == (32, 32, 3)
    assert_colours(pixels, [RED, GREEN, BLUE, WHITE])


def test_the_crop_is_centred_not_top_left(tmp_path):
    wide = np.zeros((40, 120, 3), np.uint8)
    wide[:, :40], wide[:, 40:80], wide[:, 80:] = RED, GREEN, BLUE
    tall = np.ascontiguousarray(np.rot90(wide))
    for name, array in (("wide.png", wide), ("tall.png", tall)):
        Image.fromarray(array).save(tmp_path / name)
        pixels = read_square(tmp_path / name, 20)
        np.testing.assert_array_equal(pixels[2:-2, 2:-2], np.broadcast_to(GREEN, (16, 16, 3)))


def test_a_16_bit_png_is_scaled_not_clipped_to_white(tmp_path):
    ramp = np.linspace(0, 65535, 64).round().astype(np.uint16)
    Image.fromarray(np.tile(ramp, (64, 1))).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as im:
        assert im.mode == "I;16"
    row = read_square(tmp_path / "deep.png", 64)[32, :, 0].astype(int)
    expected = np.linspace(0, 255, 64)
    assert np.abs(row - expected).max() <= 3, row
    assert row[32] < 200  # the old convert("RGB") clipped everything above 255 to white


def write_png_48(path, rgb16: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot write one)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_a_16_bit_rgb_png_keeps_its_colours(tmp_path):
    rgb = quadrants(32, 32).astype(np.uint16) * 257  # 255 -> 65535
    rgb[16:, 16:] = 32896  # the bottom-right quadrant mid grey: 128 in 8 bits
    write_png_48(tmp_path / "deep.png", rgb)
    assert_colours(read_square(tmp_path / "deep.png", 32), [RED, GREEN, BLUE, (128, 128, 128)], tol=0)


def test_32_bit_integer_and_float_grey(tmp_path):
    ramp = np.linspace(0, 65535, 32)
    Image.fromarray(np.tile(ramp, (32, 1)).astype(np.int32)).save(tmp_path / "int.tiff")
    Image.fromarray(np.tile(ramp / 65535 * 0.5, (32, 1)).astype(np.float32)).save(tmp_path / "float.tiff")
    for name in ("int.tiff", "float.tiff"):
        row = read_square(tmp_path / name, 32)[16, :, 1].astype(int)
        assert row[0] <= 2 and row[-1] >= 252 and np.all(np.diff(row) >= 0), (name, row)


def test_palette_grey_and_cmyk_keep_their_colours(tmp_path):
    rgb = quadrants(32, 32)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "palette.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "palette.gif")
    grey = np.tile(np.array([[30, 200], [120, 250]], np.uint8).repeat(16, 0).repeat(16, 1)[..., None], (1, 1, 1))[..., 0]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.tiff")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    for name in ("palette.png", "palette.gif", "cmyk.tiff", "cmyk.jpg"):
        assert_colours(read_square(tmp_path / name, 32), [RED, GREEN, BLUE, WHITE], tol=20 if name.endswith("jpg") else 0)
    assert_colours(read_square(tmp_path / "grey.png", 32), [(30,) * 3, (200,) * 3, (120,) * 3, (250,) * 3], tol=0)


def test_transparency_is_composited_on_white(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere, with alpha 255 / 0 / 128 / 0 by quadrant
    rgba[:16, :16, 3], rgba[16:, :16, 3] = 255, 128
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert_colours(read_square(tmp_path / "rgba.png", 32), [RED, WHITE, (255, 127, 127), WHITE], tol=2)

    la = np.zeros((32, 32, 2), np.uint8)  # black, opaque on the left, clear on the right
    la[:, :16, 1] = 255
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert_colours(read_square(tmp_path / "la.png", 32), [(0, 0, 0), WHITE, (0, 0, 0), WHITE], tol=0)

    palette = Image.fromarray(quadrants(32, 32)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    clear = palette.getpixel((8, 8))  # the red quadrant's palette index becomes transparent
    palette.save(tmp_path / "clear.png", transparency=clear)
    palette.save(tmp_path / "clear.gif", transparency=clear)
    for name in ("clear.png", "clear.gif"):
        assert_colours(read_square(tmp_path / name, 32), [WHITE, GREEN, BLUE, WHITE], tol=0)


def test_an_animation_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (24, 24), RED), Image.new("RGB", (24, 24), BLUE)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    for name in ("anim.gif", "anim.webp"):
        with Image.open(tmp_path / name) as im:
            assert im.n_frames == 2
            im.seek(1)  # even when the file was left on a later frame
            assert images.square(im, 16)[8, 8].tolist() == list(RED)
        assert read_square(tmp_path / name, 16)[8, 8].tolist() == list(RED)


def test_a_large_jpeg_is_decoded_at_reduced_size(tmp_path, monkeypatch):
    big = np.zeros((1200, 1600, 3), np.uint8)
    big[:, 200:1400] = quadrants(1200, 1200)  # the centre square holds the pattern
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=90)
    decoded = []
    square = images.square
    monkeypatch.setattr(images, "square", lambda im, size: decoded.append(im.size) or square(im, size))
    pixels = read_square(tmp_path / "big.jpg", 64)
    assert decoded == [(200, 150)]  # 1/8 scale: still at least twice the 64 px target on each side
    assert_colours(pixels, [RED, GREEN, BLUE, WHITE], tol=20)
    read_square(tmp_path / "big.jpg", 100)
    assert decoded[1] == (400, 300)  # 1/4 scale: 1/8 would be under 200 px


def test_a_decompression_bomb_is_one_clear_line(tmp_path, monkeypatch):
    Image.new("RGB", (800, 600), GREEN).save(tmp_path / "huge.png")
    Image.new("RGB", (800, 600), GREEN).save(tmp_path / "huge.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300_000)  # 480,000 pixels: over the limit, under twice it
    with pytest.raises(GeneratorError) as e:
        read_square(tmp_path / "huge.png", 32)
    assert str(e.value).startswith("config key 'images.files': image 'huge.png' is too large to decode safely")
    assert "\n" not in str(e.value)
    assert np.abs(read_square(tmp_path / "huge.jpg", 32)[16, 16].astype(int) - GREEN).max() <= 2  # JPEG: at 1/8 scale
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)  # over twice the limit: Pillow refuses to open it
    for name in ("huge.png", "huge.jpg"):
        with pytest.raises(GeneratorError, match=f"image '{name}' is too large to decode safely"):
            read_square(tmp_path / name, 32, "dataset examples")


def test_a_bomb_in_the_examples_folder_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    from generator.images import _readable

    Image.new("RGB", (800, 600), GREEN).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)  # over twice the limit: Pillow will not open it
    with caplog.at_level("WARNING", logger="generator"):
        assert _readable(tmp_path / "huge.png") is False
    assert "skipping" in caplog.text and "huge.png" in caplog.text
