import json

import numpy as np

from generator.cache import Cache, digest


def test_digest_sees_array_contents_and_nesting():
    a = np.zeros((3, 3), np.float32)
    b = a.copy()
    b[1, 1] = 1e-6
    assert digest("x", a) == digest("x", a.copy())
    assert digest("x", a) != digest("x", b)
    assert digest({"k": [a]}) != digest({"k": [b]})
    assert digest(a.astype(np.float64)) != digest(a)
    assert digest("a", "b") != digest("ab")


def test_arrays_are_computed_once(tmp_path):
    cache = Cache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(4)}

    first = cache.arrays("k1", compute)
    second = Cache(tmp_path).arrays("k1", compute)
    assert calls == [1]
    np.testing.assert_array_equal(first["x"], second["x"])
    assert cache.has("k1") and not cache.has("k2")
    assert (cache.hits, cache.misses) == (0, 1)


def test_record_round_trip(tmp_path):
    cache = Cache(tmp_path)
    assert cache.record("r", lambda: {"a": [1, 2]}) == {"a": [1, 2]}
    assert cache.record("r", lambda: {"a": "changed"}) == {"a": [1, 2]}
    assert cache.hits == 1


def test_figure_is_rendered_once_and_copied(tmp_path):
    cache = Cache(tmp_path / "c")
    renders = []

    def render(value, path, *, title):
        renders.append(title)
        path.write_bytes(f"{value}{title}".encode())
        return path

    out1 = cache.figure(tmp_path / "a" / "f.png", render, 3, title="t")
    out2 = cache.figure(tmp_path / "b" / "f.png", render, 3, title="t")
    cache.figure(tmp_path / "b" / "g.png", render, 4, title="t")
    assert renders == ["t", "t"]
    assert out1.read_bytes() == out2.read_bytes() == b"3t"
    assert not list((tmp_path / "c").rglob("*.tmp"))


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


def test_entries_live_under_their_key_prefix(tmp_path):
    cache = Cache(tmp_path)
    key = digest("entry")
    cache.arrays(key, lambda: {"a": np.ones(2)})
    cache.record(key, lambda: [1])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        f"{key[:2]}/{key}.json", f"{key[:2]}/{key}.npz"]
    with np.load(tmp_path / key[:2] / f"{key}.npz") as data:
        assert data.files == ["a"]


def test_arrays_count_hits_and_misses_and_return_the_stored_values(tmp_path):
    cache = Cache(tmp_path)
    first = cache.arrays("k", lambda: {"a": np.arange(3), "b": np.float32(2.5)})
    again = cache.arrays("k", lambda: {"a": np.zeros(3)})
    cache.arrays("k", lambda: {"a": np.zeros(3)})
    cache.arrays("k2", lambda: {"a": np.zeros(3)})
    assert (cache.hits, cache.misses) == (2, 2)
    np.testing.assert_array_equal(first["a"], again["a"])
    assert sorted(again) == ["a", "b"] and float(again["b"]) == 2.5


def test_record_returns_what_a_later_hit_returns(tmp_path):
    cache = Cache(tmp_path)
    miss = cache.record("r", lambda: {"t": (1, 2), "n": None})
    hit = cache.record("r", lambda: None)
    assert miss == hit == {"t": [1, 2], "n": None}  # JSON round trip on a miss too
    cache.record("r", lambda: None)
    cache.record("r2", lambda: "\u00e9t\u00e9")
    assert (cache.hits, cache.misses) == (2, 2)
    assert json.loads((tmp_path / "r2"[:2] / "r2.json").read_bytes().decode("utf-8")) == "\u00e9t\u00e9"
    assert not list(tmp_path.rglob("*.tmp"))


def test_figure_key_covers_renderer_arguments_and_file_type(tmp_path):
    cache = Cache(tmp_path / "c")
    seen = []

    def render(value, path, *, title="t"):
        seen.append((value, title, path.suffix))
        path.write_bytes(f"{value}{title}{path.suffix}".encode())
        return path

    def other(value, path, *, title="t"):
        path.write_bytes(b"other")
        return path

    cache.figure(tmp_path / "a.png", render, 1)
    cache.figure(tmp_path / "b.png", render, 1, title="u")
    cache.figure(tmp_path / "c.jpg", render, 1)
    cache.figure(tmp_path / "deep" / "er" / "d.png", render, 1)
    cache.figure(tmp_path / "e.png", other, 1)
    cache.figure(tmp_path / "f.png", render, 1)
    twin = lambda value, path: render(value, path, title="twin")  # noqa: E731
    twin.__qualname__, twin.__module__ = render.__qualname__, "elsewhere"
    cache.figure(tmp_path / "g.png", twin, 1)
    assert seen == [(1, "t", ".png"), (1, "u", ".png"), (1, "t", ".jpg"), (1, "twin", ".png")]
    assert (cache.hits, cache.misses) == (2, 5)
    assert (tmp_path / "c.jpg").read_bytes() == b"1t.jpg" and (tmp_path / "deep/er/d.png").read_bytes() == b"1t.png"
    assert (tmp_path / "e.png").read_bytes() == b"other"


def test_digest_is_the_same_in_every_process():
    """Pinned: keys must not depend on hash seeds or dict order; a change here invalidates every cache."""
    from pathlib import Path

    key = digest("x", [1, 2.5, None, True], {"b": np.arange(3, dtype=np.int32), 1: "one"}, (Path("p"),))
    assert key == "da07451f18dd0cd8ecb25313b41a397f8aa4c36a"


def test_entries_sharing_a_prefix_folder(tmp_path):
    cache = Cache(tmp_path)
    cache.record("aa1", lambda: 1)
    cache.record("aa2", lambda: 2)
    cache.arrays("aa3", lambda: {"x": np.zeros(1)})
    assert sorted(p.name for p in (tmp_path / "aa").iterdir()) == ["aa1.json", "aa2.json", "aa3.npz"]
