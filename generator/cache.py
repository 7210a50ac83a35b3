"""A content-addressed on-disk cache for typed results and rendered figures.

A key is the hash of everything a result depends on (model fingerprint, image bytes,
parameters), so a rebuild with nothing changed finds every result and recomputes nothing,
and a change anywhere misses exactly the results it affects.

Writes are atomic and durable: written to a temporary name, on the disk before a rename publishes
it. One at a time (an fsync a file), or, inside :meth:`Cache.batched_writes` (a build), in batches: written
behind the compute (:mod:`generator.write_behind`), then one sync of the disk and the renames, when a write finds
the batch :data:`COMMIT_SECONDS` old and at the end. An entry that cannot be read
back (truncated by a crash, garbled by a bad copy) is deleted with a one-line warning and recomputed,
as if it had never been stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from generator import codec, durable
from generator.errors import GeneratorError
from generator.write_behind import WriteBehind

log = logging.getLogger("generator")


_MISSING = object()  # what a lookup finds when nothing intact is stored

# Bump when a change to the analyses or figures should invalidate what earlier versions cached.
CACHE_VERSION = 4  # 2: typed results as records + arrays; 3: photos upright by EXIF, 16-bit scaled, alpha on white;
# 4: every forward pass in inference mode, logit and binary heads read as probabilities
# Bump when only the drawing of figures changes: cached figures are redrawn, cached analyses kept.
FIGURES_VERSION = 7  # 3: charts on a transparent background in grey ink (both colour schemes); 4: the activation histogram drawn with Pillow;
# 5: its legend a line a series, a narrow axis ticked at its ends; 6: activation groups and concept maps drawn with Pillow;
# 7: PNGs deflated at zlib level 4 (the same pixels: a cold and a warm build write the same bytes)
COMMIT_SECONDS = 10.0  # batched writes: a write publishes the batch once it is this old


def digest(*parts: object) -> str:
    """A stable hash of parts: JSON-able values, numpy arrays (dtype, shape, bytes), nested in lists and dicts."""
    h = hashlib.blake2b(digest_size=20)
    _feed(h, (CACHE_VERSION, parts))
    return h.hexdigest()


def _feed(h: "hashlib._Hash", part: object) -> None:
    if isinstance(part, np.ndarray):
        h.update(f"array{part.dtype}{part.shape}".encode())
        data = np.ascontiguousarray(part)
        h.update(data.tobytes() if data.dtype.hasobject else data.reshape(-1).view(np.uint8))  # no copy of its bytes
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
        h.update(scalar_text(part).encode())
    h.update(b"\x00")


def scalar_text(part: object) -> str:
    """``json.dumps(part, default=repr)``: a scalar's JSON, anything else by its repr; the common types without
    the encoder's machinery (a build hashes some 100,000 of them)."""
    kind = type(part)
    if kind is str:
        return json.encoder.encode_basestring_ascii(part)
    if kind is int or (kind is float and math.isfinite(part)):
        return kind.__repr__(part)
    return json.dumps(part, default=repr)


class Cache:
    def __init__(self, root: Path, prepare: Callable[[], None] | None = None):
        """``prepare()`` runs once, before the first result is computed (not for a lookup that finds it)."""
        self.root = Path(root)
        self._prepare = prepare
        self.hits = 0
        self.misses = 0
        self._figures: set[Path] = set()  # the figure entries looked up: one shown on two pages counts once
        self._pending: dict[Path, Path] | None = None  # batched writes: entry -> its written temporary file
        self._committed = 0.0  # when the pending entries were last published
        self._writes: WriteBehind | None = None  # batched writes: the thread writing the entries

    @contextmanager
    def batched_writes(self) -> Iterator[Cache]:
        """Within, every entry is written to its temporary file and published in batches (:meth:`commit`): when a
        write finds the last batch :data:`COMMIT_SECONDS` old, and at the end, also on an error or Ctrl-C (what was
        written whole is kept, what was still to be written is dropped). A cold default build writes 2,417 entries,
        an fsync each before. Pending entries read as stored; a power cut loses them, and never leaves a torn one
        under an entry's name."""
        if self._pending is not None:  # within a batch already: it is this one
            yield self
            return
        self._remove_orphans()
        self._pending, self._committed, self._writes = {}, time.monotonic(), WriteBehind()
        stopped = False
        try:
            yield self
        except BaseException:
            stopped = True
            raise
        finally:
            try:
                self.commit(drop_unstarted=stopped)
            finally:
                self._writes.close()
                self._pending = self._writes = None

    def _remove_orphans(self) -> None:
        """Delete the temporary files of processes that no longer run (a build killed before it published them)."""
        for tmp in self.root.glob("*/.*.tmp"):
            pid = tmp.name.rsplit(".", 2)[-2]
            if pid.isdigit() and not _running(int(pid)):
                tmp.unlink(missing_ok=True)

    def keep(self, tmp: Path, path: Path) -> None:
        """Publish the finished temporary file ``tmp`` as the entry ``path``: now (durably), or with the
        batch."""
        if self._pending is None:
            _or_remove(lambda: durable.replace(tmp, path), [tmp], f"cannot write the cache entry {path}")
            return
        self._pending.pop(path, None)  # written again: published in its new place in the order (arrays before record)
        self._pending[path] = tmp
        if time.monotonic() - self._committed >= COMMIT_SECONDS:
            self.commit()

    def commit(self, drop_unstarted: bool = False) -> None:
        """Publish the pending entries once written: their bytes reach the disk (one sync), then each is renamed
        into place. Those a failed write stopped are not (the failure is raised after), nor, ``drop_unstarted``,
        those whose writing had not started."""
        unwritten = self._writes.settle(cancel=drop_unstarted) if self._writes else set()
        if self._pending:
            pending, self._pending = self._pending, {}
            for path in unwritten & pending.keys():
                pending.pop(path).unlink(missing_ok=True)
            _or_remove(lambda: _rename_all(pending), list(pending.values()),
                       f"cannot publish the cache entries under {self.root}")
            self._committed = time.monotonic()
        if self._writes:
            self._writes.raise_failed()

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / key[:2] / f"{key}{suffix}"

    def _stored(self, path: Path) -> Path:
        """Where the entry ``path`` is read from: its temporary file while it waits to be published (once written)."""
        if self._writes is not None:
            self._writes.wait(path)
        return self._pending.get(path, path) if self._pending else path

    def _load(self, path: Path, read: Callable[[Path], object]) -> object:
        """``read(path)``, or _MISSING when the entry is missing or damaged (then it is deleted)."""
        source = self._stored(path)
        if not source.exists():
            return _MISSING
        try:
            return read(source)
        except Exception as e:  # noqa: BLE001 - zipfile, numpy, json and Pillow each raise their own on a damaged file
            log.warning("cache entry %s is damaged (%s: %s); recomputing it", path, type(e).__name__, e)
            self._drop(path)
            return _MISSING

    def _drop(self, path: Path) -> None:
        """Delete the entry ``path`` (its temporary file while it waits to be published)."""
        self._stored(path).unlink(missing_ok=True)
        if self._pending:
            self._pending.pop(path, None)

    def _entry(self, key: str) -> tuple[object, dict[str, np.ndarray]] | object:
        """(record, arrays) stored under ``key``, or _MISSING when either part is missing or damaged."""
        arrays_path = self._path(key, ".npz")
        record = self._load(self._path(key, ".json"), lambda p: json.loads(p.read_text(encoding="utf-8")))
        if record is _MISSING or not self._stored(arrays_path).exists():
            return record if record is _MISSING else (record, {})
        arrays = self._load(arrays_path, _read_arrays)
        if arrays is _MISSING:
            self._drop(self._path(key, ".json"))
            return _MISSING
        return record, arrays

    def has(self, key: str) -> bool:
        """Whether an intact result is stored under ``key`` (a damaged entry is deleted, so: no)."""
        return self._entry(key) is not _MISSING

    def value(self, key: str, kind: object, compute: Callable[[], object]) -> object:
        """The result of type ``kind`` stored under ``key``, computed on a miss.

        Stored as its arrays (``.npz``, when it has any) and a JSON record naming them
        (:mod:`generator.codec`); the record is written last, so it marks a complete entry.
        """
        stored = self._entry(key)
        if stored is not _MISSING:
            self.hits += 1
            return codec.decode(kind, *stored)
        self.misses += 1
        self._computing()
        result = compute()
        record, arrays = codec.encode(result)
        if arrays:
            self._store(self._path(key, ".npz"), lambda tmp: _save_npz(tmp, arrays))
        text = json.dumps(record)
        self._store(self._path(key, ".json"), lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return codec.decode(kind, record, arrays)  # what a hit decodes (decode reads a tuple as JSON's list)

    def values(self, keys: dict, kind: object, compute_missing: Callable[[list], dict]) -> dict:
        """The results of type ``kind`` stored under ``keys`` (name -> key), each entry read once; the
        missing ones computed together by ``compute_missing(names) -> {name: result}`` and stored."""
        found = {}
        for name, key in keys.items():
            stored = self._entry(key)
            if stored is not _MISSING:
                self.hits += 1
                found[name] = codec.decode(kind, *stored)
        missing = [name for name in keys if name not in found]
        if missing:
            self._computing()
            computed = compute_missing(missing)
            found.update({name: self.value(keys[name], kind, lambda name=name: computed[name]) for name in missing})
        return {name: found[name] for name in keys}

    def _computing(self) -> None:
        prepare, self._prepare = self._prepare, None
        if prepare is not None:
            prepare()

    def figure_entry(self, dest: Path, render: Callable[..., Path], args: tuple, kwargs: dict) -> tuple[Path, bool]:
        """Where the cache keeps ``render(*args, dest, **kwargs)``'s image, and whether it must be drawn
        (:func:`render_figure`, then :meth:`keep`): counted a hit if it is there and intact, else a miss, once
        however many pages show it; :func:`copy_figure` then puts it at ``dest``. The file type follows ``dest``'s
        suffix, which is part of the stored name; a JPEG or WebP figure's quality is one of its ``kwargs``, so
        part of its key."""
        key = digest("figure", FIGURES_VERSION, render.__module__, render.__qualname__, *args, kwargs)
        path = self._path(key, Path(dest).suffix)
        if path in self._figures:  # checked and counted already: drawn (or pending) unless still to be drawn
            return path, not self._stored(path).exists()
        self._figures.add(path)
        missing = self._load(path, _check_picture) is _MISSING
        self.misses += missing
        self.hits += not missing
        return path, missing

    def _store(self, path: Path, write: Callable[[Path], None]) -> None:
        if self._writes is None:
            self.keep(written(path, write), path)
        else:
            self._writes.submit(path, lambda: written(path, write))
            self.keep(_temporary(path), path)


def render_figure(stored: Path, render: Callable[..., Path], args: tuple, kwargs: dict) -> Path:
    """Render a figure into a temporary file beside its cache file ``stored``, for :meth:`Cache.keep`; runs in
    a worker process just as well."""
    return written(stored, lambda tmp: _render_to(render, tmp, stored.suffix, args, kwargs))


def copy_figure(stored: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stored, dest)
    return dest


def written(path: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` to a temporary name beside the entry ``path``, which it returns; the entry is published by
    renaming it (:meth:`Cache.keep`), so no reader ever sees half of it. A full disk or a read-only folder is one
    line, and leaves no temporary file."""
    tmp = _temporary(path)
    _or_remove(lambda: (path.parent.mkdir(parents=True, exist_ok=True), write(tmp)), [tmp],
               f"cannot write the cache entry {path}")
    return tmp


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _or_remove(step: Callable[[], object], temporary: list[Path], failed: str) -> None:
    """``step()``; on a failure the ``temporary`` files are removed, and an OSError is one line, ``failed: why``."""
    try:
        step()
    except BaseException as e:
        for tmp in temporary:
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise GeneratorError(f"{failed}: {e.strerror or e}") from None
        raise


def _rename_all(pending: dict[Path, Path]) -> None:
    durable.sync_all()
    for path, tmp in pending.items():
        os.replace(tmp, path)
    durable.sync_all()  # the renames too


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (POSIX; elsewhere assumed, so nothing is deleted)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:  # reading every member checks its CRC
        return {name: data[name] for name in data.files}


def _check_picture(path: Path) -> bool:
    """True for an intact PNG (every chunk's CRC checked), JPEG (its header read and its
    end-of-image marker present, which a cut-off file lacks; decoding it would cost 10 ms) or
    WebP (as long as its RIFF header says)."""
    with Image.open(path) as image:
        if image.format == "PNG":
            image.verify()
        elif image.format == "JPEG":
            image.fp.seek(-2, os.SEEK_END)
            if image.fp.read(2) != b"\xff\xd9":
                raise OSError("truncated: no end-of-image marker")
        elif image.format == "WEBP":
            image.fp.seek(4)
            if int.from_bytes(image.fp.read(4), "little") + 8 != path.stat().st_size:
                raise OSError("truncated: shorter than its RIFF header says")
    return True


def _render_to(render: Callable[..., Path], tmp: Path, suffix: str, args: tuple, kwargs: dict) -> None:
    out = tmp.with_name(tmp.name + suffix)  # renderers pick the format from the suffix
    try:
        render(*args, out, **kwargs)
        os.replace(out, tmp)
    finally:
        out.unlink(missing_ok=True)  # a failed render's partial file
