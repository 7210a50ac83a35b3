"""The files beside the pages: figures (rendered through the cache) and the data behind them.

Every number a page shows is also written here as JSON or CSV, next to its figure.
Returns the figure paths by role, relative to the site root, for the page templates.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from generator import figures
from generator.cache import Cache
from generator.geometry import ReceptiveField, box_map, crop_box
from generator.images import read_square


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value))


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_assets(out: Path, cache: Cache, model: str, config, images, predictions, activations, units,
                 examples, example_paths, grid_units, grid) -> dict:
    pictures = {
        "images": {im.slug: _image_assets(out, cache, config, im, predictions[im.slug], activations[im.slug])
                   for im in tqdm(images, desc="image figures", disable=None)},
        "units": {},
        "grid": "",
    }
    pixels = np.stack([im.pixels for im in images])
    labels = [im.slug for im in images]
    example_pixels = _ExamplePixels(example_paths, config.images.size)
    exciters = {v: r.exciter for v, r in units.items()}
    for u, result in tqdm(units.items(), desc="unit figures", disable=None):
        pictures["units"][u] = _unit_assets(out / u.url(model), cache, u, result, images, pixels, labels,
                                            examples[u.layer], example_pixels)
        if result.circuit and result.circuit["previous"]:
            pictures["units"][u]["diagram"] = write_circuit_diagram(out / u.url(model), cache, u, result.circuit, exciters)
    if grid_units:
        g = config.exciters.grid
        d = out / "models" / model / g.layer
        stacked = np.stack([grid[u]["image"] for u in grid_units])
        pictures["grid"] = cache.figure(d / "exciter-grid.png", figures.exciter_grid, stacked, [u.channel for u in grid_units],
                                        title=f"Exciters of {g.layer}, channels 0-{len(grid_units) - 1}", per_row=g.per_row)
        write_csv(d / "exciter-grid.csv", [{"channel": u.channel, "activation": float(grid[u]["activation"]),
                                            "start_activation": float(grid[u]["start_activation"])} for u in grid_units])
    _write_layer_stats(out, model, units)
    return _relative(pictures, out)


def _image_assets(out: Path, cache: Cache, config, im, prediction: dict, activations: dict) -> dict:
    d = out / im.url
    entry = {"input": cache.figure(d / "input.png", figures.save_rgb, im.pixels), "feature_maps": {}}
    if "top5" in prediction:
        top5 = prediction["top5"]
        entry["predictions"] = cache.figure(d / "predictions.png", figures.top_predictions_bar,
                                            [p["name"] for p in top5], [p["probability"] for p in top5],
                                            title=f"Top-5 predictions: {im.file}")
        write_json(d / "predictions.json", top5)
    else:
        m = prediction["map"]
        entry["output"] = cache.figure(d / "output.png", figures.output_map, im.pixels, m, title=f"Model output: {im.file}")
        write_json(d / "output.json", {"shape": list(m.shape), "mean": float(m.mean()), "max": float(m.max()),
                                       "fraction_above_0.5": float((m > 0.5).mean())})
    for layer in config.feature_maps.layers:
        entry["feature_maps"][layer] = cache.figure(
            d / f"feature-maps-{layer}.png", figures.feature_map_grid, activations[layer],
            title=f"{layer} feature maps on {im.file} (each map normalised on its own)", per_row=config.feature_maps.per_row,
        )
    return entry


class _ExamplePixels:
    """Pixels of example images, read once each and only when a figure needs them."""

    def __init__(self, paths: list[Path], size: int):
        self.paths, self.size, self.loaded = paths, size, {}

    def __getitem__(self, index: int) -> np.ndarray:
        if index not in self.loaded:
            self.loaded[index] = read_square(self.paths[index], self.size, "dataset examples")
        return self.loaded[index]


def _unit_assets(d: Path, cache: Cache, u, result, images, pixels, labels, table, example_pixels) -> dict:
    e = {
        "exciter": cache.figure(d / "exciter.png", figures.save_rgb, result.exciter["image"]),
        "strip": cache.figure(d / "maps.jpg", figures.activation_strip, pixels, np.stack(list(result.maps.values())), labels),
        "maps": {},
    }
    if result.featured:
        e["exciter_map"] = cache.figure(d / "exciter-map.png", figures.activation_overlay, result.exciter["image"],
                                        result.exciter_map, title=f"{u} on its own exciter")
        for im in images:
            e["maps"][im.slug] = cache.figure(d / f"map-{im.slug}.png", figures.activation_overlay, im.pixels,
                                              result.maps[im.slug], title=f"{u} on {im.file}")
    if result.examples:
        crops, maps = _example_crops(table, u.channel, result.examples, example_pixels)
        e["examples"] = cache.figure(d / "examples.png", figures.example_crops, crops, maps,
                                     [x["score"] for x in result.examples], title=f"Images that excite {u} most")
    data = {
        "layer": u.layer, "channel": u.channel,
        "exciter": {"size": int(result.exciter["image"].shape[0]), "activation": float(result.exciter["activation"]),
                    "start_activation": float(result.exciter["start_activation"])},
        "stats": result.stats,
        "maps": result.map_stats,
        "incoming": [{"layer": v.layer, "channel": v.channel, "norm": n} for v, n in result.incoming],
        "outgoing": [{"layer": v.layer, "channel": v.channel, "norm": n} for v, n in result.outgoing],
        "examples": result.examples,
    }
    c = result.circuit
    if c and c["previous"]:
        top = c["top"]
        names = [f"{c['previous']}:{w['channel']}" for w in top]
        e["kernels"] = cache.figure(d / "incoming-kernels.png", figures.kernel_heatmaps,
                                    np.asarray(c["top_kernels"], dtype=np.float32), names,
                                    title=f"Incoming {c['kernel_shape'][0]}x{c['kernel_shape'][1]} kernels of {u}, top {len(top)} by norm")
        e["norms"] = cache.figure(d / "incoming-norms.png", figures.norm_bar, names, [w["norm"] for w in top],
                                  title=f"Strongest inputs of {u} from {c['previous']}")
        write_csv(d / "circuit.csv", c["inputs"])
        data["circuit"] = {"previous": c["previous"], "top": top}
        x = c.get("expanded")
        if x and x.get("top"):
            names = [f"{x['layer']}:{w['channel']}" for w in x["top"]]
            h, w_ = x["kernel_shape"][:2]
            e["expanded_kernels"] = cache.figure(
                d / "circuit" / "expanded-kernels.png", figures.kernel_heatmaps, np.asarray(x["top_kernels"], dtype=np.float32),
                names, title=f"Expanded weights of {x['layer']} on {u} ({h}x{w_} window), top {len(names)} by norm")
            e["expanded_norms"] = cache.figure(d / "circuit" / "expanded-norms.png", figures.norm_bar, names,
                                               [w["norm"] for w in x["top"]], title=f"Strongest inputs of {u} from {x['layer']}",
                                               xlabel="Frobenius norm of expanded weights")
            write_csv(d / "circuit" / "expanded.csv", x["inputs"])
            data["circuit"]["expanded"] = {"layer": x["layer"], "top": x["top"]}
    write_json(d / "unit.json", data)
    return e


def write_circuit_diagram(d: Path, cache: Cache, u, circuit: dict, exciters: dict) -> str:
    """The circuit over two or three layers: edges coloured by the sign of the summed weights, sized by norm."""
    from generator.units import Unit

    direct = circuit["top"]
    columns = [(circuit["previous"], [w["channel"] for w in direct]), (u.layer, [u.channel])]
    edges = [((circuit["previous"], w["channel"]), (u.layer, u.channel), w["norm"], w["net"]) for w in direct]
    x = circuit.get("expanded") or {}
    if x.get("top") and x["layer"] != circuit["previous"]:
        columns.insert(0, (x["layer"], [w["channel"] for w in x["top"]]))
        edges += [((x["layer"], w["channel"]), (u.layer, u.channel), w["norm"], w["net"]) for w in x["top"]]
        edges += [((x["layer"], k["from"]), (circuit["previous"], k["to"]), k["norm"], k["net"]) for k in x["edges"]]
    thumbnails = {(layer, c): exciters[Unit(layer, c)]["image"] for layer, cs in columns for c in cs if Unit(layer, c) in exciters}
    return cache.figure(d / "circuit" / "diagram.png", figures.circuit_diagram, columns, edges,
                        title=f"Circuit into {u}", thumbnails=thumbnails)


def _example_crops(table: dict, channel: int, examples: list[dict], example_pixels) -> tuple[np.ndarray, np.ndarray]:
    """Square crops around each example's peak, sized to the receptive field, with the map over the
    same square; the whole image where the receptive field is unknown (a model that is not a chain)."""
    rf = ReceptiveField(int(table["rf"][0]), int(table["rf"][1]), float(table["rf"][2])) if table["rf"].size else None
    crops, maps = [], []
    for rank, x in enumerate(examples):
        image = example_pixels[x["image"]]
        activation = table["maps"][channel, rank]
        if rf is None:
            crops.append(image)
            maps.append(figures.upsample(activation, image.shape[:2]))
            continue
        top, left, side = box = crop_box(rf, x["y"], x["x"], image.shape[0])
        crops.append(image[top:top + side, left:left + side])
        maps.append(box_map(rf, activation, box))
    return np.stack(crops), np.stack(maps)


def _write_layer_stats(out: Path, model: str, units: dict) -> None:
    for layer in sorted({u.layer for u in units}):
        rows = [{"channel": u.channel, **r.stats} for u, r in sorted(units.items()) if u.layer == layer]
        write_csv(out / "models" / model / layer / "units.csv", rows)


def _relative(value, out: Path):
    if isinstance(value, Path):
        return value.relative_to(out).as_posix()
    if isinstance(value, dict):
        return {k: _relative(v, out) for k, v in value.items()}
    return value
