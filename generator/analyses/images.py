"""The analyses of each photo: its prediction, its activations, its DeepDream and Caricature views and
its activation groups (a mixin of :class:`generator.analyses.Analyses`)."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from generator.analysis.precision import resolve_precision
from generator.results import ActivationGroups, ImageViews, InputImage, Prediction
from generator.timing import stage


class ImageAnalyses:
    def prediction(self, image: InputImage) -> Prediction:
        def compute() -> Prediction:
            from generator.analysis.predictions import predict

            return predict(self.model, image.pixels)

        return self.cache.value(self._key("prediction", image.digest, self.config.images.size), Prediction, compute)

    def activations(self, image: InputImage, layers: list[str]) -> dict[str, np.ndarray]:
        """Activations (h, w, C) of ``image`` at each layer, one forward pass for all missing ones."""
        keys = {name: self._key("activations", image.digest, self.config.images.size, name) for name in layers}

        def compute(missing: list[str]) -> dict[str, np.ndarray]:
            from generator.analysis.activations import layer_activations

            return {name: a[0] for name, a in layer_activations(self.model, image.pixels[None], missing).items()}

        return self.cache.values(keys, np.ndarray, compute)

    def layer_views(self, images: list[InputImage], layer: str) -> dict[str, ImageViews]:
        """DeepDream and Caricature of each image at ``layer``; the missing images in one batch."""
        v, seed = self.config.views, self.config.exciters.seed
        precision = resolve_precision(self.config.exciters.precision)
        keys = {im.slug: self._key("views", im.digest, self.config.images.size, layer, v, seed, precision)
                for im in images}
        by_slug = {im.slug: im for im in images}

        def compute(slugs: list[str]) -> dict[str, ImageViews]:
            from generator.analysis.views import batch_count, caricature, deepdream

            pixels, batch = np.stack([by_slug[slug].pixels for slug in slugs]), self.config.exciters.batch_size
            steps = batch_count(len(slugs), batch) * (v.deepdream_steps + v.caricature_steps)
            with stage(f"views {layer} ({len(slugs)} images)"), \
                    tqdm(total=steps, desc=f"views {layer} (DeepDream, Caricature)", unit="step", disable=None) as bar:
                dream = deepdream(self.model.features, layer, pixels, self.model.preprocess, v.deepdream_steps,
                                  v.deepdream_step_size, batch, precision, bar.update)
                cari = caricature(self.model.features, layer, pixels, self.model.preprocess, v.caricature_steps, seed,
                                  batch, precision, bar.update)
            return {slug: ImageViews(d, c) for slug, d, c in zip(slugs, dream.exciters(), cari.exciters())}

        return self.cache.values(keys, ImageViews, compute)

    def activation_groups(self, image: InputImage, layer: str, activations: np.ndarray) -> ActivationGroups:
        """The image's activations (h, w, C) at ``layer`` split into ``groups.count`` groups."""
        count, seed = self.config.groups.count, self.config.exciters.seed

        def compute() -> ActivationGroups:
            from generator.analysis.groups import activation_groups

            return activation_groups(activations, count, seed)

        key = self._key("groups", image.digest, self.config.images.size, layer, count, seed)
        return self.cache.value(key, ActivationGroups, compute)
