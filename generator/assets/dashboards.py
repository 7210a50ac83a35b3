"""The files of the unit dashboards: each unit's histogram and band examples, its numbers for ``unit.json``,
and its columns of the layer's ``units.csv``.

Called by :class:`generator.assets.AssetWriter` (whose figure queue and example pixels it uses); every name
comes from :class:`generator.site_paths.SitePaths`.
"""

from __future__ import annotations

import dataclasses

from generator import dashboard_figures
from generator.geometry import peak_crop
from generator.results import ClassEffects, UnitDistribution, UnitResult


def unit_files(writer, result: UnitResult) -> dict:
    """Queue the unit's dashboard figures; returns its dashboard numbers (``unit.json``'s)."""
    e, label = result.class_effects, result.label
    data = {"class_effects": class_effects_record(e, result.unit.channel)} if e else {}
    if label:
        data["label"] = dataclasses.asdict(label)
    return {**data, **_distribution_files(writer, result)}


def class_effects_record(e: ClassEffects, channel: int) -> dict:
    if not e.supported:
        return {"supported": False, "reason": e.reason}
    return {"supported": True, "images": e.images,
            "raised": [dataclasses.asdict(c) for c in e.raised(channel, e.SHOWN)],
            "lowered": [dataclasses.asdict(c) for c in e.lowered(channel, e.SHOWN)]}


def _distribution_files(writer, result: UnitResult) -> dict:
    """Queue the unit's histogram and band examples; returns their numbers."""
    d, u, p = result.distribution, result.unit, writer.paths
    if d is None:
        return {}
    writer.figure(p.unit_file(u, "distribution.png"), dashboard_figures.activation_histogram, d.edges,
                  d.max_counts, d.mean_counts, title=f"{u} over {d.count} images")
    examples = [(row, x) for row, band in enumerate(d.bands) for x in band.examples]
    if examples:
        crops = [peak_crop(writer.example_pixels[x.image], result.receptive_field, x.y, x.x)[0] for _, x in examples]
        writer.picture(p.unit_picture(u, "bands"), dashboard_figures.band_crops, crops,
                       [f"{x.score:.3g}" for _, x in examples], [row for row, _ in examples],
                       max(len(b.examples) for b in d.bands), title=f"{u} at every level: " + ", ".join(b.name for b in d.bands))
    return {"distribution": distribution_record(d, writer.site.example_names)}


def distribution_record(d: UnitDistribution, names) -> dict:
    """The numbers behind a unit's histogram and bands."""
    return {
        "images": d.count, "density": d.density, "mean_max": d.mean_max, "mean_mean": d.mean_mean, "max": d.max,
        "dead": d.dead, "always_on": d.always_on, "quantiles": {str(q): v for q, v in d.quantiles},
        "edges": d.edges, "max_counts": d.max_counts, "mean_counts": d.mean_counts,
        "bands": [{"band": b.name, "low": b.low, "high": b.high, "top_from": b.top_from, "top_to": b.top_to,
                   "examples": [{"file": names[x.image], "image": x.image, "score": x.score, "y": x.y, "x": x.x}
                                for x in b.examples]} for b in d.bands],
    }


def layer_columns(result: UnitResult) -> dict:
    """The unit's dashboard columns in its layer's ``units.csv`` (none without a distribution)."""
    d, label = result.distribution, result.label
    columns = {"label": label.text if label else ""}
    if d is None:
        return columns
    return {**columns, "density": d.density, "examples_mean_max": d.mean_max, "examples_max": d.max,
            "examples_mean": d.mean_mean, "examples_dead": d.dead, "always_on": d.always_on}
