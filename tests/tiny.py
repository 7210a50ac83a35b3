"""The tiny seeded models, images and configs that the tests share (not a test module).

Every model is built from a fixed seed, so a test that uses one sees the same weights every run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import yaml
from PIL import Image

from generator import cli
from generator.seeding import seed_weights

L = keras.layers
REPO = Path(__file__).resolve().parent.parent


def seeded(model, seed=0):
    """Give every weight a deterministic random value (variances positive for BatchNorm)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(0.5, 1.5, v.shape) if "variance" in v.path
                       else rng.normal(size=v.shape) for v in model.weights])
    return model


def plain_model(activation="relu"):
    """16x16x3 -> c1 (4) -> c2 (5) -> p1 max 2x2 -> c3 (6); 'same' padding."""
    return seeded(keras.Sequential([
        keras.Input((16, 16, 3)),
        L.Conv2D(4, 3, padding="same", activation=activation, name="c1"),
        L.Conv2D(5, 3, padding="same", activation=activation, name="c2"),
        L.MaxPooling2D(name="p1"),
        L.Conv2D(6, 3, padding="same", name="c3"),
    ]))


def strided_model():
    """Stride 2 'valid' conv, BatchNorm, ReLU layer, zero padding, rectangular dilated conv."""
    image = keras.Input((18, 18, 3), name="image")
    x = L.Conv2D(4, 3, strides=2, name="s1")(image)                       # 8x8
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    x = L.ZeroPadding2D(1, name="pad")(x)                                # 10x10
    x = L.Conv2D(3, (3, 2), dilation_rate=(1, 2), name="s2")(x)          # 8x8
    return seeded(keras.Model(image, x), seed=1)


def residual_model():
    """a -> b (relu) -> Add(a, b) -> c: a residual block."""
    image = keras.Input((8, 8, 3), name="image")
    a = L.Conv2D(3, 3, padding="same", name="a")(image)
    b = L.Conv2D(3, 3, padding="same", activation="relu", name="b")(a)
    s = L.Add(name="block_add")([a, b])
    c = L.Conv2D(2, 3, padding="same", name="c")(s)
    return seeded(keras.Model(image, c), seed=2)


def geometry_model(pool=keras.layers.AveragePooling2D, ones: bool = True, size=None) -> keras.Model:
    """conv 3 -> pool 2 -> strided conv 3/2 (same) -> zero pad 1 -> dilated conv 3 (d 2, valid) -> conv 3.

    With ``ones`` every kernel is all ones, no bias, no activation: a single bright input pixel
    then raises exactly the outputs that read it (no cancellation, exact small integers).
    """
    seed_weights(0)
    kw = {"kernel_initializer": "ones", "use_bias": False} if ones else {"activation": "relu"}
    x = inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", name="c1", **kw)(x)
    x = pool(2, name="p1")(x)
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="c2", **kw)(x)
    x = keras.layers.ZeroPadding2D(1, name="pad")(x)
    x = keras.layers.Conv2D(2, 3, dilation_rate=2, padding="valid", name="c3", **kw)(x)
    x = keras.layers.Conv2D(2, 3, padding="same", name="c4", **kw)(x)
    return keras.Model(inputs, x)


DEAD = 4  # a channel whose bias keeps it at zero on every image


def unit_model() -> keras.Model:
    seed_weights(1)
    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c2")(x)
    model = keras.Model(inputs, x)
    conv = model.get_layer("c2")
    bias = conv.bias.numpy()
    bias[DEAD] = -1e6
    conv.bias.assign(bias)
    return model


def exciter_model():
    """c1 (8) -> c2 (8) -> pool -> c3 (8, linear: its centre neuron always has a gradient)."""
    seed_weights(1)
    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(8, 3, name="c3")(x)
    return keras.Model(inputs, x, name="tiny")


def tiny_classifier(seed: int = 0):
    """Input (any size) -> c1 (4) -> c2 (6) -> p1 max-pool -> c3 (8) -> global average -> head (5 classes)."""
    seed_weights(seed)
    x = inputs = keras.Input((None, None, 3), name="pixels")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="tiny")


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
        "exciters": {"steps": 4, "size": 32, "batch_size": 4, "precision": "float32", "grid": {"layer": "c2", "count": 4, "size": 16, "per_row": 2}},
        "units": [{"layer": "c3", "channel": 5, "note": "Channel five of c3 **likes** stripes."}],
        "circuits": {"top_k": 3, "earlier_layer": "c1"},
        "browse": {"layers": ["c2", "c3"], "thumbnail_size": 16, "thumbnail_steps": 3, "examples_top_n": 2, "top_k": 3},
        "attribution": {"precision": "float32", "samples": 4, "steps": 16},
        "notes": {"predictions": "Random weights, random photos."},
    }


def make_project(folder: Path, model_file: Path) -> Path:
    names = write_images(folder / "images")
    (folder / "site_config.yaml").write_text(yaml.safe_dump(tiny_config(model_file, names)))
    return folder


def edit_config(project: Path, **sections) -> None:
    path = project / "site_config.yaml"
    data = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values} if isinstance(values, dict) else values
    path.write_text(yaml.safe_dump(data))


def error_line(project: Path, monkeypatch, capsys) -> str:
    """The one ``error:`` line a build of ``project`` ends with (exit 2, no traceback)."""
    monkeypatch.chdir(project)
    assert cli.main(["build"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def config_rules() -> dict[str, dict]:
    """Every config key constrained beyond its type (``units.channel``, ...) with its part of the JSON Schema (a list's
    items' part for a list)."""
    from generator.config.schema import key_schemas

    found = {}
    for key, schema in key_schemas().items():
        rule = schema["anyOf"][1] if "anyOf" in schema else schema
        if {"minimum", "maximum", "exclusiveMinimum", "enum", "pattern"} & set(rule):
            found[key] = rule
    return found


def grey_classifier(seed: int = 0):
    """MNIST-style Sequential: 28x28x1 -> c1 (4) -> c2 (6) -> p1 max-pool -> c3 (8) -> global average -> head (5)."""
    seed_weights(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(4, 3, padding="same", activation="relu", name="c1"),
        L.Conv2D(6, 3, padding="same", activation="relu", name="c2"),
        L.MaxPooling2D(2, name="p1"),
        L.Conv2D(8, 3, padding="same", activation="relu", name="c3"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(5, activation="softmax", name="head"),
    ], name="grey")


def depthwise_classifier(seed: int = 0):
    """32x32x3 -> c1 conv (4) -> dw depthwise (x2: 8) -> c2 pointwise (6) -> sep separable (8) -> c3 conv (8) -> head."""
    seed_weights(seed)
    x = inputs = keras.Input((32, 32, 3), name="pixels")
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu", name="dw")(x)
    x = L.Conv2D(6, 1, activation="relu", name="c2")(x)
    x = L.SeparableConv2D(8, 3, padding="same", activation="relu", name="sep")(x)
    x = L.MaxPooling2D(2, name="p1")(x)
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="c3")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, L.Dense(5, activation="softmax", name="head")(x), name="depthwise")


def bn_cifar_classifier(seed: int = 0):
    """A CIFAR tutorial net: 32x32x3 -> (conv, BatchNorm, ReLU) x 2 -> pool -> conv c3 -> BN -> ReLU -> head."""
    seed_weights(seed)
    x = inputs = keras.Input((32, 32, 3), name="pixels")
    for name, width in (("c1", 4), ("c2", 6)):
        x = L.Conv2D(width, 3, padding="same", name=name)(x)
        x = L.BatchNormalization(name=f"{name}_bn")(x)
        x = L.ReLU(name=f"{name}_relu")(x)
    x = L.MaxPooling2D(2, name="p1")(x)
    x = L.Conv2D(8, 3, padding="same", name="c3")(x)
    x = L.ReLU(name="c3_relu")(L.BatchNormalization(name="c3_bn")(x))
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return seeded(keras.Model(inputs, L.Dense(5, activation="softmax", name="head")(x), name="cifar"))


# One keras.applications model a family (weights: none), each with a unit of a mid-level conv layer to feature.
ZOO = {
    "vgg16": "block3_conv2",
    "resnet50": "conv3_block1_2_conv",
    "resnet50_v2": "conv3_block1_2_conv",
    "inception_v3": "conv2d_21",  # InceptionV3 leaves its layers to Keras' default names
    "xception": "block4_sepconv1",  # SeparableConv2D
    "mobilenet_v2": "block_6_depthwise",  # DepthwiseConv2D
    "mobilenet_v3_small": "expanded_conv_3_project",
    "efficientnet_b0": "block3b_dwconv",
    "efficientnet_v2_b0": "block4c_project_conv",
    "densenet121": "conv3_block1_2_conv",
    "convnext_tiny": "convnext_tiny_stage_1_block_0_depthwise_conv",  # a grouped Conv2D
    "nasnet_mobile": "normal_conv_1_2",
}


def transfer_model() -> keras.Model:
    """The Keras transfer-learning tutorial's model (cats vs dogs) at 96 px: augmentation, Rescaling to -1..1, a frozen
    MobileNetV2 without its top called with training=False, pooling, Dropout, one logit."""
    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, weights=None)
    base.trainable = False
    x = inputs = keras.Input((96, 96, 3))
    x = keras.Sequential([L.RandomFlip("horizontal"), L.RandomRotation(0.2)], name="data_augmentation")(x)
    x = L.Rescaling(1 / 127.5, offset=-1)(x)
    x = L.Dropout(0.2)(L.GlobalAveragePooling2D()(base(x, training=False)))
    return keras.Model(inputs, L.Dense(1)(x))


def flowers_model() -> keras.Model:
    """The TensorFlow image-classification tutorial's model (flowers, 5 classes, logits) at 96 px instead of 180."""
    augment = keras.Sequential([L.RandomFlip("horizontal"), L.RandomRotation(0.1), L.RandomZoom(0.1)],
                               name="data_augmentation")
    return keras.Sequential([
        keras.Input((96, 96, 3)), augment, L.Rescaling(1 / 255),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv2d"), L.MaxPooling2D(),
        L.Conv2D(32, 3, padding="same", activation="relu", name="conv2d_1"), L.MaxPooling2D(),
        L.Conv2D(64, 3, padding="same", activation="relu", name="conv2d_2"), L.MaxPooling2D(),
        L.Dropout(0.2), L.Flatten(), L.Dense(128, activation="relu"), L.Dense(5),
    ], name="flowers")


# The tutorials' own models, saved as .keras files (random weights): builder, the unit's layer as the config names
# it, its page's folder, the labels file's lines.
TUTORIALS = {
    "transfer_mobilenet_v2": (transfer_model, "block_6_depthwise", "mobilenetv2_1.00_96--block_6_depthwise",
                              "cat\ndog\n"),
    "flowers": (flowers_model, "conv2d_1", "conv2d_1", ""),
}


def zoo_project(folder: Path, name: str) -> Path:
    """A project on keras.applications ``name`` with random weights at a small config: 3 photos of 96 px
    (NASNet: 224, the only size it takes), 2-step exciters, the featured unit's circuit and attribution."""
    size = 224 if name.startswith("nasnet") else 96
    names = write_images(folder / "images", size=size)
    layer, model = (ZOO[name], {"name": name, "weights": "none"}) if name in ZOO else _tutorial(folder, name)
    config = {
        "site": {"title": f"{name}, random weights"},
        "model": model,
        "images": {"dir": "images", "files": names, "size": size, "composite": names[0]},
        "feature_maps": {"layers": [layer], "per_row": 8},
        "exciters": {"steps": 2, "size": size, "batch_size": 4},
        "units": [{"layer": layer, "channel": 0}],
        "circuits": {"top_k": 3},
        "attribution": {"methods": ["gradcam"]},
    }
    (folder / "site_config.yaml").write_text(yaml.safe_dump(config))
    return folder


def _tutorial(folder: Path, name: str) -> tuple[str, dict]:
    """Save the tutorial model ``name`` in ``folder``: the featured layer and the model section."""
    build, layer, _, labels = TUTORIALS[name]
    keras.backend.clear_session()
    seed_weights(0)
    folder.mkdir(parents=True, exist_ok=True)
    build().save(folder / f"{name}.keras")
    model = {"name": f"{name}.keras", "preprocess": "none"}
    if labels:
        (folder / "labels.txt").write_text(labels)
        model["labels"] = "labels.txt"
    return layer, model


def build_zoo_model(name: str, folder: Path) -> tuple[bool, float, int, str]:
    """(ok, build seconds, pages, the last error line) for keras.applications ``name`` built in ``folder``."""
    project = zoo_project(folder, name)
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_MKDOCS_2_WARNING": "1"}
    start = time.perf_counter()
    build = subprocess.run([sys.executable, "-m", "generator", "build"], cwd=project, env=env,
                           capture_output=True, text=True)
    seconds = time.perf_counter() - start
    out = project / "docs/generated"
    pages = sum(1 for _ in out.rglob("*.md")) if out.is_dir() else 0
    if build.returncode != 0:
        return False, seconds, pages, (build.stderr.strip().splitlines() or ["?"])[-1]
    strict = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project, env=env,
                            capture_output=True, text=True)
    unit = out / "models" / name / (ZOO[name] if name in ZOO else TUTORIALS[name][2]) / "0" / "index.md"
    ok = strict.returncode == 0 and unit.is_file()
    return ok, seconds, pages, "" if ok else (strict.stderr.strip().splitlines() or ["no unit page"])[-1]
