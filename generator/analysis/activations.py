"""Layer activations of images, by layer name (never by index into ``model.layers``)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from generator.analysis import graph


@lru_cache(maxsize=8)
def _extractor(features, layers: tuple[str, ...]):
    return graph.cut(features, [graph.layer_output(features, name, "activations") for name in layers])


def layer_activations(loaded, pixels: np.ndarray, layers: list[str]) -> dict[str, np.ndarray]:
    """Activations (N, h, w, C) of each named layer for a uint8 batch (N, H, W, 3)."""
    import keras

    extractor = _extractor(loaded.features, tuple(layers))
    outputs = extractor(loaded.preprocess(pixels.astype("float32")), training=False)
    if len(layers) == 1:
        outputs = [outputs]
    return {name: keras.ops.convert_to_numpy(out) for name, out in zip(layers, outputs)}
