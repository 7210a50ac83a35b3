"""The unit search page's index: one JSON line a unit (then one a class with concept pages), what a reader may
type to find it.

Written by the build beside the search page (:meth:`generator.site_paths.SitePaths.search_index`) and fetched
only when that page opens (``templates/assets/unit-search.js``), so the site's pages stay the same size
however many units it has.
"""

from __future__ import annotations

import json
from pathlib import Path

from generator.concept_links import class_title
from generator.results import ClassConcepts, Site, UnitResult
from generator.site_paths import SitePaths


def unit_entry(result: UnitResult, paths: SitePaths) -> dict:
    """What a reader may search a unit by: ``layer:channel``, its label, the classes it raises and lowers most, the
    names of its top images; and its page's URL relative to the index."""
    e, channel = result.class_effects, result.unit.channel
    supported = e is not None and e.supported
    return {"unit": str(result.unit), "url": paths.from_search(result.unit),
            "label": result.label.text if result.label else "",
            "raises": [c.name for c in e.raised(channel, e.SHOWN)] if supported else [],
            "lowers": [c.name for c in e.lowered(channel, e.SHOWN)] if supported else [],
            "images": [x.file for x in result.examples]}


def class_entry(c: ClassConcepts, paths: SitePaths) -> dict:
    """A class in the unit entries' shape (the search page lists both alike): ``class <title>`` where a unit has
    ``layer:channel``, its concepts' strongest channels as its label, the names of its images."""
    channels = dict.fromkeys(str(u) for k in c.concepts for u in k.channels)
    return {"unit": f"class {class_title(c)}", "url": paths.from_search_class(c),
            "label": f"{len(c.concepts)} concepts at {c.layer}" + (": " + " ".join(channels) if channels else ""),
            "raises": [], "lowers": [], "images": [p.name for p in c.images]}


def write_search_index(path: Path, site: Site, paths: SitePaths) -> None:
    """Every unit with a page, then every class, one JSON object a line, inside one JSON array."""
    lines = [json.dumps(unit_entry(site.units[u], paths), ensure_ascii=False)
             for u in sorted(site.units)]
    lines += [json.dumps(class_entry(c, paths), ensure_ascii=False) for c in site.classes]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
