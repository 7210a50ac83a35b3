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
