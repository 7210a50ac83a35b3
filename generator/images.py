"""Reading the configured photos and the examples folder: centre-cropped square RGB arrays, plus the bytes that
key the cache."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from generator.config import Config, image_files, list_images
from generator.errors import GeneratorError
from generator.results import InputImage

log = logging.getLogger(__name__)


def square(image: Image.Image, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``size`` x ``size`` RGB uint8.

    The image is first turned upright by its EXIF orientation (phone photos) and converted
    to RGB by its real value range (:func:`to_rgb`); an animated image gives its first frame.
    """
    image.seek(0)
    ImageOps.exif_transpose(image, in_place=True)
    image = to_rgb(image)
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB: 16-bit grey scaled from 0..65535 (not clipped at 255), float
    grey stretched from its minimum to its maximum, anything with transparency (alpha,
    a palette or grey transparent colour) composited on white, palette and CMYK by Pillow."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        values = (values - values.min()) * (255.0 / max(float(np.ptp(values)), 1e-12))
        image = Image.fromarray(np.rint(values).astype(np.uint8))
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return image.convert("RGB")


def read_square(path: Path, size: int, what: str = "config key 'images.files'") -> np.ndarray:
    """The image at ``path`` as :func:`square` pixels; a missing or unreadable file, or one too
    large to decode safely (a decompression bomb), is one GeneratorError line starting with
    ``what`` (the config key or stage it belongs to)."""
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS: checked below on the size actually decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            image.draft(None, (2 * size, 2 * size))  # JPEG: decoded at 1/2, 1/4 or 1/8 scale, >= 2x the target
            if Image.MAX_IMAGE_PIXELS and image.width * image.height > Image.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(path)
            return square(image, size)
    except FileNotFoundError:
        raise GeneratorError(f"{what}: image {path.name!r} not found") from None
    except Image.DecompressionBombError:
        raise GeneratorError(
            f"{what}: image {path.name!r} is too large to decode safely (over {Image.MAX_IMAGE_PIXELS:,} pixels, "
            "or twice that for a JPEG, which is decoded at reduced size: a possible decompression bomb); scale it down"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        why = "not an image Pillow can read" if isinstance(e, UnidentifiedImageError) else str(e)
        raise GeneratorError(f"{what}: image {path.name!r} is unreadable ({why})") from None


def file_digest(path: Path) -> str:
    """A hash of the file's bytes: what cache keys depend on (not its modification time, which a fresh
    checkout resets)."""
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def load_image(path: Path, size: int) -> InputImage:
    pixels = read_square(path, size)
    return InputImage(path.stem, path.name, pixels, file_digest(path))


def load_images(paths: list[Path], size: int) -> list[InputImage]:
    images = [load_image(p, size) for p in paths]
    slugs = [im.slug for im in images]
    dupes = sorted({s for s in slugs if slugs.count(s) > 1})
    if dupes:
        raise GeneratorError(f"config key 'images.files': two images share the name {dupes[0]!r}; rename one")
    return images


def example_image_files(config: Config) -> list[Path]:
    """The images searched for dataset examples: ``browse.examples_dir``, else the configured images."""
    folder = config.browse.examples_dir
    if not folder:
        return image_files(config)
    path = config.folder(folder, "browse.examples_dir")
    files = [p for p in list_images(path, recursive=True) if _readable(p)]
    if not files:
        raise GeneratorError(f"config key 'browse.examples_dir': no readable image files in {folder!r}")
    return files


def _readable(path: Path) -> bool:
    """Whether Pillow recognises the file (a header read); a folder of thousands may hold a few bad ones."""
    try:
        with Image.open(path):
            return True
    except (OSError, ValueError, Image.DecompressionBombError):
        log.warning("skipping %s: not an image Pillow can read (or too large to decode safely)", path)
        return False
