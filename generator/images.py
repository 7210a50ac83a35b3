"""Reading the configured photos: centre-cropped square RGB arrays, plus the bytes that key the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from generator.errors import GeneratorError
from generator.results import InputImage


def square(image: Image.Image, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``size`` x ``size`` RGB uint8."""
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def read_square(path: Path, size: int, what: str = "config key 'images.files'") -> np.ndarray:
    """The image at ``path`` as :func:`square` pixels; a missing or unreadable file is one
    GeneratorError line starting with ``what`` (the config key or stage it belongs to)."""
    try:
        with Image.open(path) as image:
            return square(image, size)
    except FileNotFoundError:
        raise GeneratorError(f"{what}: image {path.name!r} not found") from None
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
