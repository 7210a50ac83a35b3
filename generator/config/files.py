"""The files a config names: paths against the config's folder, text files, the images; checked before model work."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import GeneratorError, shown

if TYPE_CHECKING:
    from generator.config.sections import Config

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or undecodable file is one line starting with ``what``."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GeneratorError(f"{what} not found") from None
    except UnicodeDecodeError as e:
        raise GeneratorError(f"{what} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except ValueError:  # an embedded NUL character
        raise GeneratorError(f"{what} is not a valid file name") from None
    except OSError as e:
        raise GeneratorError(f"{what}: cannot read it ({e.strerror})") from None


def resolve_path(value: str, root: Path) -> Path:
    """``value`` (``~`` expanded) made absolute against ``root`` unless it already is."""
    return root / Path(value).expanduser()  # an absolute path replaces root


def image_files(config: Config) -> list[Path]:
    """The configured image paths, in config order (or sorted when ``files`` is empty)."""
    folder = config.folder(config.images.dir, "images.dir")
    if config.images.files:
        return [folder / name for name in config.images.files]
    return list_images(folder, recursive=False)


def list_images(folder: Path, recursive: bool) -> list[Path]:
    """Image files in ``folder`` by suffix, sorted; hidden files and folders are skipped."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in found
        if p.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def check_paths(config: Config) -> None:
    """Files the config names must exist before any model work starts."""
    labels = config.model.labels
    if labels and not config.path(labels).is_file():
        problem = "is a folder, not a file" if config.path(labels).is_dir() else "not found"
        raise GeneratorError(f"config key 'model.labels': file {shown(labels)} {problem}")
    for text in [*vars(config.notes).values(), *(u.note for u in config.units)]:
        config.note(text)
    files = image_files(config)
    if not files:
        raise GeneratorError(f"config key 'images.dir': no image files in {shown(config.images.dir)}")
    for name, p in zip(config.images.files, files):
        if not p.is_file():
            raise GeneratorError(f"config key 'images.files': image {shown(name)} not found in {shown(config.images.dir)}")
    names = [p.name for p in files]
    if config.images.composite and config.images.composite not in names:
        raise GeneratorError(
            f"config key 'images.composite': {shown(config.images.composite)} is not one of the images ({_listed(names)})"
        )


def _listed(names: list[str], limit: int = 5) -> str:
    """The first ``limit`` names, comma-separated, and how many there are when that is more."""
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(shown(n) for n in names[:limit]) + more
