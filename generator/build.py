"""``python -m generator build``: config -> cached analyses -> figures and data -> Markdown pages.

Everything is written into a staging folder beside ``docs/generated`` and swapped in at
the end, so a failed or interrupted build leaves the previous site as it was. Each stage
logs its time; long stages show a progress bar.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

from generator import figures, pages
from generator.analysis.architecture import check_channel, find_layer, summarise
from generator.cache import Cache, digest
from generator.config import Config, ExciterParams, image_files
from generator.errors import GeneratorError
from generator.images import InputImage, load_images
from generator.models import describe_model, load_model
from generator.units import Unit

log = logging.getLogger("generator")

GENERATED = Path("docs") / "generated"
CACHE = Path(".cache") / "generator"
HAND_WRITTEN = Path("docs") / "pages"  # the author's own pages, copied into the site as they are


@contextmanager
def stage(name: str):
    start = time.perf_counter()
    yield
    log.info("%-16s %6.1f s", name, time.perf_counter() - start)


@dataclass
class UnitResult:
    """Everything computed for one unit: its exciter, its maps and (for featured units) its circuit."""

    unit: Unit
    exciter: dict[str, np.ndarray]
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # image slug -> (h, w) map
    exciter_map: np.ndarray | None = None
    circuit: dict | None = None
    note: str = ""


class SiteBuild:
    def __init__(self, config: Config, cache: Cache):
        self.config = config
        self.cache = cache
        self.spec = describe_model(config.model, config.root)

    # -- the model, loaded only when a result is missing from the cache --------------------
    @cached_property
    def model(self):
        with stage("load model"):
            return load_model(self.config.model, self.config.root)

    @cached_property
    def layers(self) -> list[dict]:
        return self.cache.record(digest("architecture", self.spec.fingerprint), lambda: summarise(self.model.features))

    @property
    def fixed_input(self) -> int | None:
        return self.layers[0]["output_shape"][1]

    # -- checks of the config against the model ------------------------------------------
    def check(self) -> None:
        cfg = self.config
        for i, name in enumerate(cfg.feature_maps.layers):
            find_layer(self.layers, name, f"feature_maps.layers[{i}]")
        for i, unit in enumerate(cfg.units):
            record = find_layer(self.layers, unit.layer, f"units[{i}].layer", conv=True)
            check_channel(record, unit.channel, f"units[{i}].channel")
        if cfg.exciters.grid.layer:
            find_layer(self.layers, cfg.exciters.grid.layer, "exciters.grid.layer", conv=True)

    def exciter_params(self, size: int | None = None) -> ExciterParams:
        return self.config.exciters.params(self.fixed_input or size)

    # -- analyses --------------------------------------------------------------------------
    def activations(self, image: InputImage, layers: list[str]) -> dict[str, np.ndarray]:
        """Activations (h, w, C) of ``image`` at each layer, one forward pass for all missing ones."""
        keys = {name: digest("activations", self.spec.fingerprint, image.digest, self.config.images.size, name) for name in layers}
        missing = [name for name, key in keys.items() if not self.cache.has(key)]
        computed = {}
        if missing:
            from generator.analysis.activations import layer_activations

            computed = layer_activations(self.model, image.pixels[None], missing)
        return {
            name: self.cache.arrays(key, lambda name=name: {"a": computed[name][0]})["a"] for name, key in keys.items()
        }

    def prediction(self, image: InputImage) -> dict:
        key = digest("prediction", self.spec.fingerprint, image.digest, self.config.images.size)

        def compute() -> dict:
            from generator.analysis.predictions import predict

            result = predict(self.model, image.pixels)
            return {"top5": json.dumps(result["top5"])} if "top5" in result else result

        stored = self.cache.arrays(key, compute)
        if "top5" in stored:
            return {"top5": json.loads(str(stored["top5"]))}
        return {"map": stored["map"]}

    def exciters(self, units: list[Unit], params: ExciterParams, what: str) -> dict[Unit, dict[str, np.ndarray]]:
        """Exciters of ``units``; the missing ones are rendered together, a batch per layer."""
        keys = {u: digest("exciter", self.spec.fingerprint, u.layer, u.channel, params) for u in units}
        missing = [u for u in units if not self.cache.has(keys[u])]
        if missing:
            from generator.analysis.exciters import render_exciters

            with tqdm(total=len(missing), desc=what, unit="unit", disable=None) as bar:
                for layer in sorted({u.layer for u in missing}):
                    todo = [u for u in missing if u.layer == layer]
                    result = render_exciters(
                        self.model.features, layer, [u.channel for u in todo], params, self.model.preprocess, bar.update
                    )
                    for i, u in enumerate(todo):
                        self.cache.arrays(
                            keys[u],
                            lambda i=i: {
                                "image": result.images[i],
                                "activation": np.float32(result.activation[i]),
                                "start_activation": np.float32(result.start_activation[i]),
                            },
                        )
        return {u: self.cache.arrays(keys[u], _never) for u in units}

    def exciter_map(self, unit: Unit, exciter: dict[str, np.ndarray]) -> np.ndarray:
        key = digest("exciter-map", self.spec.fingerprint, unit.layer, unit.channel, exciter["image"])

        def compute() -> dict:
            from generator.analysis.activations import layer_activations

            acts = layer_activations(self.model, exciter["image"][None], [unit.layer])[unit.layer]
            return {"map": acts[0, ..., unit.channel]}

        return self.cache.arrays(key, compute)["map"]

    def circuit(self, unit: Unit) -> dict | None:
        """The unit's top-k inputs from the conv layer before it, by incoming kernel norm."""
        top_k = self.config.circuits.top_k
        key = digest("circuit", self.spec.fingerprint, unit.layer, unit.channel, top_k)

        def compute() -> dict:
            from generator.analysis import circuits

            previous = circuits.previous_conv_layer(self.model.features, unit.layer)
            if previous is None:
                return {"previous": None, "reason": f"{unit.layer} is the first conv layer: its inputs are the image's colour channels"}
            try:
                circuits.chain_between(self.model.features, previous, unit.layer)
            except circuits.UnsupportedCircuit as e:
                return {"previous": None, "reason": str(e)}
            kernel = circuits.incoming_kernel(self.model.features, unit.layer, unit.channel)
            ranked = circuits.rank_inputs(kernel, kernel.shape[-1])
            return {
                "previous": previous,
                "kernel_shape": list(kernel.shape),
                "inputs": [
                    {"rank": r + 1, "channel": w.channel, "norm": w.norm, "excitatory": w.excitatory, "inhibitory": w.inhibitory}
                    for r, w in enumerate(ranked)
                ],
                "top_kernels": kernel[..., [w.channel for w in ranked[:top_k]]].tolist(),
            }

        record = self.cache.record(key, compute)
        if record["previous"] is not None:
            record["top"] = record["inputs"][:top_k]
        return record


def _never() -> dict:
    raise AssertionError("cache entry vanished during the build")


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value))


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def build_site(config: Config, project: Path | None = None) -> dict:
    """Build the site into ``<project>/docs/generated`` atomically; the cache is ``<project>/.cache``.

    ``project`` (default: the current folder) is where ``mkdocs.yml`` lives; paths inside the
    config are relative to the config file instead.
    """
    start = time.perf_counter()
    project = Path.cwd() if project is None else project
    out_dir = project / GENERATED
    cache = Cache(project / CACHE)
    staging = out_dir.parent / f".{out_dir.name}-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        summary = _build_into(config, cache, staging, project / HAND_WRITTEN)
        _swap(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary.update(cache_hits=cache.hits, cache_misses=cache.misses, seconds=round(time.perf_counter() - start, 2))
    log.info("site written to %s (%d pages, %.1f s, cache %d hits / %d misses)",
             out_dir, summary["pages"], summary["seconds"], cache.hits, cache.misses)
    return summary


def _swap(staging: Path, out_dir: Path) -> None:
    old = out_dir.parent / f".{out_dir.name}-old-{os.getpid()}"
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _build_into(config: Config, cache: Cache, out: Path, hand_written: Path) -> dict:
    site = SiteBuild(config, cache)
    with stage("images"):
        images = load_images(image_files(config), config.images.size)
    with stage("check config"):
        site.check()
    model_name = site.spec.name
    composite = next((im for im in images if im.file == config.images.composite), images[0])

    with stage("predictions"):
        predictions = {im.slug: site.prediction(im) for im in tqdm(images, desc="predictions", disable=None)}

    featured = [Unit(u.layer, u.channel) for u in config.units]
    notes = {Unit(u.layer, u.channel): config.note(u.note) for u in config.units}
    with stage("circuits"):
        circuits = {u: site.circuit(u) for u in featured}
    inputs = {
        u: [Unit(c["previous"], w["channel"]) for w in c["top"]] for u, c in circuits.items() if c["previous"]
    }

    params = site.exciter_params()
    with stage("exciters"):
        exciter_units = list(dict.fromkeys(featured + [i for ins in inputs.values() for i in ins]))
        exciters = site.exciters(exciter_units, params, "exciters")
        grid_cfg = config.exciters.grid
        grid_units = []
        grid = {}
        if grid_cfg.layer and grid_cfg.count:
            record = find_layer(site.layers, grid_cfg.layer, "exciters.grid.layer", conv=True)
            grid_units = [Unit(grid_cfg.layer, c) for c in range(min(grid_cfg.count, record["channels"]))]
            grid = site.exciters(grid_units, site.exciter_params(grid_cfg.size), f"exciter grid {grid_cfg.layer}")

    map_layers = list(dict.fromkeys(list(config.feature_maps.layers) + [u.layer for u in exciter_units]))
    with stage("activations"):
        activations = {im.slug: site.activations(im, map_layers) for im in tqdm(images, desc="activations", disable=None)}

    units = {}
    for u in exciter_units:
        units[u] = UnitResult(
            unit=u,
            exciter=exciters[u],
            maps={slug: acts[u.layer][..., u.channel] for slug, acts in activations.items()},
            exciter_map=site.exciter_map(u, exciters[u]),
            circuit=circuits.get(u),
            note=notes.get(u, ""),
        )

    with stage("figures"):
        pictures = _render(cache, out, model_name, images, predictions, activations, config, units, grid_units, grid)

    with stage("pages"):
        n_pages = pages.render_site(
            out,
            config=config,
            model=site.spec,
            model_description=_model_description(site),
            layers=site.layers,
            images=images,
            composite=composite,
            predictions=predictions,
            featured=featured,
            inputs=inputs,
            units=units,
            grid_layer=grid_cfg.layer if grid_units else "",
            pictures=pictures,
            hand_written=hand_written,
        )
    return {"pages": n_pages, "units": len(units), "images": len(images)}


def _model_description(site: SiteBuild) -> str:
    key = digest("model-description", site.spec.fingerprint)
    return site.cache.record(key, lambda: site.model.description)


def _render(cache, out, model_name, images, predictions, activations, config, units, grid_units, grid) -> dict:
    """Write every figure and its data file; returns the figure paths by role, relative to ``out``."""
    pics: dict = {"images": {}, "units": {}, "grid": ""}
    per_row = config.feature_maps.per_row
    for im in tqdm(images, desc="image figures", disable=None):
        d = out / "images" / im.slug
        entry = {"input": cache.figure(d / "input.png", figures.save_rgb, im.pixels), "feature_maps": {}}
        pred = predictions[im.slug]
        if "top5" in pred:
            entry["predictions"] = cache.figure(
                d / "predictions.png", figures.top_predictions_bar,
                [p["name"] for p in pred["top5"]], [p["probability"] for p in pred["top5"]],
                title=f"Top-5 predictions: {im.file}",
            )
            _write_json(d / "predictions.json", pred["top5"])
        else:
            entry["output"] = cache.figure(d / "output.png", figures.output_map, im.pixels, pred["map"], title=f"Model output: {im.file}")
            m = pred["map"]
            _write_json(d / "output.json", {"shape": list(m.shape), "mean": float(m.mean()), "max": float(m.max()),
                                            "fraction_above_0.5": float((m > 0.5).mean())})
        for layer in config.feature_maps.layers:
            entry["feature_maps"][layer] = cache.figure(
                d / f"feature-maps-{layer}.png", figures.feature_map_grid, activations[im.slug][layer],
                title=f"{layer} feature maps on {im.file} (each map normalised on its own)", per_row=per_row,
            )
        pics["images"][im.slug] = entry
    for u, res in tqdm(units.items(), desc="unit figures", disable=None):
        d = out / u.url(model_name)
        e = {
            "exciter": cache.figure(d / "exciter.png", figures.save_rgb, res.exciter["image"]),
            "exciter_map": cache.figure(d / "exciter-map.png", figures.activation_overlay, res.exciter["image"], res.exciter_map,
                                        title=f"{u} on its own exciter"),
            "maps": {},
        }
        for im in images:
            e["maps"][im.slug] = cache.figure(d / f"map-{im.slug}.png", figures.activation_overlay, im.pixels, res.maps[im.slug],
                                              title=f"{u} on {im.file}")
        data = {
            "layer": u.layer, "channel": u.channel,
            "exciter": {"activation": float(res.exciter["activation"]), "start_activation": float(res.exciter["start_activation"])},
            "maps": {slug: {"mean": float(m.mean()), "max": float(m.max())} for slug, m in res.maps.items()},
        }
        c = res.circuit
        if c and c["previous"]:
            top = c["top"]
            labels = [f"{c['previous']}:{w['channel']}" for w in top]
            e["kernels"] = cache.figure(d / "incoming-kernels.png", figures.kernel_heatmaps, np.asarray(c["top_kernels"], dtype=np.float32),
                                        labels, title=f"Incoming {c['kernel_shape'][0]}x{c['kernel_shape'][1]} kernels of {u}, top {len(top)} by norm")
            e["norms"] = cache.figure(d / "incoming-norms.png", figures.norm_bar, labels, [w["norm"] for w in top],
                                      title=f"Strongest inputs of {u} from {c['previous']}")
            _write_csv(d / "circuit.csv", c["inputs"])
            data["circuit"] = {"previous": c["previous"], "top": top}
        _write_json(d / "unit.json", data)
        pics["units"][u] = e
    if grid_units:
        g = config.exciters.grid
        d = out / "models" / model_name / g.layer
        images_ = np.stack([grid[u]["image"] for u in grid_units])
        pics["grid"] = cache.figure(d / "exciter-grid.png", figures.exciter_grid, images_, [u.channel for u in grid_units],
                                    title=f"Exciters of {g.layer}, channels 0-{len(grid_units) - 1}", per_row=g.per_row)
        _write_csv(d / "exciter-grid.csv", [{"channel": u.channel, "activation": float(grid[u]["activation"]),
                                            "start_activation": float(grid[u]["start_activation"])} for u in grid_units])
    return _relative(pics, out)


def _relative(value, out: Path):
    if isinstance(value, Path):
        return value.relative_to(out).as_posix()
    if isinstance(value, dict):
        return {k: _relative(v, out) for k, v in value.items()}
    return value
