"""The views beyond one exciter per unit: directions (and their config), end to end on the tiny model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator.build import build_site
from generator.config import load_config
from generator.config.directions import DirectionSpec, parse_direction
from generator.model_checks import direction_vector
from generator.errors import GeneratorError
from generator.results import LayerInfo

from tiny import edit_config

REPO = Path(__file__).resolve().parent.parent
LAYERS = (LayerInfo("image", "InputLayer", (None, None, None, 3), 0, 3),
          LayerInfo("c2", "Conv2D", (None, None, None, 6), 10, 6, ("image",)))


def build(project: Path) -> dict:
    return build_site(load_config(project / "site_config.yaml"), project)


def test_direction_sums_weighted_channels(tmp_path):
    spec = parse_direction("c2: 0.5*1 + 0.5 * 4 - 2 + 1e-1*1", "k")
    assert spec == DirectionSpec("c2: 0.5*1 + 0.5 * 4 - 2 + 1e-1*1", "c2", ((1, 0.5), (4, 0.5), (2, -1.0), (1, 0.1)))
    np.testing.assert_allclose(direction_vector(spec, LAYERS, tmp_path, "k"), [0, 0.6, -1, 0, 0.5, 0], rtol=1e-6)
    np.save(tmp_path / "d.npy", np.arange(6.0))
    vector = direction_vector(parse_direction("c2: d.npy", "k"), LAYERS, tmp_path, "k")
    assert vector.dtype == np.float32 and vector.tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("text, message", [
    ("c2 0.5*1", "expected '<layer>: <weight>*<channel> + ...' or '<layer>: <file>.npy'"),
    ("c2: 0.5*x", "expected '<layer>: <weight>*<channel>"),
    ("c2: 1 +", "expected '<layer>: <weight>*<channel>"),
])
def test_bad_direction_syntax(text, message):
    with pytest.raises(GeneratorError, match="^config key 'k': got .*" + message.replace("*", r"\*").replace("+", r"\+")):
        parse_direction(text, "k")


@pytest.mark.parametrize("text, message", [
    ("c3: 1", "the model has no layer 'c3'; did you mean 'c2'"),
    ("c2: 6", "channel 6 is out of range for layer 'c2', which has channels 0 to 5"),
    ("c2: 0*1", "the direction .c2: 0\\*1. must have finite weights, not all 0"),
    ("c2: short.npy", "'short.npy' holds an array of shape \\(4,\\); layer 'c2' needs 6 numbers"),
    ("c2: missing.npy", "cannot read 'missing.npy' as a .npy array"),
])
def test_direction_checked_against_the_layer(tmp_path, text, message):
    np.save(tmp_path / "short.npy", np.ones(4))
    with pytest.raises(GeneratorError, match="^config key 'k': " + message):
        direction_vector(parse_direction(text, "k"), LAYERS, tmp_path, "k")


def test_unknown_view_layer_is_one_line(tiny_project, monkeypatch, capsys):
    from generator import cli

    edit_config(tiny_project, views={"layers": ["c9"]})
    monkeypatch.chdir(tiny_project)
    assert cli.main(["build"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: config key 'views.layers[0]': the model has no layer 'c9'; did you mean 'c3', 'c2', 'c1'?"), line


def test_bad_direction_fails_at_load(tiny_project):
    edit_config(tiny_project, exciters={"directions": ["c3: five"]})
    with pytest.raises(GeneratorError, match=r"^config key 'exciters.directions\[0\]': got 'c3: five'"):
        load_config(tiny_project / "site_config.yaml")


def test_directions_and_diverse_exciters_on_their_pages(built, monkeypatch):
    project, _ = built
    np.save(project / "d.npy", np.eye(8)[2])
    edit_config(project, exciters={"directions": ["c3: 0.5*5 + 0.5*1", "c3: d.npy"], "diversity": 3},
                views={"layers": ["c2", "p1"], "deepdream_steps": 4, "caricature_steps": 6},
                groups={"layers": ["c3"], "count": 3, "exciter_size": 16})
    build(project)
    groups = json.loads((project / "docs/generated/images/photo0/groups.json").read_text())["c3"]
    assert groups["reconstruction_error"] < groups["random_factorisation_error"]
    assert len(groups["groups"]) == 3 and all(g["exciter_activation"] is not None for g in groups["groups"])
    page = (project / "docs/generated/images/photo0/index.md").read_text()
    assert "](groups-c3.png)" in page and "](group-c3-2.png)" in page
    strongest = groups["groups"][0]["strongest_channels"][0]
    assert f"[`{strongest}`](../../models/tiny/c3/{strongest}/index.md)" in page
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")  # every new link resolves
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
    assert (project / "site/models/tiny/views/index.html").is_file()
    from generator import analyses

    monkeypatch.setattr(analyses, "load_model", lambda *a: pytest.fail("the model was loaded"))
    assert build(project)["cache_misses"] == 0  # every new view comes from the cache
    photo = project / "docs/generated/images/photo1"
    views = json.loads((photo / "views.json").read_text())
    assert set(views) == {"c2", "p1"}
    dream = views["c2"]["deepdream"]["mean_squared_activation"]
    assert dream[1] > dream[0]
    for name in ["deepdream-c2.png", "caricature-c2.png", "deepdream-p1.png", "caricature-p1.png"]:
        assert (photo / name).stat().st_size > 100, name
    assert "](caricature-p1.png)" in (photo / "index.md").read_text()
    assert "../../../images/photo1/deepdream-c2.png" in (project / "docs/generated/models/tiny/c2/index.md").read_text()
    assert "../../../images/photo0/caricature-p1.png" in (project / "docs/generated/models/tiny/views/index.md").read_text()
    unit = project / "docs/generated/models/tiny/c3/5"
    data = json.loads((unit / "unit.json").read_text())
    assert len(data["diverse"]) == 3 and all(d["activation"] > d["start_activation"] for d in data["diverse"])
    images = [(unit / f"diverse-{k}.png").read_bytes() for k in range(3)]
    assert len(set(images)) == 3
    assert "](diverse-2.png)" in (unit / "index.md").read_text()
    assert set(data["recipes"]) == {"gradient_ascent", "lucid"}  # the lab's recipe and Lucid's, side by side
    assert data["recipes"]["gradient_ascent"]["activation"] == data["exciter"]["activation"]
    assert "](exciter-lucid.png)" in (unit / "index.md").read_text() and (unit / "exciter-lucid.png").is_file()
    out = project / "docs/generated/models/tiny"
    records = json.loads((out / "directions.json").read_text())
    assert [r["direction"] for r in records] == ["c3: 0.5*5 + 0.5*1", "c3: d.npy"]
    assert records[0]["weights"][5] == 0.5 and records[1]["weights"][2] == 1
    assert all(r["activation"] > r["start_activation"] for r in records)
    page = (out / "index.md").read_text()
    assert "](direction-0.png)" in page and "[`c3:5`](c3/5/index.md) (0.5)" in page
    assert (out / "direction-1.png").stat().st_size > 100


# --- diversity ------------------------------------------------------------------------------------


def _grey_is_zero(x):
    return (x - 128.0) / 10.0


def test_diversity_lowers_gram_similarity_and_still_raises_the_unit():
    keras = pytest.importorskip("keras")
    from generator.analysis.diversity import pairwise_gram_similarity, render_diverse
    from generator.analysis.exciters import render_exciters
    from generator.config import ExciterParams
    from tiny import exciter_model

    model = exciter_model()
    layer = keras.Model(model.input, model.get_layer("c2").output)
    params = ExciterParams(method="lucid", steps=40, size=32, batch_size=6, seed=3, precision="float32")
    off = render_diverse(model, "c2", [1, 4], 3, 0.0, params, _grey_is_zero)
    on = render_diverse(model, "c2", [1, 4], 3, 1.0, params, _grey_is_zero)
    assert on.images.shape == (6, 32, 32, 3)
    for unit in range(2):
        group = slice(3 * unit, 3 * unit + 3)
        similarity = [pairwise_gram_similarity(keras.ops.convert_to_numpy(layer(_grey_is_zero(r.images[group].astype("float32")))))
                      for r in (off, on)]
        assert similarity[1] < similarity[0] - 0.2, similarity
    assert np.all(on.activation > on.start_activation + 1e-3), (on.start_activation, on.activation)
    again = render_diverse(model, "c2", [1, 4], 3, 1.0, params, _grey_is_zero)
    assert again.images.tobytes() == on.images.tobytes()
    plain = render_exciters(model, "c2", [1, 4], params, _grey_is_zero)  # image 0 of a unit starts where its exciter does
    assert np.abs(off.images[[0, 3]].astype(int) - plain.images.astype(int)).max() <= 1


@pytest.mark.parametrize("redirect", [False, True])
def test_the_diversity_pass_holds_every_channel_and_each_units_objective(redirect):
    """Diversity reads its units and its Gram matrices from one pass to every channel of the layer: the same
    maps as the channels' own, and each unit's objective as the plain exciters compute it."""
    keras = pytest.importorskip("keras")
    from generator.analysis.exciters import channel_maps, every_channel_maps, map_objective, own_channel, unit_objective
    from tiny import exciter_model

    model = exciter_model()
    target = model.get_layer("c2")
    images = keras.ops.convert_to_tensor(np.random.default_rng(0).uniform(0, 255, (4, 20, 20, 3)).astype("float32"))
    every = keras.ops.convert_to_numpy(every_channel_maps(model, target, redirect)(_grey_is_zero(images)))
    picked = channel_maps(model, target, 8, redirect)(_grey_is_zero(images), keras.ops.arange(8, dtype="int32"))
    assert every.shape == (4, 16, 16, 8)
    np.testing.assert_allclose(every, keras.ops.convert_to_numpy(picked), rtol=1e-5, atol=1e-5)
    assert (every.min() < 0) == redirect  # before the ReLU only where the gradient is redirected
    units = keras.ops.convert_to_tensor(np.array([1, 4, 4, 7], "int32"))
    for kind in ("channel", "neuron"):
        own = map_objective(own_channel(keras.ops.convert_to_tensor(every), units), kind)
        plain = unit_objective(model, target, 4, _grey_is_zero, kind, redirect)(images, units)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(own), keras.ops.convert_to_numpy(plain), rtol=1e-5,
                                   atol=1e-6)


# --- DeepDream and Caricature ---------------------------------------------------------------------


def test_deepdream_raises_the_layer_norm_and_caricature_approaches_the_image():
    pytest.importorskip("keras")
    from generator.analysis.views import Batches, caricature, deepdream
    from tiny import exciter_model

    model = exciter_model()
    images = np.random.default_rng(0).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    dream = deepdream(model, "c2", images, _grey_is_zero, steps=8, step_size=4.0, batches=Batches(2))
    assert dream.images.shape == images.shape and dream.images.dtype == np.uint8
    assert np.all(dream.activation > dream.start_activation * 1.2), (dream.start_activation, dream.activation)
    assert np.abs(dream.images.astype(int) - images).mean() < 40  # still the image, exaggerated
    fast = deepdream(model, "c2", images, _grey_is_zero, steps=8, step_size=4.0, batches=Batches(3, "bfloat16"))
    np.testing.assert_allclose(fast.activation, dream.activation, rtol=0.1)
    cari = caricature(model, "c2", images, _grey_is_zero, steps=40, seed=0, batches=Batches(3))
    assert np.all(cari.activation > cari.start_activation + 0.05), (cari.start_activation, cari.activation)
    again = caricature(model, "c2", images[[2, 0]], _grey_is_zero, steps=40, seed=0, batches=Batches(2))
    assert np.abs(again.images[0].astype(int) - cari.images[2]).max() <= 1  # an image's result ignores its batch


# --- activation groups ----------------------------------------------------------------------------


def test_activation_groups_on_one_blas_thread_are_scikit_learns_factors():
    from sklearn.decomposition import NMF

    from generator.analysis.groups import activation_groups

    rng = np.random.default_rng(2)
    activations = (rng.random((10, 10, 24)) ** 3).astype(np.float32)
    groups = activation_groups(activations, 3, seed=5)
    nmf = NMF(n_components=3, init="nndsvda", random_state=5, max_iter=200, tol=1e-4)
    spatial = nmf.fit_transform(activations.reshape(100, 24).astype(np.float64))
    weight = spatial.sum(axis=0) * np.linalg.norm(nmf.components_, axis=1)
    order = np.argsort(-weight, kind="stable")
    np.testing.assert_array_equal(groups.directions, nmf.components_[order].astype(np.float32))
    np.testing.assert_array_equal(groups.maps, spatial[:, order].T.reshape(3, 10, 10).astype(np.float32))


def test_activation_groups_errors_are_taken_on_one_blas_thread(monkeypatch):
    from threadpoolctl import threadpool_info

    from generator.analysis import groups

    threads = []
    relative_error = groups._relative_error

    def recorded(*args):
        threads.append({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
        return relative_error(*args)

    monkeypatch.setattr(groups, "_relative_error", recorded)
    groups.activation_groups((np.random.default_rng(3).random((6, 6, 8)) ** 3).astype(np.float32), 2, seed=0)
    assert threads == [{1}, {1}]  # the random factors' error and the factors' own: last digits as on any machine


def test_activation_groups_factorise_non_negatively_and_beat_random():
    from generator.analysis.groups import activation_groups

    rng = np.random.default_rng(0)
    parts = rng.random((3, 12 * 12)) ** 4, rng.random((3, 16)) ** 2  # three groups of channels over the picture
    activations = (parts[0].T @ parts[1] + 0.01 * rng.random((144, 16))).reshape(12, 12, 16).astype(np.float32)
    groups = activation_groups(activations, 3, seed=1)
    assert groups.maps.shape == (3, 12, 12) and groups.directions.shape == (3, 16)
    assert groups.maps.min() >= 0 and groups.directions.min() >= 0
    assert groups.error < 0.1 < groups.random_error, (groups.error, groups.random_error)
    weight = groups.maps.sum(axis=(1, 2)) * np.linalg.norm(groups.directions, axis=1)
    assert np.all(np.diff(weight) <= 1e-6)  # strongest group first
    again = activation_groups(activations, 3, seed=1)
    assert again.maps.tobytes() == groups.maps.tobytes() and again.error == groups.error
    top = groups.strongest(0, 2)
    assert len(top) == 2 and top[0][1] >= top[1][1] and top[0][1] == groups.directions[0].max()
    dead = activation_groups(np.zeros((4, 4, 8), np.float32), 3, seed=1)
    assert dead.error == 0 and not dead.directions.any()


def test_group_figure_is_deterministic(tmp_path):
    from PIL import Image

    from generator import figures

    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    maps = np.random.default_rng(1).random((3, 4, 4)).astype(np.float32)
    a = figures.activation_groups(image, maps, tmp_path / "a.png", title="groups")
    b = figures.activation_groups(image, maps, tmp_path / "b.png", title="groups")
    assert a.read_bytes() == b.read_bytes()
    with Image.open(a) as im:
        assert im.width > 2.5 * im.height  # the composite and three groups side by side


@pytest.mark.parametrize("section, values, message", [
    ("views", {"caricature_steps": -1}, "config key 'views.caricature_steps': got -1, expected an integer from 0 to 10000"),
    ("groups", {"count": 0}, "config key 'groups.count': got 0, expected an integer from 1 to 10"),
    ("groups", {"method": "deepdream"}, "config key 'groups.method': got 'deepdream', expected one of gradient_ascent, lucid, maco"),
    ("exciters", {"diversity": 40}, "config key 'exciters.diversity': got 40, expected an integer from 0 to 16"),
    ("exciters", {"diversity_weight": 0}, "config key 'exciters.diversity_weight': got 0.0, expected a number above 0"),
])
def test_bad_view_settings_are_one_line(tiny_project, section, values, message):
    edit_config(tiny_project, **{section: values})
    with pytest.raises(GeneratorError) as e:
        load_config(tiny_project / "site_config.yaml")
    assert str(e.value) == message


def test_views_of_a_layer_trace_the_network_three_times(monkeypatch):
    """DeepDream's step, Caricature's step and one forward shared by both views' measures and Caricature's target;
    Caricature's image function, once for every layer of the size."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("counts tf.function traces")
    import tensorflow as tf

    from generator.analysis import backend, views
    from tiny import exciter_model

    traces, compile_step = [], backend.compile_step

    def counted(fn):
        def traced(*args):
            if not tf.executing_eagerly():
                traces.append(fn.__name__)
            return fn(*args)

        return compile_step(traced)

    monkeypatch.setattr(backend, "compile_step", counted)
    views._compiled_activations.cache_clear()
    views._compiled_render.cache_clear()
    model, images = exciter_model(), np.random.default_rng(0).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    for layer in ("c2", "c3"):
        views.deepdream(model, layer, images, _grey_is_zero, steps=3, step_size=4.0, batches=views.Batches(2))
        views.caricature(model, layer, images, _grey_is_zero, steps=3, seed=0, batches=views.Batches(2))
    assert traces == ["step", "activations", "<lambda>", "step"] + ["step", "activations", "step"], traces
    views._compiled_activations.cache_clear()
    views._compiled_render.cache_clear()


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_deepdreams_measures_are_a_separate_forwards(precision):
    """The start read from the first step's own pass, the final from the shared forward on the uint8 result: each
    bit for bit what a separately compiled forward gives, and near a float64 NumPy one."""
    keras = pytest.importorskip("keras")
    from generator.analysis import backend, views
    from tiny import exciter_model

    model, images = exciter_model(), np.random.default_rng(1).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    dream = views.deepdream(model, "c2", images, _grey_is_zero, steps=4, step_size=4.0,
                            batches=views.Batches(3, precision))
    cut = views._cut(model, "c2", precision)
    energy = backend.compile_step(lambda x: views._mean_square(views._activations(cut, _grey_is_zero)(x)))
    for pixels, measure in ((images, dream.start_activation), (dream.images, dream.activation)):
        assert keras.ops.convert_to_numpy(energy(pixels.astype("float32"))).tobytes() == measure.tobytes()
    plain = keras.Model(model.input, model.get_layer("c2").output)
    maps = keras.ops.convert_to_numpy(plain(_grey_is_zero(images.astype("float32")))).astype(np.float64)
    np.testing.assert_allclose(dream.start_activation, np.mean(maps**2, axis=(1, 2, 3)), rtol=0.02 if precision == "bfloat16" else 1e-5)
    assert np.all(dream.activation > dream.start_activation)
