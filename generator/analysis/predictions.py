"""What the model says about each image: top-5 classes, or its output map."""

from __future__ import annotations

import numpy as np


def predict(loaded, pixels: np.ndarray) -> dict:
    """For one uint8 image (H, W, 3): ``{"top5": [...]}`` or ``{"map": (H', W') array}``."""
    output = loaded.predict(pixels[None].astype("float32"))
    if loaded.output_kind == "classes":
        top = loaded.class_names(output)[0]
        return {"top5": [{"rank": r + 1, "id": i, "name": n, "probability": p} for r, (i, n, p) in enumerate(top)]}
    return {"map": np.asarray(output[0, ..., 0], dtype=np.float32)}
