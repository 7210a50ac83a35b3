"""The analyses of each photo: its prediction, its activations, its DeepDream and Caricature views and
its activation groups (a mixin of :class:`generator.analyses.Analyses`)."""

from __future__ import annotations

import warnings

import numpy as np
from tqdm import tqdm

from generator.analysis.precision import resolve_precision
from generator.results import ActivationGroups, ImageViews, InputImage, Prediction
from generator.timing import stage

IMAGES = 8  # images through the network at once for predictions and activations


def _chunks(items: list) -> list[list]:
    return [items[i:i + IMAGES] for i in range(0, len(items), IMAGES)]


class ImageAnalyses:
    def predictions(self, images: list[InputImage]) -> dict[str, Prediction]:
        """Each image's prediction, the missing ones through the network ``IMAGES`` at a time."""
        keys = {im.slug: self._key("prediction", im.digest, self.config.images.size) for im in images}

        def compute(missing: list[str]) -> dict[str, Prediction]:
            from generator.analysis.predictions import predict

            found = {}
            with tqdm(total=len(missing), desc="predictions", unit="image", disable=None) as bar:
                for chunk in _chunks(missing):
                    found.update(zip(chunk, predict(self.model, self._pixels(images, chunk))))
                    bar.update(len(chunk))
            return found

        return self.cache.values(keys, Prediction, compute)

    def activations(self, images: list[InputImage], layers: list[str]) -> dict[str, dict[str, np.ndarray]]:
        """Each image's activations (h, w, C) at each layer, by slug then layer: the images missing any through
        one compiled pass ``IMAGES`` at a time."""
        size = self.config.images.size
        keys = {(im.slug, name): self._key("activations", im.digest, size, name) for im in images for name in layers}

        def compute(missing: list[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
            from generator.analysis.activations import layer_activations

            names, slugs = (list(dict.fromkeys(part[i] for part in missing)) for i in (1, 0))
            found = {}
            with tqdm(total=len(slugs), desc="activations", unit="image", disable=None) as bar:
                for chunk in _chunks(slugs):
                    batch = layer_activations(self.model, self._pixels(images, chunk), names, compiled=True)
                    found.update(((slug, name), batch[name][i]) for i, slug in enumerate(chunk) for name in names)
                    bar.update(len(chunk))
            return {key: found[key] for key in missing}

        values = self.cache.values(keys, np.ndarray, compute)
        return {im.slug: {name: values[im.slug, name] for name in layers} for im in images}

    @staticmethod
    def _pixels(images: list[InputImage], slugs: list[str]) -> np.ndarray:
        by_slug = {im.slug: im for im in images}
        return np.stack([by_slug[slug].pixels for slug in slugs])

    def layer_views(self, images: list[InputImage], layer: str) -> dict[str, ImageViews]:
        """DeepDream and Caricature of each image at ``layer``; the missing images in one batch."""
        v, seed = self.config.views, self.config.exciters.seed
        precision = resolve_precision(self.config.exciters.precision)
        keys = {im.slug: self._key("views", im.digest, self.config.images.size, layer, v, seed, precision)
                for im in images}
        by_slug = {im.slug: im for im in images}

        def compute(slugs: list[str]) -> dict[str, ImageViews]:
            from generator.analysis.views import Batches, batch_count, caricature, deepdream

            pixels, batch = np.stack([by_slug[slug].pixels for slug in slugs]), self.config.exciters.batch_size
            steps = batch_count(len(slugs), batch) * (v.deepdream_steps + v.caricature_steps)
            with stage(f"views {layer} ({len(slugs)} images)"), \
                    tqdm(total=steps, desc=f"views {layer} (DeepDream, Caricature)", unit="step", disable=None) as bar:
                batches = Batches(batch, precision, bar.update)
                dream = deepdream(self.model.features, layer, pixels, self.model.preprocess, v.deepdream_steps,
                                  v.deepdream_step_size, batches)
                cari = caricature(self.model.features, layer, pixels, self.model.preprocess, v.caricature_steps, seed,
                                  batches)
            return {slug: ImageViews(d, c) for slug, d, c in zip(slugs, dream.exciters(), cari.exciters())}

        return self.cache.values(keys, ImageViews, compute)

    def activation_groups(self, images: list[InputImage], layer: str,
                          activations: dict[str, np.ndarray]) -> dict[str, ActivationGroups]:
        """Each image's activations (h, w, C) at ``layer`` (by slug) split into ``groups.count`` groups, by slug: the
        missing images factorised side by side, each on one BLAS thread (the bytes of one at a time)."""
        count, seed = self.config.groups.count, self.config.exciters.seed
        keys = {im.slug: self._key("groups", im.digest, self.config.images.size, layer, count, seed) for im in images}

        def compute(missing: list[str]) -> dict[str, ActivationGroups]:
            from threadpoolctl import threadpool_limits

            from sklearn.exceptions import ConvergenceWarning

            from generator.analysis.groups import activation_groups
            from generator.machine import in_threads

            # Held over the threads: each factorisation's own BLAS limit and warning filter restore these (Python's
            # warning filters are one list for all threads).
            with threadpool_limits(1), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                found = in_threads(lambda slug: activation_groups(activations[slug], count, seed), missing)
            return dict(zip(missing, found))

        return self.cache.values(keys, ActivationGroups, compute)
