"""How the class pages link to the rest of the site, read off the classes' concepts (numbers only, no model):
the concepts of other classes most like each concept, the concepts a unit takes part in, and which of the
site's images a class holds; and what the pages call a class.

Read off a site by :func:`site_links`, for the figures and for the pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generator.config import Config, image_files
from generator.results import ClassConcepts, Concept, Site, Unit

SIMILAR = 3  # the concepts of other classes shown beside each concept


def class_title(c: ClassConcepts) -> str:
    """A class as the pages name it; a model's output as the attribution section names its target."""
    return "output mean" if c.class_id is None else c.name


@dataclass(frozen=True)
class Similar:
    """A concept of another class, and the cosine similarity of its vector with the concept's."""

    cls: ClassConcepts
    concept: Concept
    cosine: float


@dataclass(frozen=True)
class ConceptLinks:
    # (class index in site.classes, concept index) -> the most similar concepts of the other classes at its layer
    similar: dict[tuple[int, int], tuple[Similar, ...]] = field(default_factory=dict)
    # a unit -> (class, concept) for every concept that counts it among its strongest channels
    of_unit: dict[Unit, tuple[tuple[ClassConcepts, Concept], ...]] = field(default_factory=dict)
    # an image's slug -> (class, the image's place among the class's images) for every class holding it
    of_image: dict[str, tuple[tuple[ClassConcepts, int], ...]] = field(default_factory=dict)


def concept_links(classes: tuple[ClassConcepts, ...], image_files: dict[Path, str]) -> ConceptLinks:
    """``image_files``: the site's image files (resolved) -> their slugs."""
    of_unit: dict[Unit, list] = {}
    of_image: dict[str, list] = {}
    for c in classes:
        for k in c.concepts:
            for u in k.channels:
                of_unit.setdefault(u, []).append((c, k))
        for j, path in enumerate(c.images):
            slug = image_files.get(Path(path).resolve())
            if slug is not None:
                of_image.setdefault(slug, []).append((c, j))
    return ConceptLinks(similar_concepts(classes), {u: tuple(v) for u, v in of_unit.items()},
                        {s: tuple(v) for s, v in of_image.items()})


def similar_concepts(classes: tuple[ClassConcepts, ...],
                     count: int = SIMILAR) -> dict[tuple[int, int], tuple[Similar, ...]]:
    """For each concept, the ``count`` concepts of other classes at the same layer whose vectors have the largest
    cosine similarity with its own, largest first (ties: in class then concept order). A class at a time, so a
    thousand classes of ten concepts never hold a 10,000 x 10,000 matrix."""
    found = {}
    for layer in dict.fromkeys(c.layer for c in classes):
        members = [(i, k) for i, c in enumerate(classes) if c.layer == layer for k in c.concepts]
        if not members:
            continue
        owner = np.array([i for i, _ in members])
        vectors = np.stack([np.asarray(k.vector, np.float64) for _, k in members])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        for i in dict.fromkeys(owner.tolist()):
            mine = np.nonzero(owner == i)[0]
            cosine = np.where(owner == i, -np.inf, vectors[mine] @ vectors.T)
            for a, row in zip(mine, cosine):
                best = [b for b in np.argsort(-row, kind="stable")[:count] if np.isfinite(row[b])]
                found[(i, members[a][1].index)] = tuple(
                    Similar(classes[owner[b]], members[b][1], float(row[b])) for b in best)
    return found


def site_links(site: Site, config: Config) -> ConceptLinks:
    """The links of ``site``'s classes (none without classes); its images are known by their files (``images.dir``)."""
    if not site.classes:
        return ConceptLinks()
    files = {p.resolve(): r.image.slug for p, r in zip(image_files(config), site.images)}
    return concept_links(site.classes, files)
