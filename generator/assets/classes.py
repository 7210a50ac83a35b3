"""The files of the class pages: each class's concept shares, MACO pictures, crops, concept maps, 2-D map of its
images and deletion check, with ``concepts.json`` beside them; and each class's concept maps on the pages of the
site's images that it holds.

Called by :class:`generator.assets.AssetWriter` (whose figure queue it uses); every name comes from
:class:`generator.site_paths.SitePaths`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from generator import class_figures, figures
from generator.assets import files
from generator.concept_links import ConceptLinks, class_title
from generator.images import read_square
from generator.results import ClassConcepts

MAPS_SHOWN = 24  # the class's images drawn with their concept maps on its page


def class_files(writer, links: ConceptLinks) -> None:
    """Queue every class's figures and write its numbers; then the concept maps of the site's images."""
    for i, c in enumerate(writer.site.classes):
        if not c.supported:
            files.write_json(writer.file(writer.paths.class_file(c, "concepts.json")), class_record(c, i, links))
            continue
        pixels = np.stack([read_square(p, writer.config.images.size, f"class {c.name!r}") for p in c.images])
        _concept_files(writer, c, pixels)
        _class_charts(writer, c, pixels)
        files.write_json(writer.file(writer.paths.class_file(c, "concepts.json")), class_record(c, i, links))
    slugs = {r.image.slug: r for r in writer.site.images}
    for slug, found in links.of_image.items():
        for c, j in found:
            writer.figure(writer.paths.image_concepts(slug, c), figures.activation_groups, slugs[slug].image.pixels,
                          np.stack([k.maps[j] for k in c.concepts]), title=f"Concepts of {class_title(c)} on {slug}",
                          name="concept")


def _concept_files(writer, c: ClassConcepts, pixels: np.ndarray) -> None:
    """Each concept's MACO picture and its top crops."""
    p = writer.paths
    for k in c.concepts:
        if k.exciter is not None:
            writer.figure(p.concept_picture(c, k.index), figures.save_rgb, k.exciter.image)
        if k.crops:
            crops = [pixels[x.image, x.box[0]:x.box[0] + x.box[2], x.box[1]:x.box[1] + x.box[3]] for x in k.crops]
            writer.figure(p.concept_crops(c, k.index), class_figures.concept_crops, crops, [x.value for x in k.crops],
                          title=f"Concept {k.index + 1} of {class_title(c)}: where it is strongest",
                          quality=writer.config.browse.image_quality)


def _class_charts(writer, c: ClassConcepts, pixels: np.ndarray) -> None:
    """The shares, the concept maps on the first images, the 2-D map and the deletion check."""
    p, concepts = writer.paths, c.concepts
    indices = [k.index for k in concepts]
    writer.figure(p.class_file(c, "importance.png"), class_figures.concept_shares, indices,
                  [k.importance for k in concepts], title=f"{class_title(c)}: each concept's share of the score")
    shown = min(MAPS_SHOWN, len(c.images))
    writer.figure(p.class_file(c, "maps.jpg"), class_figures.class_maps, pixels[:shown],
                  np.stack([k.maps[:shown] for k in c.concepts]), [x.name for x in c.images[:shown]],
                  title=f"Where each concept of {class_title(c)} lies", quality=writer.config.browse.image_quality)
    if c.embedding is not None:
        writer.figure(p.class_file(c, "embedding.png"), class_figures.class_embedding, c.embedding, c.dominant,
                      title=f"The {len(c.images)} images of {class_title(c)} by their concepts")
    writer.figure(p.class_file(c, "deletion.png"), class_figures.deletion_check, indices,
                  [k.importance for k in concepts], [k.deletion_drop for k in concepts], c.random_floor,
                  title="Deletion check: Spearman " + (f"{c.deletion_correlation:.3f}" if np.isfinite(c.deletion_correlation)
                                                       else "undefined"))


def class_record(c: ClassConcepts, i: int, links: ConceptLinks) -> dict:
    """The numbers of the class page: ``concepts.json``."""
    return {
        "class": c.name, "class_id": c.class_id, "layer": c.layer, "source": c.source, "reason": c.reason,
        "images": [p.name for p in c.images], "score": c.score, "mean_score": c.mean_score,
        "importance_method": c.importance_method,
        "deletion_correlation": c.deletion_correlation, "random_floor": c.random_floor,
        "embedding": c.embedding, "dominant": c.dominant,
        "concepts": [{"concept": k.index, "importance": k.importance, "deletion_drop": k.deletion_drop,
                      "channels": [str(u) for u in k.channels], "vector": k.vector,
                      "crops": [dataclasses.asdict(x) for x in k.crops],
                      "similar": [{"class": s.cls.name, "concept": s.concept.index, "cosine": s.cosine}
                                  for s in links.similar.get((i, k.index), ())]}
                     for k in c.concepts],
    }
