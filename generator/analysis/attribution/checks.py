"""The attribution arguments' checks: each bad value is one ``attribution: ...`` line naming what is
allowed, raised before any network runs."""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from generator.analysis import graph
from generator.analysis.attribution.scorer import Parts
from generator.analysis.attribution.settings import BASELINES, MAX_STEPS, METHODS, PRECISIONS, AttributionSettings
from generator.errors import GeneratorError


def checked(model, methods: Sequence[str], settings: AttributionSettings, images) -> tuple[Parts, np.ndarray]:
    """The model's parts and the images, once every argument is known to be usable."""
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise GeneratorError(f"attribution: unknown method {bad[0]!r}; allowed: {', '.join(METHODS)}")
    check_settings(settings)
    parts = Parts.of(model)
    if settings.layer is not None:
        conv_layer(parts.features, settings.layer)
    return parts, check_images(images)


def check_settings(settings: AttributionSettings) -> None:
    for name in ("steps", "samples", "batch_size"):
        value = getattr(settings, name)
        if not 1 <= value <= MAX_STEPS:
            raise GeneratorError(f"attribution: {name} must be 1 to {MAX_STEPS}, got {value}")
    if not 0 < settings.noise <= 1:
        raise GeneratorError(f"attribution: noise must be above 0 and at most 1 (a fraction of the value range), got {settings.noise}")
    if settings.precision not in PRECISIONS:
        raise GeneratorError(f"attribution: unknown precision {settings.precision!r}; allowed: {', '.join(PRECISIONS)}")
    if settings.baseline not in BASELINES:
        raise GeneratorError(f"attribution: unknown baseline {settings.baseline!r}; allowed: {', '.join(BASELINES)}")


def check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or not len(images):
        raise GeneratorError(f"attribution: images must be uint8 (N, H, W, 3) with N >= 1, got {images.dtype} {images.shape}")
    return images


def conv_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    layer = graph.model_layer(model, name, "attribution")
    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
        raise GeneratorError(f"attribution: Grad-CAM needs a conv layer; {name!r} is a {type(layer).__name__}")
    return layer
