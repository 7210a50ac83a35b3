"""The unit search page's index: one JSON line a unit, what a reader may type to find it.

Written by the build beside the search page (:meth:`generator.site_paths.SitePaths.search_index`) and fetched
only when that page opens (``templates/assets/unit-search.js``), so the site's pages stay the same size
however many units it has.
"""

from __future__ import annotations

import json
from pathlib import Path

from generator.results import Site, UnitResult
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


def write_search_index(path: Path, site: Site, paths: SitePaths) -> None:
    """Every unit with a page, one JSON object a line, inside one JSON array."""
    lines = [json.dumps(unit_entry(site.units[u], paths), ensure_ascii=False)
             for u in sorted(site.units)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
