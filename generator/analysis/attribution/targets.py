"""What an attribution explains: one score per image.

The image's top-k class of a classifier (:class:`ClassTarget`; the model's output as it is,
probabilities for keras.applications), a unit's mean activation over positions
(:class:`UnitTarget`: mean_{i,j} A_{i,j,c} at the unit's layer), or the mean of a model's output map
(:class:`OutputTarget`: mean over every output position and channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class ClassTarget:
    """A classifier's output for a class: the image's ``rank``-th most probable one, or ``index``."""

    rank: int = 1
    index: int | None = None  # a fixed class for every image instead of a rank

    @property
    def label(self) -> str:
        return f"class {self.index}" if self.index is not None else f"top-{self.rank} class"


@dataclass(frozen=True)
class UnitTarget:
    """A unit's mean activation over positions."""

    layer: str
    channel: int

    @property
    def label(self) -> str:
        return f"{self.layer}:{self.channel}"


@dataclass(frozen=True)
class OutputTarget:
    """The mean of the model's output map (models whose output is a map, like vgg16-hed's edges)."""

    @property
    def label(self) -> str:
        return "output mean"


Target = Union[ClassTarget, UnitTarget, OutputTarget]
