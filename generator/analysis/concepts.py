"""CRAFT concepts of a class (Fel et al. 2023), with a deletion check that CRAFT lacks.

1. Seeded random square crops of the class's images, each resized to the model's input size; their
   activations at the layer, averaged over positions: ``A`` (crops x channels), >= 0.
2. scikit-learn's NMF ``A ~ U W`` into ``k`` concepts (NNDSVDa start, seeded, 200 iterations, as
   Xplique): row ``i`` of ``W`` is concept ``i``'s direction over the channels. Rows are scaled to unit
   norm (and ``U`` the other way), so that coefficients compare across concepts. Xplique adds an L1
   penalty on the coefficients (``alpha_W=0.01``); its effect depends on the activations' scale (on
   small activations it merges concepts and shrinks the reconstruction), so here it is 0 unless
   ``sparsity`` asks for it (the agreement test sets Xplique's).
3. Each image's activations at every position written in the concepts (NMF's transform with ``W``
   fixed): ``u`` (h, w, k), the concept maps.
4. Importance: Sobol total indices of the concept coefficients for the class score, as CRAFT
   estimates them (Xplique's ``CraftTf.estimate_importance``): a Halton design of ``N (k + 2)``
   masks in [0, 1]^k (matrices A, B and the k mixes C_i), each scaling one image's coefficients
   (the same factor at every position), the score re-computed by the head from ``(m * u) W``, and
   Jansen's estimator; the mean over the images, then shown as shares that sum to 1. The Holistic
   paper finds total indices the most faithful of its estimators for ranking concepts, which is the
   use here.
5. Deletion check: the mean drop of the score when one concept's coefficients are zeroed, against
   the importances: Spearman over the concepts of the importance and the drop's size (a Sobol index
   is unsigned: a concept whose removal raises the score, as one that suppresses an edge map's
   output, counts as much as one whose removal lowers it; the drop keeps its sign); the floor is the mean drop when a concept-sized
   random direction is removed instead (a concept's coefficients times its vector with the channels
   shuffled, subtracted, clipped at 0).
6. A 2-D map of the images by their mean coefficients (seeded PCA) and each image's dominant concept.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from generator.analysis.correlation import spearman
from generator.machine import in_threads
from generator.results import ClassConcepts, Concept, ConceptCrop, Unit

Head = Callable[[int, np.ndarray], np.ndarray]  # (image index, (B, h, w, C) activations) -> (B,) scores
CHANNELS_SHOWN = 5
CHUNK = 64  # masked copies of an image's activations built at once


@dataclass(frozen=True)
class ConceptSettings:
    concepts: int = 10
    crops: int = 8  # per image
    crop_size: float = 0.3  # share of the image's side
    design: int = 32  # Sobol design size N
    top_crops: int = 10
    random_directions: int = 20
    seed: int = 0
    sparsity: float = 0.0  # NMF's alpha_W (Xplique: 0.01)


@dataclass(frozen=True)
class Factorisation:
    """The NMF of the crops' activations: ``u`` (crops, k) coefficients, ``w`` (k, C) unit-norm rows."""

    u: np.ndarray
    w: np.ndarray
    nmf: object  # the fitted scikit-learn NMF (its transform writes activations in the concepts)
    scale: np.ndarray  # (k,) the norms the rows were divided by

    def transform(self, activations: np.ndarray) -> np.ndarray:
        """(..., C) activations -> (..., k) coefficients in the unit-norm concepts."""
        flat = np.maximum(activations.reshape(-1, activations.shape[-1]), 0).astype(self.nmf.components_.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a transform's convergence warning changes nothing shown
            u = self.nmf.transform(flat) * self.scale
        return u.reshape(*activations.shape[:-1], -1)


def crop_boxes(images: int, side: int, settings: ConceptSettings) -> np.ndarray:
    """(images * crops, 5) int: image, top, left, height, width of each seeded random square crop."""
    rng = np.random.default_rng(settings.seed)
    size = max(1, round(settings.crop_size * side))
    boxes = []
    for image in range(images):
        tops, lefts = rng.integers(0, side - size + 1, (2, settings.crops))
        boxes += [(image, int(t), int(l), size, size) for t, l in zip(tops, lefts)]
    return np.array(boxes, np.int64).reshape(-1, 5)


def cut_crops(pixels: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """(crops, size, size, 3) uint8: each box of ``pixels`` (N, S, S, 3) resized to ``size``."""
    from PIL import Image

    out = np.empty((len(boxes), size, size, pixels.shape[-1]), np.uint8)
    for i, (image, top, left, h, w) in enumerate(boxes):
        crop = pixels[image, top:top + h, left:left + w]
        crop = Image.fromarray(crop[..., 0] if crop.shape[-1] == 1 else crop)  # (h, w, 1): Pillow's "L"
        out[i] = np.asarray(crop.resize((size, size), Image.BICUBIC)).reshape(size, size, -1)
    return out


def factorise(activations: np.ndarray, count: int, seed: int, sparsity: float = 0.0) -> Factorisation:
    """NMF of (crops, C) activations into ``count`` concepts (at most crops or channels); ``sparsity``: alpha_W."""
    from sklearn.decomposition import NMF

    a = np.maximum(np.asarray(activations, np.float32), 0)
    count = max(1, min(count, *a.shape))
    nmf = NMF(n_components=count, alpha_W=sparsity, init="nndsvda", random_state=seed)
    with warnings.catch_warnings(), threadpool_limits(1):  # one BLAS thread, as the activation groups' NMF
        warnings.simplefilter("ignore")  # sklearn's convergence warning: 200 iterations, as Xplique
        u = nmf.fit_transform(a)
    scale = np.linalg.norm(nmf.components_, axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    return Factorisation(u * scale, (nmf.components_ / scale[:, None]).astype(np.float32), nmf, scale)


def halton_masks(dimension: int, design: int) -> np.ndarray:
    """(design * (dimension + 2), dimension) float32: Halton points A, then B, then each C_i (A with column i
    from B), as Xplique's HaltonSequenceRS builds them."""
    from scipy.stats import qmc

    ab = qmc.Halton(dimension * 2, scramble=False).random(design).astype(np.float32)
    a, b = ab[:, :dimension], ab[:, dimension:]
    mixes = []
    for i in range(dimension):
        c = a.copy()
        c[:, i] = b[:, i]
        mixes.append(c)
    return np.concatenate([a, b, *mixes])


def jansen_total(outputs: np.ndarray, design: int, dimension: int) -> np.ndarray:
    """(dimension,) Sobol total indices from the outputs on :func:`halton_masks` (Jansen's estimator)."""
    y = np.asarray(outputs, np.float64)
    a, c = y[:design], y[2 * design:].reshape(dimension, design)
    variance = max(float(np.var(a, ddof=1)), 1e-12)
    return np.sum((a[None] - c) ** 2, axis=1) / (2 * design * variance)


def sobol_importance(coefficients: np.ndarray, w: np.ndarray, head: Head, design: int) -> np.ndarray:
    """(k,) total indices averaged over the images; ``coefficients`` (images, h, w, k)."""
    k = coefficients.shape[-1]
    masks = halton_masks(k, design)
    found = each_image(lambda image, u: jansen_total(masked_scores(head, image, masks, u, w), design, k), coefficients)
    return np.mean(found, axis=0)


def each_image(fn: Callable[[int, np.ndarray], object], coefficients: np.ndarray) -> list:
    """``fn(image, u)`` for each image's (h, w, k) coefficients, in image order, several images at a time (up to
    one a core, four at most): one image's masked copies and head calls leave cores idle, and each image's
    scores are its own, so they come out the same. An error or Ctrl-C cancels the images not yet started."""
    return in_threads(fn, range(len(coefficients)), coefficients)


def masked_scores(head: Head, image: int, factors: np.ndarray, u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(M,) the score of each (k,) row of ``factors`` scaling image ``image``'s (h, w, k) coefficients ``u``:
    the activations ``(factor * u) W`` built a chunk at a time."""
    u = u.astype(np.float32)
    return np.concatenate([head(image, (factors[i:i + CHUNK, None, None, :] * u[None]) @ w)
                           for i in range(0, len(factors), CHUNK)])


def deletion_drops(coefficients: np.ndarray, w: np.ndarray, head: Head) -> tuple[np.ndarray, float]:
    """(k,) mean drop of the score when each concept's coefficients are zeroed, and the mean score with none
    zeroed (on the reconstructed activations)."""
    k = coefficients.shape[-1]
    keep = np.vstack([np.ones(k), 1 - np.eye(k)]).astype(np.float32)  # row 0: every concept
    scores = each_image(lambda image, u: masked_scores(head, image, keep, u, w), coefficients)
    return np.mean([s[0] - s[1:] for s in scores], axis=0), float(np.mean([s[0] for s in scores]))


def random_floor(coefficients: np.ndarray, w: np.ndarray, head: Head, count: int, seed: int) -> float:
    """Mean drop of the score when a concept's coefficients times its vector with the channels shuffled are
    taken from the reconstructed activations (clipped at 0), over ``count`` seeded draws and the images."""
    rng = np.random.default_rng(seed)
    draws = [(int(rng.integers(len(w))), rng.permutation(w.shape[1])) for _ in range(count)]

    def drops(image: int, u: np.ndarray) -> np.ndarray:
        full = u @ w
        removed = [np.maximum(full - u[..., c:c + 1] * w[c, order], 0) for c, order in draws]
        scores = head(image, np.stack([full, *removed]))
        return scores[0] - scores[1:]

    return float(np.mean(each_image(drops, coefficients)))


def image_map(coefficients: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, 2) seeded PCA of the images' mean coefficients and (images,) each one's dominant concept."""
    from sklearn.decomposition import PCA

    means = coefficients.mean(axis=(1, 2))
    dominant = np.argmax(means, axis=1)
    points = np.zeros((len(means), 2))
    if len(means) >= 2 and np.ptp(means, axis=0).any():
        parts = min(2, len(means), means.shape[1])
        points[:, :parts] = PCA(parts, random_state=seed).fit_transform(means)
    return points.astype(np.float32), dominant.astype(np.int64)


def top_crops(u: np.ndarray, boxes: np.ndarray, count: int) -> list[list[tuple[int, tuple, float]]]:
    """For each concept, its ``count`` crops of largest coefficient (> 0): (image, (top, left, h, w), value)."""
    found = []
    for column in u.T:
        order = [i for i in np.argsort(-column, kind="stable")[:count] if column[i] > 0]
        found.append([(int(boxes[i, 0]), tuple(int(v) for v in boxes[i, 1:]), float(column[i])) for i in order])
    return found


def rank_agreement(importance: np.ndarray, drops: np.ndarray) -> float:
    """Spearman correlation of importances and the size of the deletion drops; NaN where either does not vary."""
    drops = np.abs(drops)
    if len(importance) < 2 or np.ptp(importance) == 0 or np.ptp(drops) == 0:
        return float("nan")
    return float(spearman(importance, drops))


@dataclass(frozen=True)
class ClassImages:
    """The images of one class, as the build read them."""

    name: str  # "output" for a model without classes
    class_id: int | None
    source: str  # "folder", "predicted" or "all"
    files: tuple[Path, ...]
    pixels: np.ndarray  # (N, S, S, 3) uint8


def class_concepts(loaded, layer: str, images: ClassImages, settings: ConceptSettings) -> ClassConcepts:
    """The class's concepts at ``layer`` (the steps in the module's docstring), or why there are none."""
    from generator.analysis.after_layer import LayerHead

    head = LayerHead.of(loaded, layer, images.class_id)
    found = ClassConcepts(images.name, images.class_id, layer, images.source, images.files,
                          score=_score_words(images), head=head.words)
    if not len(images.pixels):
        return dataclasses.replace(found, reason="no image of this class was found")
    boxes = crop_boxes(len(images.pixels), images.pixels.shape[1], settings)
    crops = head.encode(cut_crops(images.pixels, boxes, head.input_size or images.pixels.shape[1]), held=False)[0]
    if not np.any(crops > 0):
        return dataclasses.replace(found, reason=f"{layer} is zero on every crop of this class's images")
    f = factorise(crops.mean(axis=(1, 2)), settings.concepts, settings.seed, settings.sparsity)
    activations, held = head.encode(images.pixels)
    coefficients = f.transform(activations)

    def score(image: int, a: np.ndarray) -> np.ndarray:
        return head.scores(a, [t[image:image + 1] for t in held])

    sobol = sobol_importance(coefficients, f.w, score, settings.design)
    drops, mean_score = deletion_drops(coefficients, f.w, score)
    floor = random_floor(coefficients, f.w, score, settings.random_directions, settings.seed)
    embedding, dominant = image_map(coefficients, settings.seed)
    order = np.argsort(-sobol, kind="stable")
    share = sobol / sobol.sum() if sobol.sum() > 0 else np.zeros_like(sobol)
    tops = top_crops(f.u, boxes, settings.top_crops)
    concepts = tuple(
        Concept(index=i, vector=f.w[c], importance=float(share[c]), deletion_drop=float(drops[c]),
                channels=_strongest(layer, f.w[c]), crops=tuple(ConceptCrop(*t) for t in tops[c]),
                maps=coefficients[..., c].astype(np.float32), sobol=float(sobol[c]))
        for i, c in enumerate(order))
    k = len(order)
    return dataclasses.replace(
        found, concepts=concepts, mean_score=mean_score, random_floor=floor,
        importance_method=f"Sobol total index (Jansen's estimator), Halton design of {settings.design} x ({k} + 2) "
                          f"masks, mean over {len(images.pixels)} images",
        deletion_correlation=rank_agreement(sobol, drops), embedding=embedding,
        dominant=np.argsort(order)[dominant].astype(np.int64))


def _strongest(layer: str, vector: np.ndarray) -> tuple[Unit, ...]:
    order = np.argsort(-vector, kind="stable")[:CHANNELS_SHOWN]
    return tuple(Unit(layer, int(c)) for c in order if vector[c] > 0)


def _score_words(images: ClassImages) -> str:
    if images.class_id is None:
        return "the mean of the model's output map"
    return f"the model's output for class {images.name!r} (index {images.class_id})"
