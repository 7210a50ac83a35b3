"""The check that a model gives the same numbers twice: every analysis assumes a forward pass in inference
mode is a function of the image, which a layer that draws noise at inference breaks."""

from __future__ import annotations

import numpy as np

from generator.analysis import graph
from generator.errors import GeneratorError

PROBE_SIZE = 32  # the side of the probe images where the model takes any size


def check_deterministic(model, preprocess) -> None:
    """Two inference passes of one seeded batch must give finite values that agree at every layer; else one line
    naming the first layer (in graph order) whose outputs are NaN or infinite, or differ. (A model's NaN weights
    are a line of their own, checked before this.)"""
    import keras

    calls = [call for call in graph.calls(model).values() if not isinstance(call.layer, keras.layers.InputLayer)]
    probe = keras.Model(model.input, [list(call.outputs) for call in calls])  # every call of a shared layer
    side = [d or PROBE_SIZE for d in model.input_shape[1:3]]
    images = np.random.default_rng(0).uniform(0, 255, (2, *side, 3)).astype(np.float32)  # photos: preprocess makes
    # the model's channels (a grayscale model's luminance)
    try:
        first, second = (probe(preprocess(images), training=False) for _ in range(2))
    except Exception:  # a model that cannot run on RGB probes is refused, with its own line, by the config checks
        return
    for layer, a, b in zip([call.layer for call in calls], first, second):
        pairs = [(keras.ops.convert_to_numpy(u), keras.ops.convert_to_numpy(v))
                 for u, v in zip(keras.tree.flatten(a), keras.tree.flatten(b))]
        if not all(np.isfinite(u).all() for u, _ in pairs):
            raise GeneratorError(
                f"config key 'model.name': layer {layer.name!r} ({type(layer).__name__}) gives NaN or infinite values on "
                f"images of random pixels, though the model's weights are finite; the analyses need finite activations: "
                f"check that layer's weights (a BatchNormalization's moving variance below 0?)"
            )
        if not all(np.array_equal(u, v) for u, v in pairs):
            raise GeneratorError(
                f"config key 'model.name': layer {layer.name!r} ({type(layer).__name__}) gives different outputs on two "
                f"inference passes of the same images (randomness at inference); the analyses need a deterministic "
                f"model: remove that layer or make it the identity when training=False"
            )
