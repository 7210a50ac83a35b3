"""How well an exciter stands for its unit, whatever recipe made it: two numbers beside each exciter.

``ratio``
    The unit's objective (its channel's mean over positions) on the exciter over the same on the unit's
    best dataset example (the example where that value is highest): 1 or more when the picture drives the
    unit at least as hard as any photo. Undefined (NaN) where the best example's value is not positive.
``plausibility``
    MACO's measure: the cosine similarity, at the unit's layer, between the exciter's activations (every
    channel's mean over positions) and the mean of the same over the unit's top examples: 1 when the
    picture looks to the layer like the photos that excite the unit. NaN where either vector is zero.
"""

from __future__ import annotations

import numpy as np

from generator.analysis.activations import layer_activations
from generator.results import RecipeQuality


def layer_vectors(loaded, layer: str, images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) images in 0..255 -> (N, C): each channel's mean over positions at ``layer`` of the model
    ``loaded`` holds (its ``features`` and ``preprocess``)."""
    return layer_activations(loaded, np.asarray(images), [layer])[layer].astype(np.float64).mean(axis=(1, 2))


def quality(exciter: np.ndarray, examples: np.ndarray, channel: int) -> RecipeQuality:
    """From the exciter's vector (C,) and its top examples' (K, C) at the unit's layer."""
    best = float(np.max(examples[:, channel]))
    ratio = float(exciter[channel]) / best if best > 0 else float("nan")
    mean = examples.mean(axis=0)
    norms = float(np.linalg.norm(exciter) * np.linalg.norm(mean))
    plausibility = float(np.dot(exciter, mean)) / norms if norms > 0 else float("nan")
    return RecipeQuality(ratio, plausibility)


def exciter_quality(loaded, layer: str, exciters: np.ndarray, channels: list[int],
                    examples: list[np.ndarray]) -> list[RecipeQuality]:
    """Each exciter (N, S, S, 3) of ``channels`` of ``layer`` against its unit's top examples (a (K, S, S, 3)
    array per unit, at the exciter's size so positions count alike; an array shared by several exciters, as
    one unit's recipes share their unit's examples, goes through the network once)."""
    vectors = layer_vectors(loaded, layer, exciters)
    seen: dict[int, np.ndarray] = {}
    for found in examples:
        if id(found) not in seen:
            seen[id(found)] = layer_vectors(loaded, layer, found)
    return [quality(v, seen[id(found)], c) for v, c, found in zip(vectors, channels, examples)]
