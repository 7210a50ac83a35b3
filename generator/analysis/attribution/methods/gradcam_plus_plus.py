"""Grad-CAM++ (Chattopadhay et al. 2018), as tf-keras-vis' ``GradcamPlusPlus`` without its exp(f(x)) factor:

    alpha_{i,j,k} = g^2 / (2 g^2 + g^3 sum_{a,b} A_{a,b,k})  (0 where g = 0),  normalised to sum 1 over i, j
    w_k = sum_{i,j} alpha_{i,j,k} ReLU(g_{i,j,k}),    cam = ReLU(sum_k w_k A_k)

with g = d f / d A at the Grad-CAM layer (:meth:`Scorer.gradcam_layer`), upsampled as Grad-CAM's. The paper
and tf-keras-vis take the score as exp(f): every derivative then carries a factor exp(f(x)), which cancels
in alpha and scales the whole map. That factor is left out here: one number per image, it would overflow
float32 for a unit whose mean activation passes 88 (tf-keras-vis' map is this one times exp(f(x))).
"""

from __future__ import annotations

from keras import ops

from generator.analysis.attribution.methods.gradcam import cam_maps
from generator.analysis.attribution.methods.pairs import MethodMaps, Pairs
from generator.analysis.attribution.scorer import Scorer
from generator.analysis.attribution.settings import AttributionSettings


def maps(scorer: Scorer, pairs: Pairs, settings: AttributionSettings) -> MethodMaps:
    return cam_maps(scorer, pairs, settings, _plus_plus_weights)


def _plus_plus_weights(a, g):
    second, third = g * g, g * g * g
    denominator = 2 * second + third * ops.sum(a, axis=(1, 2), keepdims=True)
    alphas = second / (denominator + ops.cast(second == 0, "float32"))
    total = ops.sum(alphas, axis=(1, 2), keepdims=True)
    alphas = alphas / (total + ops.cast(total == 0, "float32"))
    return ops.sum(alphas * ops.relu(g), axis=(1, 2), keepdims=True)
