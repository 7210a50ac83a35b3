"""Tests for generator.analysis.examples (dataset examples) and figures.example_crops.

Tiny seeded models and 32 px images; every result is checked against a brute-force
computation: receptive fields against single-pixel perturbations, the streamed top-N against
a full sort of all scores.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from PIL import Image

from generator import figures
from generator.analysis import examples as ex
from generator.analysis.examples import Example
from generator.geometry import ReceptiveField, box_map, crop_box
from generator.errors import GeneratorError
from generator.images import square
from generator.models import preprocessor

from tiny import DEAD, geometry_model, unit_model

# --- receptive fields ---------------------------------------------------------------------------


def perturbation_dependencies(model: keras.Model, layer: str, n: int) -> np.ndarray:
    """(h, w, n, n) bool: which input pixels change each output position of ``layer``."""
    cut = keras.Model(model.input, model.get_layer(layer).output)
    probes = np.zeros((n * n, n, n, 3), np.float32)
    probes[np.arange(n * n), np.arange(n * n) // n, np.arange(n * n) % n] = 1.0
    out = keras.ops.convert_to_numpy(cut(probes))  # (n*n, h, w, C); zero without the probe
    changed = out.max(axis=-1) > 0
    return changed.reshape(n, n, *changed.shape[1:]).transpose(2, 3, 0, 1)


def check_field_by_perturbation(model: keras.Model, layer: str, n: int) -> int:
    """Assert that ``layer``'s receptive field holds exactly the pixels that change each of its positions
    (those whose field lies inside the ``n`` px image; others read no pixel outside it); return their count."""
    rf = ex.receptive_field(model, layer, image_size=n)
    deps = perturbation_dependencies(model, layer, n)
    h, w = deps.shape[:2]
    interior = 0
    for y, x in np.ndindex(h, w):
        lo = [rf.offset + rf.stride * p - (rf.size - 1) / 2 for p in (y, x)]
        assert lo[0] == int(lo[0]) and lo[1] == int(lo[1])  # windows start on whole pixels
        rows = np.arange(n)[:, None]
        cols = np.arange(n)[None, :]
        window = (rows >= lo[0]) & (rows < lo[0] + rf.size) & (cols >= lo[1]) & (cols < lo[1] + rf.size)
        seen = deps[y, x]
        assert not (seen & ~window).any(), f"{layer} ({y}, {x}) reads pixels outside its field"
        if lo[0] >= 0 and lo[1] >= 0 and lo[0] + rf.size <= n and lo[1] + rf.size <= n:
            np.testing.assert_array_equal(seen, window, err_msg=f"{layer} ({y}, {x})")
            interior += 1
    return interior


@pytest.mark.parametrize("n", [32, 31])
@pytest.mark.parametrize("layer", ["c1", "p1", "c2", "pad", "c3", "c4"])
def test_receptive_field_matches_single_pixel_perturbation(layer, n):
    interior = check_field_by_perturbation(geometry_model(), layer, n)
    if layer != "c4":  # c4's 32 px field has no position wholly inside a 31-32 px image
        assert interior > 0


def test_cropping_and_valid_padding_move_the_field_and_the_later_same_padding():
    """Cropping shifts the field by what it cuts; a 'valid' conv and the cropping shorten the input of a later
    stride-4 'same' conv (17 -> 15 -> 13 px), whose padding (one pixel at 13 px; none at 11 or 15 px, nor for a
    length taken as a multiple of the stride) sets the offset."""
    ones = {"kernel_initializer": "ones", "use_bias": False}
    x = inputs = keras.Input((17, 17, 3))
    x = keras.layers.Cropping2D(1, name="crop")(keras.layers.Conv2D(2, 3, name="v", **ones)(x))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 4, strides=4, padding="same", name="s", **ones)(x))
    assert ex.receptive_field(model, "v") == ReceptiveField(3, 1, 1.0)
    assert ex.receptive_field(model, "crop") == ReceptiveField(3, 1, 2.0)
    assert ex.receptive_field(model, "s") == ReceptiveField(6, 4, 2.5)
    assert check_field_by_perturbation(model, "crop", 17) > 0
    # s's first row and column read the padding (inside the chain, not at the image's border); (1, 1) reads
    # exactly rows and columns 2.5 + 4 - 2.5 = 4 .. 9.
    window = np.zeros((17, 17), bool)
    window[4:10, 4:10] = True
    np.testing.assert_array_equal(perturbation_dependencies(model, "s", 17)[1, 1], window)


def test_receptive_field_known_values_of_the_tiny_chain():
    model = geometry_model()
    assert ex.receptive_field(model, "c1") == ReceptiveField(3, 1, 0.0)
    assert ex.receptive_field(model, "p1") == ReceptiveField(4, 2, 0.5)
    assert ex.receptive_field(model, "c2", image_size=32) == ReceptiveField(8, 4, 2.5)
    # An odd input makes TensorFlow's "same" padding put the extra pixel at the top/left.
    assert ex.receptive_field(model, "c2", image_size=31) == ReceptiveField(8, 4, 0.5)
    assert ex.receptive_field(model, "c2") == ex.receptive_field(model, "c2", image_size=32)
    # A model with a fixed input size needs no image_size.
    assert ex.receptive_field(geometry_model(size=31), "c2") == ReceptiveField(8, 4, 0.5)
    assert ex.receptive_field(model, "pad") == ReceptiveField(8, 4, -1.5)  # padding moves the grid
    assert ex.receptive_field(model, "c3") == ReceptiveField(24, 4, 6.5)  # dilation 2: span 5
    assert ex.receptive_field(model, "c4") == ReceptiveField(32, 4, 6.5)


def test_max_pooling_has_the_same_field_as_average_pooling():
    for layer in ("p1", "c2", "c4"):
        assert ex.receptive_field(geometry_model(keras.layers.MaxPooling2D, ones=False), layer) == \
            ex.receptive_field(geometry_model(), layer)


def test_receptive_field_of_vgg16():
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    assert ex.receptive_field(vgg, "block1_conv1") == ReceptiveField(3, 1, 0.0)
    assert ex.receptive_field(vgg, "block1_conv2") == ReceptiveField(5, 1, 0.0)
    assert ex.receptive_field(vgg, "block2_conv1") == ReceptiveField(10, 2, 0.5)
    assert ex.receptive_field(vgg, "block3_conv2") == ReceptiveField(32, 4, 1.5)
    assert ex.receptive_field(vgg, "block4_conv3") == ReceptiveField(92, 8, 3.5)
    assert ex.receptive_field(vgg, "block5_pool") == ReceptiveField(212, 32, 15.5)


def test_receptive_field_refuses_branches_and_unknown_layers():
    x = inputs = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(3, 3, padding="same", name="a")(x)
    s = keras.layers.Add(name="sum")([a, x])
    b = keras.layers.Conv2D(3, 3, padding="same", name="b")(s)
    u = keras.layers.UpSampling2D(name="up")(b)
    c = keras.layers.Conv2D(3, 3, padding="same", name="c")(u)
    model = keras.Model(inputs, c)
    assert ex.receptive_field(model, "a") == ReceptiveField(3, 1, 0.0)
    with pytest.raises(GeneratorError, match="Add layer 'sum'"):
        ex.receptive_field(model, "b")
    with pytest.raises(GeneratorError, match="^receptive field: the model has no layer 'nope'"):
        ex.receptive_field(model, "nope")
    chain = keras.Sequential([keras.Input((None, None, 3)), keras.layers.UpSampling2D(name="up"),
                              keras.layers.Conv2D(3, 3, name="k")])
    with pytest.raises(GeneratorError, match="UpSampling2D layer 'up'"):
        ex.receptive_field(chain, "k")
    tall = keras.Model(inputs, keras.layers.Conv2D(3, (3, 1), name="tall")(inputs))
    with pytest.raises(GeneratorError, match=r"^receptive field of 'tall': rows and columns differ \(\(3, 1\) vs "
                                             r"\(1, 1\)\); only square receptive fields are supported$"):
        ex.receptive_field(tall, "tall")


# --- crop boxes ---------------------------------------------------------------------------------


def test_crop_box_is_centred_on_the_field_and_clamped_inside_the_image():
    rf = ReceptiveField(32, 4, 1.5)  # VGG16 block3_conv2
    assert crop_box(rf, 20, 30, 224) == (66, 106, 32)  # centres 81.5, 121.5: rows 66..97
    assert crop_box(rf, 0, 0, 224) == (0, 0, 32)  # would start at -14
    assert crop_box(rf, 55, 3, 224) == (192, 0, 32)  # would end past 224
    assert crop_box(ReceptiveField(3, 1, 0.0), 5, 9, 32) == (4, 8, 3)
    assert crop_box(ReceptiveField(212, 32, 15.5), 2, 1, 64) == (0, 0, 64)  # field > image


def test_box_map_puts_each_position_on_its_field_centre():
    rf = ReceptiveField(8, 4, 1.5)
    amap = np.add.outer(np.arange(8.0), 10 * np.arange(8.0))  # value = y + 10 x
    box = (5, 9, 8)
    out = box_map(rf, amap, box)
    assert out.shape == (8, 8) and out.dtype == np.float32
    rows = np.clip((np.arange(5, 13) - 1.5) / 4, 0, 7)
    cols = np.clip((np.arange(9, 17) - 1.5) / 4, 0, 7)
    np.testing.assert_allclose(out, rows[:, None] + 10 * cols[None, :], rtol=1e-6)
    edge = box_map(rf, amap, (0, 0, 3))  # before the first centre: held constant
    np.testing.assert_allclose(edge[:2, :2], 0.0)


def test_box_map_equals_bilinear_interpolation_held_at_both_ends_on_a_wide_map():
    """Against np.interp along rows then columns, on a 4x6 map and a box that runs past the last centres."""
    rf = ReceptiveField(5, 3, 2.0)
    rng = np.random.default_rng(0)
    amap = rng.normal(size=(4, 6)).astype(np.float64)
    top, left, side = 0, 0, 22  # centres at 2, 5, 8, 11 (rows) and 2, ..., 17 (columns): the box runs past both
    rows_px, cols_px = np.arange(top, top + side), np.arange(left, left + side)
    by_rows = np.stack([np.interp(rows_px, 2.0 + 3 * np.arange(4), amap[:, c]) for c in range(6)], 1)
    want = np.stack([np.interp(cols_px, 2.0 + 3 * np.arange(6), by_rows[r]) for r in range(side)])
    out = box_map(rf, amap, (top, left, side))
    assert out.shape == (side, side) and out.dtype == np.float32
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[-1, -1], amap[-1, -1], rtol=1e-6)  # held at the last centre


# --- top examples -------------------------------------------------------------------------------


def dataset(n: int = 20, size: int = 32) -> np.ndarray:
    """Random images, low contrast but for image 4 and its exact copy 13 (ties across batches)."""
    rng = np.random.default_rng(0)
    images = rng.integers(90, 166, (n, size, size, 3), dtype=np.uint8)
    if n > 13:
        images[4] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        images[13] = images[4]
    return images


def batched(images: np.ndarray, batch_size: int):
    for first in range(0, len(images), batch_size):
        yield images[first : first + batch_size]


def brute_force(model, preprocess, layer, channels, images, top_n) -> dict[int, list[Example]]:
    """All scores of all images, fully sorted (score descending, then image index)."""
    cut = keras.Model(model.input, model.get_layer(layer).output)
    maps = np.moveaxis(keras.ops.convert_to_numpy(cut(preprocess(images.astype("float32"))))[..., channels], -1, 1)
    n, k, h, w = maps.shape
    flat = maps.reshape(n, k, h * w)
    scores, where = flat.max(axis=2), flat.argmax(axis=2)
    result = {}
    for row, c in enumerate(channels):
        order = sorted(range(n), key=lambda i: (-scores[i, row], i))[:top_n]
        result[c] = [Example(i, float(scores[i, row]), int(where[i, row]) // w, int(where[i, row]) % w)
                     for i in order]
    return result


def assert_same(got: dict[int, list[Example]], want: dict[int, list[Example]]):
    assert list(got) == list(want)
    for c in want:
        assert [(e.image, e.y, e.x) for e in got[c]] == [(e.image, e.y, e.x) for e in want[c]], f"channel {c}"
        np.testing.assert_allclose([e.score for e in got[c]], [e.score for e in want[c]],
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels", [[0, 1, 2, 3, 4], [4, 2, 0]])
def test_top_examples_equal_a_full_sort_of_all_scores(channels):
    model, preprocess, images = unit_model(), preprocessor("tf"), dataset()
    counted = []
    got = ex.top_examples(model, preprocess, "c2", channels, batched(images, 3), top_n=4,
                          progress=counted.append)
    assert counted == [3, 3, 3, 3, 3, 3, 2]
    assert_same(got, brute_force(model, preprocess, "c2", channels, images, 4))
    for c, found in got.items():
        assert len(found) == 4
        scores = [e.score for e in found]
        assert scores == sorted(scores, reverse=True)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.function's tracing count")
def test_a_short_last_batch_is_padded_and_the_step_traced_once():
    model, preprocess, images = unit_model(), preprocessor("tf"), dataset()
    got = ex.top_examples(model, preprocess, "c2", range(5), batched(images, 3), top_n=4)  # 6 batches of 3, then 2
    assert_same(got, brute_force(model, preprocess, "c2", list(range(5)), images, 4))  # the padding is no example
    assert ex._peak_step(model, preprocess, (("c2", None),), False, False).experimental_get_tracing_count() == 1


def test_ties_keep_the_lower_image_index():
    model, preprocess, images = unit_model(), preprocessor("tf"), dataset()
    got = ex.top_examples(model, preprocess, "c2", range(5), batched(images, 3), top_n=4)
    # The dead channel ties at 0 everywhere: the first images, at the first position.
    assert got[DEAD] == [Example(i, 0.0, 0, 0) for i in range(4)]
    # The high-contrast image 4 and its copy 13 (another batch) tie; 4 comes first.
    pairs = [c for c in range(4) if [e.image for e in got[c][:2]] == [4, 13]]
    assert pairs, "the duplicated image should lead some channel"
    for c in pairs:
        assert got[c][0].score == got[c][1].score
        assert (got[c][0].y, got[c][0].x) == (got[c][1].y, got[c][1].x)


def test_fewer_images_than_top_n_and_empty_inputs():
    model, preprocess, images = unit_model(), preprocessor("tf"), dataset(5)
    got = ex.top_examples(model, preprocess, "c2", [1], batched(images, 2), top_n=9)
    assert sorted(e.image for e in got[1]) == [0, 1, 2, 3, 4]
    assert ex.top_examples(model, preprocess, "c2", [1], iter([]), top_n=3) == {1: []}
    assert ex.top_examples(model, preprocess, "c2", [], batched(images, 2), top_n=3) == {}
    with pytest.raises(GeneratorError, match="^dataset examples: .*channel 5 is out of range for layer 'c2'"):
        ex.top_examples(model, preprocess, "c2", [5], batched(images, 2), top_n=3)
    with pytest.raises(GeneratorError, match="^dataset examples: top_n must be at least 1, not 0$"):
        ex.top_examples(model, preprocess, "c2", [0], batched(images, 2), top_n=0)
    with pytest.raises(GeneratorError, match="^dataset examples: .*no layer 'c9'"):
        ex.top_examples(model, preprocess, "c9", [0], batched(images, 2), top_n=3)


def test_batches_are_pulled_one_at_a_time():
    model, preprocess, images = unit_model(), preprocessor("tf"), dataset()
    state = {"pulled": 0, "done": 0}

    def lazy():
        for batch in batched(images, 3):
            if state["pulled"] - state["done"] >= 1:
                raise AssertionError("a batch was pulled before the previous one was used")
            state["pulled"] += 1
            yield batch

    ex.top_examples(model, preprocess, "c2", range(5), lazy(), top_n=2,
                    progress=lambda n: state.__setitem__("done", state["done"] + 1))
    assert state == {"pulled": 7, "done": 7}


def test_the_running_table_never_holds_more_than_top_n(monkeypatch):
    model, preprocess, images = unit_model(), preprocessor("tf"), dataset()
    widths = []
    merge = ex._merge

    def watched(best, batch, top_n):
        table, order = merge(best, batch, top_n)
        widths.append(table[0].shape)
        return table, order

    monkeypatch.setattr(ex, "_merge", watched)
    ex.top_examples(model, preprocess, "c2", range(5), batched(images, 3), top_n=4)
    assert widths[0] == (5, 3) and all(shape == (5, 4) for shape in widths[1:])


def test_merge_equals_a_full_sort_with_many_ties():
    rng = np.random.default_rng(3)
    k, top_n = 6, 5
    all_scores = rng.integers(0, 4, (k, 40)).astype(np.float32)  # small integers: ties everywhere
    all_scores[2, 7] = np.nan
    positions = rng.integers(0, 100, (k, 40))
    best = (np.empty((k, 0), np.float32), np.empty((k, 0), np.int64), np.empty((k, 0), np.int64))
    for first in range(0, 40, 7):
        idx = np.arange(first, min(first + 7, 40))
        batch = (all_scores[:, idx], np.broadcast_to(idx, (k, len(idx))), positions[:, idx])
        best, order = ex._merge(best, batch, top_n)
        assert order.shape == best[0].shape
        assert best[0].shape[1] <= top_n
    for row in range(k):
        keyed = [(np.inf if np.isnan(s) else -s, i) for i, s in enumerate(all_scores[row])]
        want = [i for _, i in sorted(keyed)[:top_n]]
        assert best[1][row].tolist() == want
        assert best[2][row].tolist() == positions[row, want].tolist()


def test_the_pass_keeps_each_channels_map_on_its_own_examples(tmp_path):
    loaded = SimpleNamespace(features=unit_model(), preprocess=preprocessor("tf"))
    paths = []
    for i, pixels in enumerate(dataset(5)):
        paths.append(tmp_path / f"im{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    cut = keras.Model(loaded.features.input, loaded.features.get_layer("c2").output)
    pixels = np.stack([np.asarray(Image.open(p)) for p in paths]).astype("float32")
    want = keras.ops.convert_to_numpy(cut(loaded.preprocess(pixels)))  # (5, 16, 16, 5), each image alone
    # Batches of 2 (the last padded): entries enter, move down and leave the table across batches.
    ((score, image, position, width, _, maps),) = ex._top_tables(
        loaded.features, loaded.preprocess, [("c2", None)], ex.stream_images(paths, 32, 2), 2, keep_maps=True)
    assert maps.shape == (5, 2, 16, 16) and maps.dtype == np.float32 and width == 16
    for c in range(5):
        for n in range(2):
            np.testing.assert_allclose(maps[c, n], want[image[c, n], ..., c], rtol=1e-5, atol=1e-6)
            assert maps[c, n].reshape(-1)[position[c, n]] == score[c, n] == maps[c, n].max()
    # A shard keeps them too (tests/test_executor.py merges shards); its images and positions are integers, and so
    # are the finished examples' rows and columns.
    whole = ex.example_shard(loaded, ["c2"], paths, 0, 32, 2)["c2"]
    np.testing.assert_allclose(whole.maps, maps, rtol=1e-5, atol=1e-6)
    assert whole.image.dtype == whole.position.dtype == np.int64 and whole.width == 16
    found = ex.finish_examples(loaded, {"c2": whole}, 32)["c2"]
    assert found.y.dtype == found.x.dtype == np.int64
    np.testing.assert_array_equal(found.y * 16 + found.x, whole.position)
    np.testing.assert_array_equal(found.maps, whole.maps)


# --- streaming images ---------------------------------------------------------------------------


def test_stream_images_reads_lazily_in_order(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, shape in enumerate([(40, 48), (48, 40), (32, 32), (20, 60), (33, 33)]):
        path = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    (tmp_path / "broken.jpg").write_text("not an image")
    batches = list(ex.stream_images(paths, 16, 2))
    assert [b.shape for b in batches] == [(2, 16, 16, 3), (2, 16, 16, 3), (1, 16, 16, 3)]
    assert all(b.dtype == np.uint8 for b in batches)
    with Image.open(paths[3]) as image:
        np.testing.assert_array_equal(batches[1][1], square(image, 16))

    stream = ex.stream_images([*paths[:2], tmp_path / "broken.jpg"], 16, 2)
    assert next(stream).shape == (2, 16, 16, 3)  # the broken file is not read yet
    with pytest.raises(GeneratorError, match="broken.jpg.*unreadable"):
        next(stream)
    with pytest.raises(GeneratorError, match="missing.png.*not found"):
        list(ex.stream_images([tmp_path / "missing.png"], 16, 2))
    with pytest.raises(GeneratorError, match="batch size"):
        list(ex.stream_images(paths, 16, 0))


# --- the figure ---------------------------------------------------------------------------------


def test_example_crops_writes_a_deterministic_png(tmp_path):
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    maps = rng.random((7, 8, 8)).astype(np.float32)
    maps[3] = 0.0  # a flat map must not warn
    scores = np.linspace(9, 3, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = figures.example_crops(crops, maps, scores, tmp_path / "a" / "examples.png",
                                      title="c2 / 1: dataset examples")
        second = figures.example_crops(crops, maps, scores, tmp_path / "b.png",
                                       title="c2 / 1: dataset examples")
    assert first.read_bytes() == second.read_bytes()
    with Image.open(first) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.width > image.height  # 5 a row, 2 rows
    labelled = figures.example_crops(crops[:2], maps[:2], scores[:2], tmp_path / "c.png",
                                     title="t", labels=["cat.jpg", "dog.jpg"])
    assert labelled.is_file()
    with pytest.raises(ValueError, match="uint8"):
        figures.example_crops(crops.astype(float), maps, scores, tmp_path / "d.png", title="t")
    with pytest.raises(ValueError, match="scores"):
        figures.example_crops(crops, maps, scores[:3], tmp_path / "d.png", title="t")


def test_merged_maps_take_each_entry_from_its_table_as_float32():
    rng = np.random.default_rng(0)
    kept = rng.random((3, 2, 4, 4)).astype(np.float32)
    batch = rng.random((5, 4, 4, 3)).astype(np.float16)  # (B, h, w, K), as a half-precision model gives them
    from_batch = lambda entry, row: batch[entry, :, :, row]  # noqa: E731
    first = ex._merged_maps(np.empty((3, 0, 0, 0), np.float32), np.array([[4, 0], [1, 2], [3, 3]]), from_batch)
    assert first.dtype == np.float32 and first.shape == (3, 2, 4, 4)
    np.testing.assert_array_equal(first[0, 0], batch[4, :, :, 0])
    np.testing.assert_array_equal(first[2, 1], batch[3, :, :, 2])
    mixed = ex._merged_maps(kept, np.array([[1, 2], [0, 6], [5, 1]]), from_batch)  # >= 2: the batch's entry - 2
    assert mixed.dtype == np.float32
    np.testing.assert_array_equal(mixed[0], np.stack([kept[0, 1], batch[0, :, :, 0]]))
    np.testing.assert_array_equal(mixed[1], np.stack([kept[1, 0], batch[4, :, :, 1]]))
    np.testing.assert_array_equal(mixed[2], np.stack([batch[3, :, :, 2], kept[2, 1]]))
