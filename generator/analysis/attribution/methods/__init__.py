"""The attribution methods, one module each with its maths: each turns every (image, target)
pair into a map over the image's pixels, ``maps(scorer, pairs, settings) -> MethodMaps``."""

from generator.analysis.attribution.methods import (
    gradcam, gradcam_plus_plus, integrated_gradients, occlusion, saliency, smoothgrad,
)

MAPS = {
    "gradcam": gradcam.maps,
    "saliency": saliency.maps,
    "smoothgrad": smoothgrad.maps,
    "integrated_gradients": integrated_gradients.maps,
    "gradcam_plus_plus": gradcam_plus_plus.maps,
    "occlusion": occlusion.maps,
}
