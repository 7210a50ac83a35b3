"""A unit is one channel of one layer; its URL, cache key and file names all derive from that pair."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Unit:
    layer: str
    channel: int

    def url(self, model: str) -> str:
        """Site path of the unit page, Microscope style: ``models/<model>/<layer>/<channel>/``."""
        return f"models/{model}/{self.layer}/{self.channel}/"

    def __str__(self) -> str:
        return f"{self.layer}:{self.channel}"
