"""What the model says about each image: top-5 classes, or its output map."""

from __future__ import annotations

import numpy as np

from generator.heads import class_logits
from generator.results import ClassScore, Prediction


def predict(loaded, pixels: np.ndarray) -> list[Prediction]:
    """For uint8 images (N, H, W, 3): each one's top-5 classes, or the model's output map (H', W').

    Where the head gives logits the probabilities are their softmax or sigmoid, and each class keeps its logit.
    """
    output = loaded.predict(pixels.astype("float32"))
    if loaded.output_kind != "classes":
        return [Prediction(output_map=np.asarray(o[..., 0], dtype=np.float32)) for o in output]
    head = loaded.head
    probabilities = head.probabilities(output) if head else output
    logits = class_logits(head, output) if head else None
    return [
        Prediction(
            top5=tuple(ClassScore(r + 1, i, n, p, None if logits is None else float(logits[k, i]))
                       for r, (i, n, p) in enumerate(top)),
            note=head.note if head else "",
        )
        for k, top in enumerate(loaded.class_names(probabilities))
    ]
