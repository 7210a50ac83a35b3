"""The four attribution methods, one module each with its maths: each turns every (image, target)
pair into a map over the image's pixels, ``maps(scorer, pairs, settings) -> MethodMaps``."""

from generator.analysis.attribution.methods import gradcam, integrated_gradients, saliency, smoothgrad

MAPS = {
    "gradcam": gradcam.maps,
    "saliency": saliency.maps,
    "smoothgrad": smoothgrad.maps,
    "integrated_gradients": integrated_gradients.maps,
}
