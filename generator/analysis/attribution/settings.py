"""The attribution methods' parameters, and the values each may take.

``precision="bfloat16"`` runs the network in Keras' mixed_bfloat16 (about twice as fast on CPUs with
AVX512-BF16; the input, the gradients' accumulation and the scores stay float32).
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("gradcam", "saliency", "smoothgrad", "integrated_gradients", "gradcam_plus_plus", "occlusion")
BASELINES = ("black", "blurred")
PRECISIONS = ("float32", "bfloat16")
MAX_STEPS = 1024  # for steps and samples


@dataclass(frozen=True)
class AttributionSettings:
    layer: str | None = None  # Grad-CAM's layer for class and output targets; None: the trunk's last Conv2D
    samples: int = 16  # SmoothGrad's noisy copies
    noise: float = 0.15  # SmoothGrad's noise std, a fraction of the image's value range
    steps: int = 32  # Integrated Gradients' points on the path
    baseline: str = "black"  # Integrated Gradients' start, Occlusion's patches: black or blurred
    seed: int = 0
    batch_size: int = 8  # items (image x target x sample) per compiled call
    precision: str = "float32"  # or "bfloat16": the network in mixed bfloat16, about 2x faster where the CPU has it
