"""What the model says about each image: top-5 classes, or its output map."""

from __future__ import annotations

import numpy as np

from generator.results import ClassScore, Prediction


def predict(loaded, pixels: np.ndarray) -> Prediction:
    """For one uint8 image (H, W, 3): its top-5 classes, or the model's output map (H', W')."""
    output = loaded.predict(pixels[None].astype("float32"))
    if loaded.output_kind == "classes":
        top = loaded.class_names(output)[0]
        return Prediction(top5=tuple(ClassScore(r + 1, i, n, p) for r, (i, n, p) in enumerate(top)))
    return Prediction(output_map=np.asarray(output[0, ..., 0], dtype=np.float32))
