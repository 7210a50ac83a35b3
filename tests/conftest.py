"""Shared fixtures: a tiny seeded classifier saved as a .keras file, and a project folder using it."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image


def tiny_classifier(seed: int = 0):
    """Input (any size) -> c1 (4) -> c2 (6) -> p1 max-pool -> c3 (8) -> global average -> head (5 classes)."""
    import keras

    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((None, None, 3), name="pixels")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="tiny")


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_classifier().save(path)
    return path


def write_images(folder: Path, n: int = 3, size: int = 40, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"photo{i}.png"
        Image.fromarray(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)).save(folder / name)
        names.append(name)
    return names


def tiny_config(model_file: Path, names: list[str]) -> dict:
    return {
        "site": {"title": "Tiny report: colons, #hashes and \"quotes\""},
        "model": {"name": str(model_file), "preprocess": "tf"},
        "images": {"dir": "images", "files": names, "size": 32, "composite": names[0]},
        "feature_maps": {"layers": ["c1", "c2"], "per_row": 4},
        "exciters": {"steps": 4, "size": 32, "batch_size": 4, "grid": {"layer": "c2", "count": 4, "size": 16, "per_row": 2}},
        "units": [{"layer": "c3", "channel": 5, "note": "Channel five of c3 **likes** stripes."}],
        "circuits": {"top_k": 3, "earlier_layer": "c1"},
        "browse": {"layers": ["c2", "c3"], "thumbnail_size": 16, "thumbnail_steps": 3, "examples_top_n": 2, "top_k": 3},
        "notes": {"predictions": "Random weights, random photos."},
    }


def make_project(folder: Path, model_file: Path) -> Path:
    names = write_images(folder / "images")
    (folder / "site_config.yaml").write_text(yaml.safe_dump(tiny_config(model_file, names)))
    return folder


@pytest.fixture
def tiny_project(tmp_path, tiny_model_file) -> Path:
    """A project folder with images, a config on the tiny model, and nothing built yet."""
    return make_project(tmp_path, tiny_model_file)


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory, tiny_model_file) -> tuple[Path, dict]:
    """The tiny project built once (cold); tests copy it rather than build it again."""
    from generator.build import build_site
    from generator.config import load_config

    project = make_project(tmp_path_factory.mktemp("built"), tiny_model_file)
    return project, build_site(load_config(project / "site_config.yaml"), project)


@pytest.fixture
def built(tiny_build, tmp_path) -> tuple[Path, dict]:
    """A private copy of the built tiny project (site and cache), with the cold build's summary."""
    project, summary = tiny_build
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    return copy, summary
