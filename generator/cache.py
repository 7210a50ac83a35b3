"""A content-addressed on-disk cache for arrays, JSON records and rendered figures.

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


# Bump when a change to the analyses or figures should invalidate what earlier versions cached.
CACHE_VERSION = 1


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
        h.update(json.dumps(part, default=repr).encode())  # a scalar, or anything else by its repr
    h.update(b"\x00")


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / key[:2] / f"{key}{suffix}"

    def _store(self, path: Path, write: Callable[[Path], None]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        write(tmp)
        os.replace(tmp, path)

    def has(self, key: str) -> bool:
        """Whether arrays are stored under ``key``."""
        return self._path(key, ".npz").exists()

    def arrays(self, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The arrays stored under ``key``, computing and storing them on a miss."""
        path = self._path(key, ".npz")
        if path.exists():
            self.hits += 1
            with np.load(path) as data:
                return {name: data[name] for name in data.files}
        self.misses += 1
        result = compute()

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **result)

        self._store(path, write)
        return result

    def record(self, key: str, compute: Callable[[], object]) -> object:
        """A JSON-able record stored under ``key``, computed on a miss."""
        path = self._path(key, ".json")
        if path.exists():
            self.hits += 1
            return json.loads(path.read_text(encoding="utf-8"))
        self.misses += 1
        result = compute()
        text = json.dumps(result)
        self._store(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return json.loads(text)

    def figure(self, dest: Path, render: Callable[..., Path], *args: object, **kwargs: object) -> Path:
        """Write ``render(*args, dest, **kwargs)``'s image to ``dest``, reusing a cached copy.

        The file type follows ``dest``'s suffix, which is part of the stored name.
        """
        key = digest(render.__module__, render.__qualname__, *args, kwargs)
        path = self._path(key, dest.suffix)
        if path.exists():
            self.hits += 1
        else:
            self.misses += 1
            self._store(path, lambda tmp: _render_to(render, tmp, dest.suffix, args, kwargs))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        return dest


def _render_to(render: Callable[..., Path], tmp: Path, suffix: str, args: tuple, kwargs: dict) -> None:
    out = tmp.with_name(tmp.name + suffix)  # renderers pick the format from the suffix
    render(*args, out, **kwargs)
    os.replace(out, tmp)
