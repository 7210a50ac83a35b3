"""What the model says about each image: top-5 classes, or its output map."""

from __future__ import annotations

import numpy as np

from generator.heads import class_logits
from generator.results import ClassScore, Prediction


def predict(loaded, pixels: np.ndarray) -> Prediction:
    """For one uint8 image (H, W, 3): its top-5 classes, or the model's output map (H', W').

    Where the head gives logits the probabilities are their softmax or sigmoid, and each class keeps its logit.
    """
    output = loaded.predict(pixels[None].astype("float32"))
    if loaded.output_kind != "classes":
        return Prediction(output_map=np.asarray(output[0, ..., 0], dtype=np.float32))
    head = loaded.head
    probabilities = head.probabilities(output) if head else output
    logits = class_logits(head, output) if head else None
    top = loaded.class_names(probabilities)[0]
    return Prediction(
        top5=tuple(ClassScore(r + 1, i, n, p, None if logits is None else float(logits[0, i]))
                   for r, (i, n, p) in enumerate(top)),
        note=head.note if head else "",
    )
