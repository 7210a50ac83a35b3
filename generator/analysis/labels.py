"""A short label for each unit: what its top images are, or which class it raises most.

Where the examples folder holds one sub-folder per class (the ImageFolder convention: ``cats/``,
``dogs/``), a unit's label is the class most of its top examples come from, with its *purity*, the
share of the top examples in that class: "cats (7 of 10)". Equal counts go to the class of the
better-ranked example. Without such folders, a classifier's unit is labelled by the class it raises
most (:mod:`generator.analysis.class_effects`); otherwise it has no label. The author's label in the
config wins over both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from generator.results import ClassEffects, UnitLabel


def folder_classes(names: Sequence[str]) -> tuple[str, ...] | None:
    """Each example's class, its first folder inside the examples folder; None unless every example lies in
    a sub-folder and there are at least two of them."""
    parts = [name.split("/", 1) for name in names]
    if not parts or any(len(p) < 2 for p in parts):
        return None
    classes = tuple(p[0] for p in parts)
    return classes if len(set(classes)) >= 2 else None


def consensus(top_images: Sequence[int], classes: Sequence[str]) -> UnitLabel | None:
    """The class most of ``top_images`` (indices into ``classes``, best first) belong to."""
    if not len(top_images):
        return None
    ranked = [classes[i] for i in top_images]
    counts = Counter(ranked)
    best = max(counts.values())
    name = next(c for c in ranked if counts[c] == best)  # ties: the class of the better-ranked example
    return UnitLabel(f"{name} ({best} of {len(ranked)})", "examples", name, best / len(ranked))


def unit_label(channel: int, top_images: Sequence[int], classes: Sequence[str] | None,
               effects: ClassEffects | None, override: str | None = None) -> UnitLabel | None:
    """The unit's label: the author's, else its top examples' class, else the class it raises most."""
    if override:
        return UnitLabel(override, "config")
    if classes is not None:
        return consensus(top_images, classes)
    if effects is not None and effects.supported:
        raised = effects.raised(channel, 1)
        if raised:
            return UnitLabel(f"raises {raised[0].name}", "class effect", raised[0].name)
    return None
