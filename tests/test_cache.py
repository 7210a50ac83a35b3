import errno
import hashlib
import logging
import os
import threading
from pathlib import Path
import json
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from generator import cache as cache_module, codec
from generator.cache import Cache, copy_figure, digest, render_figure
from generator.errors import GeneratorError
from generator.results import Circuit, CircuitEdge, CircuitInput, CircuitWeights, LayerInfo, LayerLinks, Unit
from site_compare import same_file


def test_digest_sees_array_contents_and_nesting():
    a = np.zeros((3, 3), np.float32)
    b = a.copy()
    b[1, 1] = 1e-6
    assert digest("x", a) == digest("x", a.copy())
    assert digest("x", a) != digest("x", b)
    assert digest({"k": [a]}) != digest({"k": [b]})
    assert digest(a.astype(np.float64)) != digest(a)
    assert digest("a", "b") != digest("ab")


def reference_digest(*parts) -> str:
    """The key as the cache first computed it (JSON for scalars, a copy of each array's bytes): keys must not change,
    or every cache built before would miss."""
    def feed(h, part):
        if isinstance(part, np.ndarray):
            h.update(f"array{part.dtype}{part.shape}".encode() + np.ascontiguousarray(part).tobytes())
        elif isinstance(part, (list, tuple)):
            h.update(f"list{len(part)}[".encode())
            for item in part:
                feed(h, item)
            h.update(b"]")
        elif isinstance(part, dict):
            h.update(f"dict{len(part)}{{".encode())
            for name in sorted(part, key=str):
                feed(h, str(name))
                feed(h, part[name])
            h.update(b"}")
        else:
            h.update(json.dumps(part, default=repr).encode())
        h.update(b"\x00")

    h = hashlib.blake2b(digest_size=20)
    feed(h, (cache_module.CACHE_VERSION, parts))
    return h.hexdigest()


def test_keys_are_the_ones_earlier_versions_computed():
    scalars = ["a", "é☃\n\"", "", 0, -5, 10**30, 0.1, 1e-05, -0.0, 1e300, float("nan"), float("inf"), True, None,
               np.float32(1.5), np.int64(3), 2.5j, Path("x/y")]
    arrays = [np.arange(6.0).reshape(2, 3).T, np.array(3.5), np.zeros((0, 3)), np.array(["ab", "c"]),
              np.array([True, False]), np.arange(4, dtype=np.float16), np.array([1, None], dtype=object)]
    for part in [*scalars, *arrays, {"k": arrays[:2], 3: scalars}]:
        assert digest("x", part) == reference_digest("x", part), part


def test_values_are_computed_once(tmp_path):
    cache = Cache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return np.arange(4)

    first = cache.value("k1", np.ndarray, compute)
    second = Cache(tmp_path).value("k1", np.ndarray, compute)
    assert calls == [1]
    np.testing.assert_array_equal(first, second)
    assert cache.has("k1") and not cache.has("k2")
    assert (cache.hits, cache.misses) == (0, 1)


def test_typed_results_round_trip_through_the_cache(tmp_path):
    weights = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    circuit = Circuit(
        Unit("c3", 5),
        CircuitWeights(("c2",), True, inputs=(CircuitInput(Unit("c2", 1), 1, 2.5, 3.0, -0.5),), top_kernels=weights),
        CircuitWeights(("c1",), False, "not upstream", note="paths summed at Add 'add'"),
        (CircuitEdge(Unit("c1", 0), Unit("c2", 1), 1.0, -1.0),),
    )
    Cache(tmp_path).value("c", Circuit, lambda: circuit)
    back = Cache(tmp_path).value("c", Circuit, lambda: None)
    assert back.unit == Unit("c3", 5) and back.supported and not back.expanded_supported
    assert back.direct.inputs == circuit.direct.inputs and back.direct.top[0].net == 2.5
    np.testing.assert_array_equal(back.direct.top_kernels, weights)
    assert back.direct.top_kernels.dtype == np.float32
    assert back.expanded == circuit.expanded and back.edges == circuit.edges
    layers = (LayerInfo("x", "InputLayer", (None, None, None, 3), 0, 3), LayerInfo("d", "Dense", None, 7, 0, ("x",)))
    assert Cache(tmp_path).value("l", tuple[LayerInfo, ...], lambda: layers) == layers
    assert Cache(tmp_path).value("l", tuple[LayerInfo, ...], lambda: None) == layers


def test_codec_moves_arrays_out_of_the_record():
    links = LayerLinks("c1", np.ones((2, 3), np.float32))
    record, arrays = codec.encode(links)
    assert record == {"incoming_layer": "c1", "incoming": {"$array": "a0"}, "outgoing_layer": "", "outgoing": None}
    assert list(arrays) == ["a0"] and arrays["a0"].shape == (2, 3)
    back = codec.decode(LayerLinks, record, arrays)
    assert back.outgoing is None and back.incoming_of(1, 5)[0].unit == Unit("c1", 0)
    with pytest.raises(TypeError, match="text keys"):
        codec.encode({1: "a"})


@dataclass(frozen=True)
class _Chain:  # a type that holds itself
    value: float
    path: Path
    rest: "_Chain | None" = None
    sizes: tuple[int, ...] = ()
    either: "int | str | None" = None


def test_codec_decodes_a_type_that_holds_itself_and_reads_json_lists_as_tuples():
    chain = _Chain(1.5, Path("a/b"), _Chain(2.0, Path("c"), None, (3, 4)), (1,))
    record, arrays = codec.encode(chain)
    record = json.loads(json.dumps(record))  # as the cache reads it back: lists, no Path, ints where floats were 2.0
    back = codec.decode(_Chain, record, arrays)
    assert back == chain and isinstance(back.rest.sizes, tuple) and isinstance(back.rest.path, Path)
    assert type(back.rest.value) is float
    # A union of two types cannot be decoded, but only a value needs it: None decodes as None.
    with pytest.raises(TypeError, match="cannot decode the union"):
        codec.decode(_Chain, {**record, "either": 3}, arrays)


def test_figure_is_rendered_once_and_copied(tmp_path):
    cache = Cache(tmp_path / "c")
    renders = []

    def render(value, path, *, title):
        renders.append(title)
        Image.new("RGB", (2, 2), (value, 0, 0)).save(path)
        return path

    out1 = _figure(cache, tmp_path / "a" / "f.png", render, 3, title="t")
    out2 = _figure(cache, tmp_path / "b" / "f.png", render, 3, title="t")
    _figure(cache, tmp_path / "b" / "g.png", render, 4, title="t")
    assert renders == ["t", "t"]
    assert (cache.hits, cache.misses) == (0, 2)  # f.png on two pages: one entry, one miss; g.png: the other
    assert out1.read_bytes() == out2.read_bytes()
    assert Image.open(out2).getpixel((1, 1)) == (3, 0, 0)
    assert not list((tmp_path / "c").rglob("*.tmp"))


# -- a cache that heals -----------------------------------------------------------------


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garble(path):
    """Flip a byte at a third, the half and two thirds of the file: same length, wrong content (one
    byte alone may land in a zip header field that readers ignore, such as a member's time)."""
    data = bytearray(path.read_bytes())
    for i in (len(data) // 3, len(data) // 2, 2 * len(data) // 3):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def empty(path):
    path.write_bytes(b"")


def only_entry(root, suffix):
    (path,) = [p for p in root.rglob(f"*{suffix}") if not p.name.startswith(".")]
    return path


DAMAGE = [truncate, garble, empty]


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_array_entry_is_recomputed_with_one_warning(tmp_path, caplog, damage):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(1000, dtype=np.float32), "y": np.eye(8)}

    first = Cache(tmp_path).value("k", dict[str, np.ndarray], compute)
    damage(only_entry(tmp_path, ".npz"))
    cache = Cache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="generator"):
        assert not cache.has("k")  # the damaged entry is gone, so the build recomputes it
        again = cache.value("k", dict[str, np.ndarray], compute)
    assert calls == [1, 1] and (cache.hits, cache.misses) == (0, 1)
    for name in ("x", "y"):
        np.testing.assert_array_equal(again[name], first[name])
    assert [r.getMessage().split(" is damaged")[0] for r in caplog.records] == [f"cache entry {only_entry(tmp_path, '.npz')}"]
    assert "recomputing it" in caplog.records[0].getMessage() and "\n" not in caplog.records[0].getMessage()
    np.testing.assert_array_equal(Cache(tmp_path).value("k", dict[str, np.ndarray], _never)["x"], first["x"])  # healed


@pytest.mark.parametrize("damage", [truncate, empty, lambda p: p.write_bytes(b'{"a": [1, 2')])
def test_a_damaged_record_is_recomputed_with_one_warning(tmp_path, caplog, damage):
    Cache(tmp_path).value("r", dict, lambda: {"a": [1, 2], "b": "text"})
    damage(only_entry(tmp_path, ".json"))
    with caplog.at_level(logging.WARNING, logger="generator"):
        assert Cache(tmp_path).value("r", dict, lambda: {"a": [1, 2], "b": "text"}) == {"a": [1, 2], "b": "text"}
    assert len(caplog.records) == 1 and "is damaged" in caplog.records[0].getMessage()
    assert Cache(tmp_path).value("r", dict, _never) == {"a": [1, 2], "b": "text"}


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_figure_is_rendered_again(tmp_path, caplog, suffix, damage):
    from generator.figures import save_rgb

    pixels = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    cache = Cache(tmp_path / "c")
    good = _figure(cache, tmp_path / "a" / f"f{suffix}", save_rgb, pixels).read_bytes()
    if suffix != ".png" and damage is garble:
        damage = truncate  # a flipped bit in JPEG or WebP data goes unnoticed (decoders read through it); a cut file does not
    damage(only_entry(tmp_path / "c", suffix))
    with caplog.at_level(logging.WARNING, logger="generator"):
        out = _figure(Cache(tmp_path / "c"), tmp_path / "b" / f"f{suffix}", save_rgb, pixels)
    assert out.read_bytes() == good
    assert len(caplog.records) == 1 and "is damaged" in caplog.records[0].getMessage()
    assert only_entry(tmp_path / "c", suffix).read_bytes() == good


def test_writes_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append(("replace", str(b))) or real_replace(a, b))
    Cache(tmp_path).value("r", dict, lambda: {"a": 1})
    entry = str(only_entry(tmp_path, ".json"))
    tmp_name = next(e[1] for e in events if e[0] == "fsync")
    assert tmp_name.endswith(".tmp") and Path(tmp_name).parent == Path(entry).parent
    assert events == [("fsync", tmp_name), ("replace", entry), ("fsync", str(Path(entry).parent))]


def test_batched_writes_sync_the_disk_once_then_rename_each_entry(tmp_path, monkeypatch):
    events = []
    real_replace = os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync"))
    monkeypatch.setattr(cache_module.durable, "sync_all", lambda: events.append("sync all"))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append(Path(b).suffix) or real_replace(a, b))
    cache = Cache(tmp_path / "c")
    with cache.batched_writes():
        first = cache.value("k", np.ndarray, lambda: np.arange(5))
        cache.value("r", dict, lambda: {"a": 1})
        assert events == [] and entries(tmp_path / "c") == []  # written, not yet published
        assert cache.has("k") and cache.has("r")  # a pending entry reads as stored
        np.testing.assert_array_equal(cache.value("k", np.ndarray, _never), first)
    assert events == ["sync all", ".npz", ".json", ".json", "sync all"]  # the bytes before any name, the record last
    assert sorted(p.suffix for p in entries(tmp_path / "c")) == [".json", ".json", ".npz"]
    assert not list((tmp_path / "c").rglob(".*.tmp"))
    np.testing.assert_array_equal(Cache(tmp_path / "c").value("k", np.ndarray, _never), np.arange(5))


def test_batched_writes_publish_what_waited_longest_and_what_was_written_before_an_error(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    monkeypatch.setattr(cache_module, "COMMIT_SECONDS", 0.0)
    with cache.batched_writes():
        cache.value("a", dict, lambda: {"a": 1})
        assert len(entries(tmp_path)) == 1  # due at once: published with its own write
    monkeypatch.setattr(cache_module, "COMMIT_SECONDS", 3600.0)
    with pytest.raises(KeyboardInterrupt), cache.batched_writes():
        cache.value("b", dict, lambda: {"b": 2})
        raise KeyboardInterrupt
    assert Cache(tmp_path).value("b", dict, _never) == {"b": 2}
    assert not list(tmp_path.rglob(".*.tmp"))
    with cache.batched_writes():
        cache.value("c", dict, lambda: {"c": 3})
        with cache.batched_writes():  # a batch within a batch is the same batch
            cache.value("d", dict, lambda: {"d": 4})
    assert [Cache(tmp_path).value(k, dict, _never) for k in "cd"] == [{"c": 3}, {"d": 4}]
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_damaged_entry_waiting_in_a_batch_is_computed_again_and_published_whole(tmp_path, caplog):
    cache = Cache(tmp_path)
    with cache.batched_writes():
        cache.value("k", np.ndarray, lambda: np.arange(3))
        assert cache.has("k")  # written (behind the compute) and intact
        (pending,) = [p for p in tmp_path.rglob(".*.npz.*.tmp")]
        garble(pending)
        with caplog.at_level(logging.WARNING, logger="generator"):
            found = cache.values({"x": "k"}, np.ndarray, lambda missing: {"x": np.arange(4)})
        np.testing.assert_array_equal(found["x"], np.arange(4))
        assert len(caplog.records) == 1 and "is damaged" in caplog.records[0].getMessage()
    np.testing.assert_array_equal(Cache(tmp_path).value("k", np.ndarray, _never), np.arange(4))
    assert not list(tmp_path.rglob(".*.tmp"))


def test_batched_writes_go_on_behind_the_compute_and_an_entry_reads_back_once_written(tmp_path, monkeypatch):
    release, done, writers = threading.Event(), [], []
    real_save = cache_module._save_npz

    def slow_save(path, arrays):
        writers.append(threading.current_thread())
        assert release.wait(10)
        real_save(path, arrays)
        done.append(path)

    monkeypatch.setattr(cache_module, "_save_npz", slow_save)
    cache = Cache(tmp_path)
    with cache.batched_writes():
        np.testing.assert_array_equal(cache.value("k", np.ndarray, lambda: np.arange(5)), np.arange(5))
        assert done == [] and writers != [threading.current_thread()]  # returned while another thread writes
        release.set()
        assert cache.has("k") and len(done) == 1  # a lookup waits for the entry's write
    np.testing.assert_array_equal(Cache(tmp_path).value("k", np.ndarray, _never), np.arange(5))


def test_a_write_failing_behind_the_compute_is_one_line_and_stops_the_writes_after_it(tmp_path, monkeypatch):
    real_save = cache_module._save_npz

    def full_for_seven(path, arrays):
        if arrays["a0"].size == 7:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(path, arrays)

    monkeypatch.setattr(cache_module, "_save_npz", full_for_seven)
    cache = Cache(tmp_path)
    with pytest.raises(GeneratorError, match=r"^cannot write the cache entry .*\.npz: No space left on device$"):
        with cache.batched_writes():
            cache.value("a", np.ndarray, lambda: np.arange(3))
            cache.value("b", np.ndarray, lambda: np.arange(7))
            cache.value("c", dict, lambda: {"c": 3})  # after the failure: raises, or is never written
    stored = Cache(tmp_path)
    np.testing.assert_array_equal(stored.value("a", np.ndarray, _never), np.arange(3))  # written before: kept
    assert not stored.has("b") and not stored.has("c")
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_batch_starts_by_removing_what_killed_processes_left(tmp_path):
    (tmp_path / "ab").mkdir()
    dead = tmp_path / "ab" / f".abc.npz.{2**31 - 1}.tmp"  # no such process: pids stay below 2**22
    live = tmp_path / "ab" / f".abd.json.{os.getpid()}.tmp"  # a process writing now (a report, say)
    for path in (dead, live):
        path.write_bytes(b"x")
    with Cache(tmp_path).batched_writes():
        assert not dead.exists() and live.exists()


def entries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(GeneratorError, match=r"^cannot write the cache entry .*\.npz: No space left on device$"):
        Cache(tmp_path).value("k", np.ndarray, lambda: np.zeros(3))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def _figure(cache, dest, render, *args, **kwargs):
    """What the asset writer does with one figure: find its cache entry, render it on a miss, copy it."""
    stored, missing = cache.figure_entry(dest, render, args, kwargs)
    if missing:
        cache.keep(render_figure(stored, render, args, kwargs), stored)
    return copy_figure(stored, dest)


def _never():
    raise AssertionError("recomputed an intact entry")


def test_a_build_over_a_damaged_cache_heals_it_and_writes_the_same_site(built, caplog, monkeypatch):
    """Every damaged entry the build reads is one warning and computed again, and the site is the same (to float32
    rounding in its numbers: :func:`site_compare.same_file`). A figure drawn from a value computed again may be
    looked up under a new key (its data rounded differently in the last bits: another batch on an AVX2 CPU), and its
    damaged old entry then not read at all."""
    from generator.build import build_site
    from generator.config import load_config

    read, load = set(), Cache._load

    def recorded_load(cache, path, how):
        read.add(path)
        return load(cache, path, how)

    monkeypatch.setattr(Cache, "_load", recorded_load)

    project, _ = built
    site = project / "docs" / "generated"
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    stored = sorted((project / ".cache").rglob("*.*"))
    arrays = [x for x in stored if x.suffix == ".npz"][:3]
    records = [x for x in stored if x.suffix == ".json" and x.stem not in {a.stem for a in arrays}][:3]  # other keys
    entries = sorted(arrays + records + [p for suffix in (".png", ".jpg") for p in [x for x in stored if x.suffix == suffix][:3]])
    assert len(entries) == 12
    for i, path in enumerate(entries):  # each kind of entry truncated, garbled, emptied (a JPEG: truncated)
        DAMAGE[i % 3](path) if path.suffix != ".jpg" else truncate(path)
    with caplog.at_level(logging.WARNING, logger="generator"):
        summary = build_site(load_config(project / "site_config.yaml"), project)
    warned = [r.getMessage() for r in caplog.records if r.name == "generator" and r.levelno == logging.WARNING]
    assert all("is damaged" in m and "\n" not in m for m in warned), [m for m in warned if "is damaged" not in m]
    damaged_read = [p for p in entries if p in read]
    assert sorted(m.split()[2] for m in warned) == [str(p) for p in damaged_read]
    assert {p.suffix for p in damaged_read} == {".npz", ".json", ".png", ".jpg"}
    new_figures = {p for p in (project / ".cache").rglob("*.*") if p.suffix in (".png", ".jpg")} - set(stored)
    assert summary["cache_misses"] == len(damaged_read) + len(new_figures)
    after = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert after.keys() == before.keys()
    assert [name for name in before if not same_file(name.name, after[name], before[name])] == []


def test_digest_separates_what_concatenation_would_merge():
    assert digest(["ab"]) != digest(["a", "b"])
    assert digest([["a"], "b"]) != digest(["a", ["b"]])
    assert digest({"a": 1}) != digest({"a": [1]}) != digest(["a", 1])
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})  # key order does not matter
    assert digest({"a": 1}) != digest({"a": 2}) and digest({"a": 1}) != digest({"b": 1})
    assert digest((1, 2)) == digest([1, 2])
    assert digest(None) != digest("None") and digest(1) != digest("1") and digest(1) != digest(1.5)
    assert digest(np.zeros((2, 3))) != digest(np.zeros((3, 2)))  # same bytes, other shape
    assert digest(np.arange(6).reshape(2, 3).T) == digest(np.ascontiguousarray(np.arange(6).reshape(2, 3).T))
    assert digest(frozenset()) == digest(repr(frozenset()))  # anything else by its repr
    assert len(digest("x")) == 40 and int(digest("x"), 16) >= 0


def test_digest_changes_with_the_cache_version(monkeypatch):
    from generator import cache as cache_module

    before = digest("x")
    monkeypatch.setattr(cache_module, "CACHE_VERSION", cache_module.CACHE_VERSION + 1)
    assert digest("x") != before


def test_digest_is_the_same_in_every_process():
    """Pinned: keys must not depend on hash seeds or dict order; a change here invalidates every cache."""
    from pathlib import Path

    key = digest("x", [1, 2.5, None, True], {"b": np.arange(3, dtype=np.int32), 1: "one"}, (Path("p"),))
    assert key == "63b523a1cba79daafa89b8e175748aa9f4379ced"


def test_entries_sharing_a_prefix_folder(tmp_path):
    cache = Cache(tmp_path)
    cache.value("aa1", int, lambda: 1)
    cache.value("aa2", int, lambda: 2)
    cache.value("aa3", np.ndarray, lambda: np.zeros(1))
    assert sorted(p.name for p in (tmp_path / "aa").iterdir()) == ["aa1.json", "aa2.json", "aa3.json", "aa3.npz"]
    assert json.loads((tmp_path / "aa" / "aa3.json").read_text()) == {"$array": "a0"}


def test_the_labels_file_is_part_of_the_model_fingerprint(tmp_path):
    """Class names live in cached results (predictions, class effects, labels): editing the file must miss."""
    from generator.config import ModelSection
    from generator.models import describe_model

    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    plain = describe_model(ModelSection(name="vgg16", weights="none"), tmp_path)
    named = describe_model(ModelSection(name="vgg16", weights="none", labels="labels.txt"), tmp_path)
    (tmp_path / "labels.txt").write_text("dog\ncat\n")
    renamed = describe_model(ModelSection(name="vgg16", weights="none", labels="labels.txt"), tmp_path)
    assert plain.name == named.name == renamed.name == "vgg16"
    assert len({plain.fingerprint, named.fingerprint, renamed.fingerprint}) == 3
    assert named.fingerprint.startswith(plain.fingerprint + ":labels=")
