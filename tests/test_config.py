from pathlib import Path

import pytest
import yaml

from generator.config import load_config
from generator.errors import GeneratorError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "images" / "a.png")
    path = tmp_path / "site_config.yaml"
    path.write_text(text)
    return path


def error(path: Path) -> str:
    with pytest.raises(GeneratorError) as e:
        load_config(path)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_defaults_and_values(tmp_path):
    config = load_config(write(tmp_path, "model: {name: vgg19, weights: none}\nexciters: {steps: 7, step_size: 2}\n"))
    assert config.model.name == "vgg19"
    assert config.exciters.steps == 7
    assert config.exciters.step_size == 2.0 and isinstance(config.exciters.step_size, float)
    assert config.exciters.params(64).size == 64
    assert config.circuits.top_k == 6
    assert config.root == tmp_path.resolve()


def test_units_are_parsed(tmp_path):
    config = load_config(write(tmp_path, "units:\n  - {layer: block3_conv2, channel: 8, note: hello}\n"))
    assert config.units[0].layer == "block3_conv2" and config.units[0].channel == 8
    assert config.note(config.units[0].note) == "hello"


def test_unknown_key_suggests_the_close_one(tmp_path):
    message = error(write(tmp_path, "exciters: {stepz: 3}\n"))
    assert "'exciters.stepz'" in message and "did you mean 'steps'" in message


def test_unknown_section(tmp_path):
    assert "'modle' is not known" in error(write(tmp_path, "modle: {name: vgg16}\n"))


def test_malformed_yaml_names_the_line(tmp_path):
    message = error(write(tmp_path, "model:\n  name: [vgg16\n"))
    assert "not valid YAML" in message and "line" in message


def test_wrong_type(tmp_path):
    message = error(write(tmp_path, "exciters: {steps: many}\n"))
    assert "'exciters.steps'" in message and "'many'" in message and "an integer" in message


def test_range_and_choices(tmp_path):
    assert "one of gradient_ascent, lucid" in error(write(tmp_path, "exciters: {method: deepdream}\n"))
    assert "from 1 to 64" in error(write(tmp_path, "circuits: {top_k: 0}\n"))
    assert "'units[0].channel'" in error(write(tmp_path, "units: [{layer: c1, channel: -1}]\n"))


def test_unit_needs_layer_and_channel(tmp_path):
    assert "'units[0].channel' is required" in error(write(tmp_path, "units: [{layer: c1}]\n"))


def test_missing_image(tmp_path):
    message = error(write(tmp_path, "images: {files: [a.png, nope.jpg]}\n"))
    assert "'nope.jpg' not found" in message


def test_composite_must_be_an_image(tmp_path):
    assert "'images.composite'" in error(write(tmp_path, "images: {composite: b.png}\n"))


def test_missing_config_file(tmp_path):
    assert "not found" in error(tmp_path / "nope.yaml")


def test_note_file_is_read(tmp_path):
    (tmp_path / "note.md").write_text("# from a file")
    config = load_config(write(tmp_path, "notes: {circuit: note.md}\n"))
    assert config.note(config.notes.circuit) == "# from a file"


def test_default_config_is_valid():
    config = load_config(Path(__file__).resolve().parent.parent / "site_config.yaml")
    assert config.model.name == "vgg16-hed"
    assert config.units and config.feature_maps.layers
    for unit in config.units:
        assert config.note(unit.note)
    assert yaml.safe_load((config.root / "site_config.yaml").read_text())
