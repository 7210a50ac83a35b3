"""Where a build writes: one build at a time per project, into a fresh folder swapped in atomically.

The site lives in a folder ``docs/.generated-<pid>-<random>``; ``docs/generated`` (MkDocs'
``docs_dir``) is a symbolic link to it. A build writes a new folder, flushes it to the disk,
and renames a new link over ``docs/generated``: one atomic rename, so the path names a
complete site, the old or the new, at every instant, and no reader (``mkdocs serve``, a
browser test) ever sees it half-written or missing. Then the old folder is deleted.

Why a link and not two folder renames (old site aside, new site in): between those renames
``docs/generated`` does not exist, and ``mkdocs serve``'s file watcher (watchdog's polling
observer) stops for good when a poll finds its folder missing, so the server would keep
showing a stale site. A build killed at any point leaves the previous site; the next build
deletes what it left beside it (:func:`recover`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from generator import durable
from generator.errors import GeneratorError

log = logging.getLogger("generator")

LOCK = Path(".cache") / "build.lock"


@contextmanager
def locked(project: Path) -> Iterator[None]:
    """Hold the project's build lock; while another build holds it, log one line and wait.

    The kernel releases an ``flock`` when its holder exits, however it exits, so a killed
    build never leaves the lock behind.
    """
    path = project / LOCK
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path, "a+", encoding="utf-8")
    except OSError as e:  # a read-only project folder
        raise GeneratorError(f"cannot create the build lock {path}: {e.strerror or e}") from None
    with lock as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip()  # empty if read just as the holder rewrites it
            log.info("another build of this project is running%s; waiting for it to finish",
                     f" (pid {holder})" if holder else "")
            fcntl.flock(f, fcntl.LOCK_EX)
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        yield


@contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """A fresh folder to build into, swapped in as ``out_dir`` if the block succeeds, else deleted."""
    recover(out_dir)
    staging = _new_name(out_dir)
    staging.mkdir(parents=True)
    try:
        yield staging
        swap(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def swap(staging: Path, out_dir: Path) -> None:
    """Point ``out_dir`` at the finished folder ``staging`` in one rename; delete the old site."""
    durable.sync_all()  # the new site's bytes reach the disk before any name points at them
    link = _new_name(out_dir)
    os.symlink(staging.name, link)
    previous = current(out_dir)
    if out_dir.is_dir() and not out_dir.is_symlink():  # a site built before links (once): briefly missing
        previous = out_dir.parent / f".{out_dir.name}-moved-{secrets.token_hex(4)}"
        os.replace(out_dir, previous)
    os.replace(link, out_dir)
    durable.sync_dir(out_dir.parent)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def current(out_dir: Path) -> Path | None:
    """The folder that the link ``out_dir`` points at; None when it is no link."""
    return out_dir.parent / os.readlink(out_dir) if out_dir.is_symlink() else None


def recover(out_dir: Path) -> None:
    """Delete what killed builds left beside ``out_dir``: every site folder or link but the live one;
    a build killed while it moved a pre-link site folder aside puts that folder back."""
    if not out_dir.exists() and not out_dir.is_symlink():
        for moved in out_dir.parent.glob(f".{out_dir.name}-moved-*"):
            os.replace(moved, out_dir)
            break
    live = current(out_dir)
    for leftover in out_dir.parent.glob(f".{out_dir.name}-*"):
        if leftover != live:
            _remove(leftover)


def remove(out_dir: Path) -> None:
    """Delete the site: the link, the folder it points at and any leftovers."""
    recover(out_dir)
    live = current(out_dir)
    if out_dir.exists() or out_dir.is_symlink():
        _remove(out_dir)
    if live is not None:
        _remove(live)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _new_name(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}-{os.getpid()}-{secrets.token_hex(4)}"
