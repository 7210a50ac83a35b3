"""Attribution: where in a photo the evidence for a prediction, a unit or an output comes from.

Four methods, each a map (N, H, W) float32 over the photos' pixels, gradients taken with respect to
the 0..255 RGB input (the model's own ``preprocess`` is applied inside); each method's maths is in
its module under ``methods/``:

``gradcam`` (Selvaraju et al. 2017, :mod:`.methods.gradcam`)
    ReLU(sum_k w_k A_k) at a conv layer, w_k the spatial mean of d score / d A_k, upsampled.
``saliency`` (Simonyan et al. 2014, :mod:`.methods.saliency`)
    max over colour channels of |d score / d x|.
``smoothgrad`` (Smilkov et al. 2017, :mod:`.methods.smoothgrad`)
    the saliency map averaged over noisy copies of the photo.
``integrated_gradients`` (Sundararajan et al. 2017, :mod:`.methods.integrated_gradients`)
    (x - x0) times the mean gradient on the straight path from a baseline x0 to x: signed, and the
    map sums to about f(x) - f(x0).

The package, one idea a module:

- :mod:`.targets`: what is explained (a class, a unit, a model's output map); :mod:`.settings`: the
  methods' parameters; :mod:`.checks`: the arguments' checks, one ``attribution: ...`` line each.
- :mod:`.scorer`: the network a target needs and how each item's score is read from its output;
  :mod:`.batches`: every item through one compiled step in equal batches.
- :mod:`.maps`: :func:`attribute`, a method's maps of many targets (targets sharing a network run
  together); :mod:`.blur`: the Gaussian blur behind the blurred baseline.
- :mod:`.sanity`: Adebayo et al.'s model randomisation test (Spearman's rank correlation from
  :mod:`generator.analysis.correlation`).
- :mod:`.site_results`: the maps and their faithfulness as the site's typed results, with their
  settings in words.

- :mod:`.faithfulness`: Deletion, Insertion and µ-Fidelity of each map against a random ranking,
  numpy only, through any batched score; :func:`site_faithfulness` runs it on a target's network.
"""

from generator.analysis.attribution.blur import baselines, gaussian_blur
from generator.analysis.attribution.faithfulness import FaithfulnessSettings
from generator.analysis.attribution.maps import (
    AttributionMaps,
    attribute,
    grad_cam,
    integrated_gradients,
    saliency,
    smooth_grad,
)
from generator.analysis.correlation import spearman
from generator.analysis.attribution.sanity import SanityCheck, randomised_copy, sanity_check
from generator.analysis.attribution.settings import BASELINES, MAX_STEPS, METHODS, PRECISIONS, AttributionSettings
from generator.analysis.attribution.site_results import settings_text, site_attributions, site_faithfulness
from generator.analysis.attribution.targets import ClassTarget, OutputTarget, Target, UnitTarget

__all__ = [
    "BASELINES", "MAX_STEPS", "METHODS", "PRECISIONS", "AttributionMaps", "AttributionSettings", "ClassTarget",
    "FaithfulnessSettings", "OutputTarget", "SanityCheck", "Target", "UnitTarget", "attribute", "baselines",
    "gaussian_blur", "grad_cam", "integrated_gradients", "randomised_copy", "saliency",
    "sanity_check", "settings_text", "site_attributions", "site_faithfulness", "smooth_grad", "spearman",
]
