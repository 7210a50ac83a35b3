"""A content-addressed on-disk cache for typed results, arrays, JSON records and rendered figures.

A key is the hash of everything a result depends on (model fingerprint, image bytes,
parameters), so a rebuild with nothing changed finds every result and recomputes nothing,
and a change anywhere misses exactly the results it affects. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from generator import codec

# Bump when a change to the analyses or figures should invalidate what earlier versions cached.
CACHE_VERSION = 2
# Bump when only the drawing of figures changes: cached figures are redrawn, cached analyses kept.
FIGURES_VERSION = 2


def digest(*parts: object) -> str:
    """A stable hash of parts: JSON-able values, numpy arrays (dtype, shape, bytes), nested in lists and dicts."""
    h = hashlib.blake2b(digest_size=20)
    _feed(h, (CACHE_VERSION, parts))
    return h.hexdigest()


def _feed(h: "hashlib._Hash", part: object) -> None:
    if isinstance(part, np.ndarray):
        h.update(f"array{part.dtype}{part.shape}".encode())
        h.update(np.ascontiguousarray(part).tobytes())
    elif isinstance(part, (list, tuple)):
        h.update(f"list{len(part)}[".encode())
        for item in part:
            _feed(h, item)
        h.update(b"]")
    elif isinstance(part, dict):
        h.update(f"dict{len(part)}{{".encode())
        for name in sorted(part, key=str):
            _feed(h, str(name))
            _feed(h, part[name])
        h.update(b"}")
    else:
        h.update(json.dumps(part, sort_keys=True, default=repr).encode())
    h.update(b"\x00")


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / key[:2] / f"{key}{suffix}"

    def has(self, key: str) -> bool:
        """Whether a result is stored under ``key``."""
        return self._path(key, ".json").exists()

    def value(self, key: str, kind: object, compute: Callable[[], object]) -> object:
        """The result of type ``kind`` stored under ``key``, computed on a miss.

        Stored as its arrays (``.npz``, when it has any) and a JSON record naming them
        (:mod:`generator.codec`); the record is written last, so it marks a complete entry.
        """
        path = self._path(key, ".json")
        arrays_path = self._path(key, ".npz")
        if path.exists():
            self.hits += 1
            record = json.loads(path.read_text(encoding="utf-8"))
            arrays = {}
            if arrays_path.exists():
                with np.load(arrays_path) as data:
                    arrays = {name: data[name] for name in data.files}
            return codec.decode(kind, record, arrays)
        self.misses += 1
        result = compute()
        record, arrays = codec.encode(result)
        if arrays:
            _store(arrays_path, lambda tmp: _save_npz(tmp, arrays))
        text = json.dumps(record)
        _store(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return codec.decode(kind, json.loads(text), arrays)

    def figure_entry(self, dest: Path, render: Callable[..., Path], args: tuple, kwargs: dict) -> Path:
        """Where the cache keeps ``render(*args, dest, **kwargs)``'s image: counted a hit if it is there,
        else a miss for :func:`render_figure`; :func:`copy_figure` then puts it at ``dest``. The file
        type follows ``dest``'s suffix, which is part of the stored name."""
        key = digest("figure", FIGURES_VERSION, render.__module__, render.__qualname__, *args, kwargs)
        path = self._path(key, Path(dest).suffix)
        if path.exists():
            self.hits += 1
        else:
            self.misses += 1
        return path


def render_figure(stored: Path, render: Callable[..., Path], args: tuple, kwargs: dict) -> None:
    """Render a figure into its cache file atomically; runs in a worker process just as well."""
    _store(stored, lambda tmp: _render_to(render, tmp, stored.suffix, args, kwargs))


def copy_figure(stored: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stored, dest)
    return dest


def _store(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file through a temporary name beside it, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _render_to(render: Callable[..., Path], tmp: Path, suffix: str, args: tuple, kwargs: dict) -> None:
    out = tmp.with_name(tmp.name + suffix)  # renderers pick the format from the suffix
    render(*args, out, **kwargs)
    os.replace(out, tmp)
