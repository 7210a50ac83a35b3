import numpy as np
import pytest

from generator import codec
from generator.cache import Cache, copy_figure, digest, render_figure
from generator.results import Circuit, CircuitEdge, CircuitInput, CircuitWeights, LayerInfo, LayerLinks, Unit


def test_digest_sees_array_contents_and_nesting():
    a = np.zeros((3, 3), np.float32)
    b = a.copy()
    b[1, 1] = 1e-6
    assert digest("x", a) == digest("x", a.copy())
    assert digest("x", a) != digest("x", b)
    assert digest({"k": [a]}) != digest({"k": [b]})
    assert digest(a.astype(np.float64)) != digest(a)
    assert digest("a", "b") != digest("ab")


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
        CircuitWeights("c2", True, inputs=(CircuitInput(Unit("c2", 1), 1, 2.5, 3.0, -0.5),), top_kernels=weights),
        CircuitWeights("c1", False, "not upstream"),
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


def test_figure_is_rendered_once_and_copied(tmp_path):
    cache = Cache(tmp_path / "c")
    renders = []

    def render(value, path, *, title):
        renders.append(title)
        path.write_bytes(f"{value}{title}".encode())
        return path

    def figure(dest, *args, **kwargs):
        stored = cache.figure_entry(dest, render, args, kwargs)
        if not stored.exists():
            render_figure(stored, render, args, kwargs)
        return copy_figure(stored, dest)

    out1 = figure(tmp_path / "a" / "f.png", 3, title="t")
    out2 = figure(tmp_path / "b" / "f.png", 3, title="t")
    figure(tmp_path / "b" / "g.png", 4, title="t")
    assert renders == ["t", "t"]
    assert (cache.hits, cache.misses) == (1, 2)
    assert out1.read_bytes() == out2.read_bytes() == b"3t"
    assert not list((tmp_path / "c").rglob("*.tmp"))
