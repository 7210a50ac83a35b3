"""Layer activations of images, by layer name (never by index into ``model.layers``)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from generator.analysis import backend, graph


@lru_cache(maxsize=8)
def _extractor(features, layers: tuple[str, ...]):
    return graph.cut(features, [graph.layer_output(features, name, "activations") for name in layers])


@lru_cache(maxsize=4)
def _compiled(features, preprocess, layers: tuple[str, ...]):
    """Compiled ``uint8 (N, H, W, 3) -> [(N, h, w, C) a layer]``: a graph runs the convolutions with their biases
    and ReLUs fused, about 1.7 times as fast as the layers one by one, with the same numbers."""
    import keras

    extractor = _extractor(features, layers)

    def extract(pixels):
        outputs = extractor(preprocess(keras.ops.cast(pixels, "float32")), training=False)
        return outputs if len(layers) > 1 else [outputs]

    return backend.compile_step(extract)


def compiled_activations(loaded, pixels: np.ndarray, layers: list[str]) -> list:
    """The backend's tensors (N, h, w, C) of each named layer for a uint8 batch (N, H, W, 3), through the compiled
    step, for a caller that reads them at once (:func:`generator.analysis.backend.read_numpy`: without a copy)."""
    return _compiled(loaded.features, loaded.preprocess, tuple(layers))(pixels)


def layer_activations(loaded, pixels: np.ndarray, layers: list[str], compiled: bool = False) -> dict[str, np.ndarray]:
    """Activations (N, h, w, C) of each named layer for a uint8 batch (N, H, W, 3). ``compiled``: through a compiled
    step, traced once for each shape (for batches of one shape; single calls of varying shapes run eagerly)."""
    import keras

    if compiled:
        outputs = compiled_activations(loaded, pixels, layers)
    else:
        outputs = _extractor(loaded.features, tuple(layers))(loaded.preprocess(pixels.astype("float32")), training=False)
        outputs = outputs if len(layers) > 1 else [outputs]
    read = backend.read_numpy if compiled else keras.ops.convert_to_numpy  # a compiled step's outputs are its own
    return {name: read(out) for name, out in zip(layers, outputs)}
