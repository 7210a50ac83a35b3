"""Error lines that describe the actual problem and suggest only values the config accepts: a test per kind."""

from __future__ import annotations

import re
from pathlib import Path

import keras
import pytest
import yaml

from generator.seeding import seed_weights
from generator import cli
from generator.analysis.exciters import render_exciters
from generator.config import ExciterParams, load_config
from generator.config.messages import allowed
from generator.errors import GeneratorError, shown

from tiny import config_rules, edit_config


def error_line(project: Path, monkeypatch, capsys, config: str = "site_config.yaml") -> str:
    """The build's only stderr line starting with ``error:`` (exit status 2, no traceback)."""
    monkeypatch.chdir(project)
    assert cli.main(["build", "--config", config]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_corrupt_keras_file_is_not_reported_as_missing(tiny_project, monkeypatch, capsys):
    (tiny_project / "broken.keras").write_bytes(b"PK\x03\x04 cut off in the middle of a download")
    edit_config(tiny_project, model={"name": "broken.keras"})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert "not found" not in line.lower()
    assert "'model.name'" in line and "'broken.keras' is not a Keras model" in line and "zip archive" in line


def test_a_keras_file_that_loads_wrongly_names_the_loader_problem(tiny_project, monkeypatch, capsys):
    import zipfile

    with zipfile.ZipFile(tiny_project / "empty.keras", "w") as archive:
        archive.writestr("readme.txt", "no model in here")
    edit_config(tiny_project, model={"name": "empty.keras"})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert "cannot load 'empty.keras'" in line and "config.json" in line and "not found" not in line.lower()


@pytest.mark.parametrize("section, key, value, expected", [
    ("model", "name", "images.keras", "model file 'images.keras' is a folder, not a file"),
    ("model", "labels", "images", "file 'images' is a folder, not a file"),
    ("images", "dir", "site_config.yaml", "folder 'site_config.yaml' is a file, not a folder"),
    ("browse", "examples_dir", "site_config.yaml", "folder 'site_config.yaml' is a file, not a folder"),
    ("images", "dir", "nowhere", "folder 'nowhere' not found"),
])
def test_a_folder_is_not_a_file_nor_a_file_a_folder(tiny_project, monkeypatch, capsys, section, key, value, expected):
    (tiny_project / "images.keras").mkdir()
    edit_config(tiny_project, **{section: {key: value}})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert f"'{section}.{key}'" in line and expected in line


def test_a_weights_name_that_is_no_file_says_what_weights_are_allowed(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, model={"name": "vgg16", "weights": "imagnet"})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert "'model.weights'" in line and "'imagnet'" in line and "imagenet, none" in line
    assert "No such file" not in line


@pytest.mark.parametrize("what, setup", [
    ("config file 'site_config.yaml'", lambda p: (p / "site_config.yaml").write_bytes("Caf\u00e9: 1".encode("latin-1"))),
    ("note file 'latin1.md'", lambda p: edit_config(p, notes={"circuit": "latin1.md"})),
    ("config key 'model.labels': file 'latin1.md'", lambda p: edit_config(p, model={"labels": "latin1.md"})),
])
def test_text_that_is_not_utf8_is_named_as_such(tiny_project, monkeypatch, capsys, what, setup):
    (tiny_project / "latin1.md").write_bytes("Caf\u00e9 notes".encode("latin-1"))
    setup(tiny_project)
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line == f"error: {what} is not UTF-8 text (byte 3); save it as UTF-8"


def test_a_path_with_a_nul_character_is_not_a_valid_file_name(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, notes={"exciter": "notes\x00.md"})
    assert error_line(tiny_project, monkeypatch, capsys) == "error: note file 'notes\\x00.md' is not a valid file name"


def test_a_missing_note_file_is_not_found(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, notes={"exciter": "gone.md"})
    assert error_line(tiny_project, monkeypatch, capsys) == "error: note file 'gone.md' not found"


def test_yaml_nested_too_deeply(tiny_project, monkeypatch, capsys):
    (tiny_project / "site_config.yaml").write_text("site: " + "[" * 3000 + "]" * 3000 + "\n")
    assert "nested too deeply" in error_line(tiny_project, monkeypatch, capsys)


@pytest.mark.parametrize("section, key", [("model", "seed"), ("exciters", "seed")])
def test_seeds_that_numpy_refuses_are_refused_up_front(tiny_project, monkeypatch, capsys, section, key):
    for bad in (-1, 2**32):
        edit_config(tiny_project, **{section: {key: bad}})
        line = error_line(tiny_project, monkeypatch, capsys)
        assert line == f"error: config key '{section}.{key}': got {bad}, expected an integer from 0 to 4294967295"


def test_an_infinite_step_size_is_refused(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, exciters={"step_size": float("inf")})
    assert "above 0 and at most 1000" in error_line(tiny_project, monkeypatch, capsys)


def test_a_huge_value_makes_a_short_line(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, images={"size": list(range(10_000))}, site={"title": "x" * 100_000})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line.startswith("error: config key 'images.size': got [0, 1, 2,") and "..., expected an integer" in line
    assert len(line) < 200
    assert shown("y" * 1000) == "'" + "y" * 76 + "..." and shown("short") == "'short'"


def test_a_huge_unknown_key_makes_a_short_line(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, site={"z" * 5000: 1})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert "is not known" in line and len(line) < 250


def test_a_missing_image_is_named_as_configured(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, images={"files": ["photo0.png", "../elsewhere/photo1.png"], "composite": ""})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line == "error: config key 'images.files': image '../elsewhere/photo1.png' not found in 'images'"


def test_a_unit_listed_twice(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, units=[{"layer": "c3", "channel": 5}, {"layer": "c2", "channel": 1},
                                     {"layer": "c3", "channel": 5, "note": "again"}])
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line == "error: config key 'units[2]': unit 'c3' channel 5 is already units[0]; list each unit once"


@pytest.mark.parametrize("section, key, names, expected", [
    ("images", "files", ["photo0.png", "photo1.png", "photo0.png"], "'images.files[2]': 'photo0.png' is already images.files[0]"),
    ("feature_maps", "layers", ["c1", "c2", "c2"], "'feature_maps.layers[2]': 'c2' is already feature_maps.layers[1]"),
    ("browse", "layers", ["c3"] * 3000, "'browse.layers[1]': 'c3' is already browse.layers[0]"),
])
def test_a_name_listed_twice_is_not_told_to_rename(tiny_project, monkeypatch, capsys, section, key, names, expected):
    edit_config(tiny_project, **{section: {key: names}})
    assert error_line(tiny_project, monkeypatch, capsys) == f"error: config key {expected}"


def test_two_images_with_one_name_are_told_to_rename(tiny_project, monkeypatch, capsys):
    from PIL import Image

    Image.new("RGB", (40, 40), "red").save(tiny_project / "images" / "photo0.jpg")
    edit_config(tiny_project, images={"files": ["photo0.png", "photo0.jpg"]})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line == "error: config key 'images.files': two images share the name 'photo0'; rename one"


def test_all_stands_alone_in_browse_layers(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, browse={"layers": ["all", "c2"]})
    line = error_line(tiny_project, monkeypatch, capsys)
    assert "'browse.layers'" in line and "either 'all' or a list of layer names" in line
    assert "no layer 'all'" not in line


@pytest.mark.parametrize("text, shown_value", [("yes", "True"), ("2024-01-31", "datetime.date(2024, 1, 31)")])
def test_yaml_booleans_and_dates_in_text_fields_get_a_quotes_hint(tiny_project, monkeypatch, capsys, text, shown_value):
    (tiny_project / "site_config.yaml").write_text(f"site: {{title: {text}}}\n")
    line = error_line(tiny_project, monkeypatch, capsys)
    assert line == f"error: config key 'site.title': got {shown_value}, expected text; put it in quotes to keep it as text"


def test_a_non_square_fixed_input_is_not_told_to_change_the_exciter_size():
    seed_weights(0)
    x = inputs = keras.Input((24, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="c1")(x), name="wide")
    for size in (24, 32):
        with pytest.raises(GeneratorError) as e:
            render_exciters(model, "c1", [0], ExciterParams(steps=1, size=size), lambda v: v)
        assert str(e.value) == ("exciters: model 'wide' takes 24x32 images; exciters are square, so they need a model "
                                "with a square or free input size")


def _ranges() -> list[tuple[str, int, int]]:
    """Every numeric rule that describes an integer range: (key, low, high)."""
    found = []
    for key, rule in config_rules().items():
        match = re.match(r"an integer from (\d+)(?: \(.*\))? to (\d+)$", allowed(rule))
        if match:
            found.append((key, int(match.group(1)), int(match.group(2))))
    return found


def test_every_range_rule_is_checked_by_its_own_key():
    assert {key for key, _, _ in _ranges()} >= {"images.size", "exciters.steps", "exciters.size", "circuits.window",
                                               "model.seed", "exciters.seed", "browse.thumbnail_steps"}


@pytest.mark.parametrize("key, low, high", _ranges())
def test_a_suggested_range_is_exactly_what_the_config_accepts(tmp_path, key, low, high):
    """The bounds a message names pass, one beyond them fails with that same message."""
    (tmp_path / "images").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.png")
    parts = key.split(".")

    def config_with(value):
        data: dict = {}
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        path = tmp_path / "site_config.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    for good in (low, high):
        load_config(config_with(good))
    for bad in (low - 1, high + 1):
        with pytest.raises(GeneratorError) as e:
            load_config(config_with(bad))
        assert f"got {bad}, expected an integer from {low}" in str(e.value) and f"to {high}" in str(e.value)


def model_error_line(model, name: str, project: Path, monkeypatch, capsys) -> str:
    """The error line of a build of ``project`` on ``model``, saved there as ``name``."""
    model.save(project / name)
    edit_config(project, model={"name": name})
    return error_line(project, monkeypatch, capsys)


def test_a_model_with_a_nan_weight_is_one_error_line(tiny_project, tiny_model_file, monkeypatch, capsys):
    import numpy as np

    model = keras.models.load_model(tiny_model_file)
    kernel = model.get_layer("c2").kernel
    kernel.assign(np.where(np.arange(kernel.shape[-1]) == 1, np.nan, kernel.numpy()).astype("float32"))
    line = model_error_line(model, "diverged.keras", tiny_project, monkeypatch, capsys)
    assert line == ("error: config key 'model.name': the weight c2/kernel of 'diverged.keras' holds NaN or infinite "
                    "values, and so would every result computed from it; load weights saved before the training "
                    "diverged")


def test_a_layer_giving_nan_from_finite_weights_is_one_error_line(tiny_project, monkeypatch, capsys):
    import numpy as np

    seed_weights(0)
    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(x)
    norm = keras.layers.BatchNormalization(name="bn")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU(name="r1")(norm(x)))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x))
    norm.moving_variance.assign(-np.ones(4, "float32"))  # finite, but its square root is NaN
    line = model_error_line(model, "negative.keras", tiny_project, monkeypatch, capsys)
    assert line == ("error: config key 'model.name': layer 'bn' (BatchNormalization) gives NaN or infinite values on "
                    "images of random pixels, though the model's weights are finite; the analyses need finite "
                    "activations: check that layer's weights (a BatchNormalization's moving variance below 0?)")
