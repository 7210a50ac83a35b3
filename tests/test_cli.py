"""Bad input: one line naming the key, the value and what is allowed; exit 2; no site written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from generator.seeding import seed_weights
from generator import cli, models

from tiny import edit_config


def run(project: Path, monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.chdir(project)
    code = cli.main(["build", *args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def fails(project, monkeypatch, capsys) -> str:
    code, line = run(project, monkeypatch, capsys)
    assert code == 2
    assert line.startswith("error: ")
    assert not (project / "docs" / "generated").exists()
    return line


def test_unknown_layer_suggests_close_names(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, feature_maps={"layers": ["c1", "c22"]})
    line = fails(tiny_project, monkeypatch, capsys)
    assert "'feature_maps.layers[1]'" in line and "no layer 'c22'" in line and "'c2'" in line


def test_layer_without_channels(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, units=[{"layer": "p1", "channel": 0}])
    line = fails(tiny_project, monkeypatch, capsys)
    assert "'units[0].layer'" in line and "MaxPooling2D" in line and "c1, c2, c3" in line


def test_channel_out_of_range(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, units=[{"layer": "c3", "channel": 8}])
    line = fails(tiny_project, monkeypatch, capsys)
    assert "'units[0].channel'" in line and "channel 8" in line and "0 to 7" in line


def test_unknown_model(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, model={"name": "alexnet"})
    line = fails(tiny_project, monkeypatch, capsys)
    assert "'model.name'" in line and "'alexnet'" in line and "vgg16-hed" in line and "vgg19" in line


def test_unreadable_weights_file(tiny_project, monkeypatch, capsys):
    (tiny_project / "broken.weights.h5").write_bytes(b"not hdf5")
    edit_config(tiny_project, model={"name": "vgg16", "weights": "broken.weights.h5", "preprocess": "none"})
    line = fails(tiny_project, monkeypatch, capsys)
    assert "'model.weights'" in line and "broken.weights.h5" in line


def test_unreadable_image(tiny_project, monkeypatch, capsys):
    (tiny_project / "images" / "photo1.png").write_text("this is not a PNG")
    line = fails(tiny_project, monkeypatch, capsys)
    assert "'photo1.png' is unreadable" in line


def test_malformed_yaml(tiny_project, monkeypatch, capsys):
    (tiny_project / "site_config.yaml").write_text("model: [unclosed\n")
    assert "not valid YAML" in fails(tiny_project, monkeypatch, capsys)


def test_imagenet_without_network_says_what_to_do(tiny_project, monkeypatch, capsys):
    import keras

    def offline(**kwargs):
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
            "vgg19_weights_tf_dim_ordering_tf_kernels.h5: None -- [Errno -3] Temporary failure in name resolution"
        )

    monkeypatch.setattr(keras.applications, "VGG19", offline)
    edit_config(tiny_project, model={"name": "vgg19", "weights": "imagenet", "preprocess": "none"})
    line = fails(tiny_project, monkeypatch, capsys)
    assert "vgg19_weights_tf_dim_ordering_tf_kernels.h5" in line
    assert "~/.keras/models/" in line and "model.weights" in line and "vgg16-hed" in line


def test_real_process_exit_code_and_no_traceback(tiny_project):
    edit_config(tiny_project, exciters={"stepz": 3})
    run = subprocess.run([sys.executable, "-m", "generator", "build"], cwd=tiny_project, capture_output=True, text=True)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: config key 'exciters.stepz' is not known (did you mean 'steps'?); "
        "allowed here: method, steps, step_size, size, seed, objective, negative, batch_size, precision, maco_crops, "
        "maco_spectrum, grid, directions, diversity, diversity_weight"
    ]


def test_layers_command_lists_conv_layers(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    assert cli.main(["layers"]) == 0
    out = capsys.readouterr().out
    assert "c3" in out and "Conv2D" in out and "MaxPooling2D" in out


def test_missing_examples_folder_fails_before_any_work(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, browse={"examples_dir": "no-such-folder"})
    line = fails(tiny_project, monkeypatch, capsys)
    assert "'browse.examples_dir'" in line and "'no-such-folder' not found" in line


def test_earlier_layer_must_be_a_conv_layer(tiny_project, monkeypatch, capsys):
    edit_config(tiny_project, circuits={"earlier_layer": "p1"})
    line = fails(tiny_project, monkeypatch, capsys)
    assert "'circuits.earlier_layer'" in line and "MaxPooling2D" in line


def test_a_sequential_model_with_a_fixed_size(tiny_project, monkeypatch, capsys):
    import keras

    seed_weights(0)
    keras.Sequential([keras.Input((24, 24, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="k1"),
                      keras.layers.Conv2D(5, 3, activation="relu", name="k2"), keras.layers.Flatten(),
                      keras.layers.Dense(3, activation="softmax")]).save(tiny_project / "seq.keras")
    edit_config(tiny_project, model={"name": "seq.keras"}, feature_maps={"layers": ["k1"]},
                units=[{"layer": "k2", "channel": 1}], browse={"layers": ["k2"]},
                circuits={"earlier_layer": ""}, exciters={"grid": {"layer": "k2", "count": 2, "size": 16}})
    line = fails(tiny_project, monkeypatch, capsys)
    assert "'images.size'" in line and "got 32" in line and "24x24" in line
    edit_config(tiny_project, images={"size": 24})
    assert cli.main(["build"]) == 0
    unit = tiny_project / "docs/generated/models/seq/k2/1"
    assert (unit / "index.md").is_file()
    from PIL import Image

    import numpy as np

    with Image.open(unit / "exciter.png") as im:  # made at the model's own 24 px, shown zoomed x6 (a small input)
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape == (144, 144, 3)
    blocks = pixels.reshape(24, 6, 24, 6, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()


@pytest.mark.parametrize("section, message", [
    ({"methods": ["gradcam", "lime"]}, "config key 'attribution.methods': got 'lime', expected one of gradcam"),
    ({"layer": "p1"}, "config key 'attribution.layer': layer 'p1' is a MaxPooling2D layer, not a convolution"),
    ({"steps": 0}, "config key 'attribution.steps': got 0, expected an integer from 1 to 1024"),
    ({"baseline": "white"}, "config key 'attribution.baseline': got 'white', expected one of black, blurred"),
])
def test_bad_attribution_settings(tiny_project, monkeypatch, capsys, section, message):
    edit_config(tiny_project, attribution=section)
    assert message in fails(tiny_project, monkeypatch, capsys)
