"""``python -m generator build``: config -> cached analyses -> figures and data -> Markdown pages.

Everything is written into a staging folder beside ``docs/generated`` and swapped in at
the end, so a failed or interrupted build leaves the previous site as it was. Each stage
logs its time; long stages show a progress bar.
"""

from __future__ import annotations

import dataclasses
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
from PIL import Image as PILImage
from tqdm import tqdm

from generator import assets, pages
from generator.analysis.architecture import check_channel, conv_layer_names, find_layer, summarise
from generator.cache import Cache, digest
from generator.config import Config, ExciterParams, exciter_key, image_files, list_images
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
    """Everything computed for one unit that has a page."""

    unit: Unit
    exciter: dict[str, np.ndarray]  # image (S, S, 3) uint8, activation, start_activation
    maps: dict[str, np.ndarray]  # image slug -> (h, w) activation map
    map_stats: dict[str, dict]  # image slug -> mean and max of that map
    stats: dict  # mean and max activation over the image set; dead when it never fires
    incoming: list[tuple[Unit, float]] = field(default_factory=list)  # top-k of the conv layer before
    outgoing: list[tuple[Unit, float]] = field(default_factory=list)  # top-k of the conv layer after
    examples: list[dict] = field(default_factory=list)  # top images of the examples folder
    featured: bool = False  # a configured unit or one of its circuit's top inputs: full-size figures
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
        if self.fixed_input and self.fixed_input != cfg.images.size:
            raise GeneratorError(
                f"config key 'images.size': got {cfg.images.size}, but the model takes {self.fixed_input}x"
                f"{self.fixed_input} images; set images.size to {self.fixed_input}"
            )
        for i, name in enumerate(cfg.feature_maps.layers):
            find_layer(self.layers, name, f"feature_maps.layers[{i}]")
        for i, unit in enumerate(cfg.units):
            record = find_layer(self.layers, unit.layer, f"units[{i}].layer", conv=True)
            check_channel(record, unit.channel, f"units[{i}].channel")
        if cfg.exciters.grid.layer:
            find_layer(self.layers, cfg.exciters.grid.layer, "exciters.grid.layer", conv=True)
        if cfg.circuits.earlier_layer:
            find_layer(self.layers, cfg.circuits.earlier_layer, "circuits.earlier_layer", conv=True)

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
        keys = {u: digest("exciter", self.spec.fingerprint, u.layer, u.channel, exciter_key(params)) for u in units}
        missing = [u for u in units if not self.cache.has(keys[u])]
        rendered = {}
        if missing:
            from generator.analysis.exciters import render_exciters

            with tqdm(total=len(missing), desc=what, unit="unit", disable=None) as bar:
                for layer in sorted({u.layer for u in missing}):
                    todo = [u for u in missing if u.layer == layer]
                    result = render_exciters(
                        self.model.features, layer, [u.channel for u in todo], params, self.model.preprocess, bar.update
                    )
                    for i, u in enumerate(todo):
                        rendered[u] = self.cache.arrays(
                            keys[u],
                            lambda i=i: {
                                "image": result.images[i],
                                "activation": np.float32(result.activation[i]),
                                "start_activation": np.float32(result.start_activation[i]),
                            },
                        )
        return {u: rendered[u] if u in rendered else self.cache.arrays(keys[u], _never) for u in units}

    def exciter_map(self, unit: Unit, exciter: dict[str, np.ndarray]) -> np.ndarray:
        key = digest("exciter-map", self.spec.fingerprint, unit.layer, unit.channel, exciter["image"])

        def compute() -> dict:
            from generator.analysis.activations import layer_activations

            acts = layer_activations(self.model, exciter["image"][None], [unit.layer])[unit.layer]
            return {"map": acts[0, ..., unit.channel]}

        return self.cache.arrays(key, compute)["map"]

    def circuit(self, unit: Unit) -> dict:
        """The unit's inputs: direct weights from the conv layer before it, ranked by kernel norm,
        and (with ``circuits.earlier_layer``) expanded weights from an earlier conv layer."""
        cfg = self.config.circuits
        key = digest("circuit", self.spec.fingerprint, unit.layer, unit.channel, cfg)

        def compute() -> dict:
            from generator.analysis import circuits

            model = self.model.features
            previous = circuits.previous_conv_layer(model, unit.layer)
            if previous is None:
                return {"previous": None, "reason": f"No single conv layer feeds {unit.layer} directly: it is the first "
                        "conv layer, or its input comes from a merge (Add, Concatenate), where weights alone do not say "
                        "which unit feeds it"}
            try:
                circuits.chain_between(model, previous, unit.layer)
            except circuits.UnsupportedCircuit as e:
                return {"previous": None, "reason": str(e)}
            kernel = circuits.incoming_kernel(model, unit.layer, unit.channel)
            record = {"previous": previous, **_ranked_inputs(circuits, kernel, cfg.top_k)}
            if cfg.earlier_layer:
                record["expanded"] = self._expanded(circuits, unit, previous, record["inputs"])
            return record

        record = self.cache.record(key, compute)
        for side in (record, record.get("expanded") or {}):
            if side.get("inputs"):
                side["top"] = side["inputs"][: cfg.top_k]
        return record

    def _expanded(self, circuits, unit: Unit, previous: str, direct_inputs: list[dict]) -> dict:
        """Expanded weights from ``circuits.earlier_layer`` onto ``unit``, plus the edges
        earlier -> previous between the top inputs of both, for the circuit diagram."""
        cfg = self.config.circuits
        model = self.model.features
        earlier = cfg.earlier_layer
        window = cfg.window or None
        try:
            weights = circuits.expanded_weights(model, earlier, unit.layer, [unit.channel], window)[..., 0]
            record = {"layer": earlier, **_ranked_inputs(circuits, weights, cfg.top_k)}
            if earlier != previous:
                tops = [w["channel"] for w in direct_inputs[: cfg.top_k]]
                between = circuits.expanded_weights(model, earlier, previous, tops, window)
                mine = [w["channel"] for w in record["inputs"][: cfg.top_k]]
                record["edges"] = [
                    {"from": int(i), "to": int(o), "norm": float(np.linalg.norm(between[:, :, i, k])),
                     "net": float(between[:, :, i, k].sum())}
                    for k, o in enumerate(tops) for i in mine
                ]
            return record
        except circuits.UnsupportedCircuit as e:
            return {"layer": earlier, "reason": str(e)}

    # -- browsing: every unit of the browsed layers ----------------------------------------
    def browse_layers(self) -> list[str]:
        names = self.config.browse.layers
        if names == ("all",):
            return conv_layer_names(self.layers)
        for i, name in enumerate(names):
            find_layer(self.layers, name, f"browse.layers[{i}]", conv=True)
        return list(names)

    def neighbours(self, layer: str) -> dict:
        """The conv layers before and after ``layer`` and the kernel norms that connect them.

        ``incoming`` is (C_before, C_layer): column c ranks the inputs of unit c;
        ``outgoing`` is (C_layer, C_after): row c ranks the units that unit c feeds.
        """
        key = digest("neighbours", self.spec.fingerprint, layer)

        def compute() -> dict:
            from generator.analysis import circuits

            model = self.model.features
            result = {}
            for side, name, source, target in (
                ("incoming", circuits.previous_conv_layer(model, layer), None, layer),
                ("outgoing", circuits.next_conv_layer(model, layer), layer, None),
            ):
                if name is None:
                    continue
                try:
                    circuits.chain_between(model, source or name, target or name)
                except circuits.UnsupportedCircuit:
                    continue
                result[side] = circuits.kernel_norms(model, target or name)
                result[f"{side}_layer"] = np.array(name)
            return result

        stored = self.cache.arrays(key, compute)
        return {k: (str(v) if v.dtype.kind == "U" else v) for k, v in stored.items()}

    def examples(self, layer: str, paths: list[Path], listing: str) -> dict[str, np.ndarray]:
        """Top images of the examples folder for every channel of ``layer``, and their maps.

        Returns ``image`` (C, N) indices into ``paths``, ``score`` (C, N), ``y``/``x`` peak
        positions, and ``maps`` (C, N, h, w): each top image's activation map, for overlays.
        """
        b = self.config.browse
        key = digest("examples", self.spec.fingerprint, layer, listing, b.examples_top_n, self.config.images.size)

        def compute() -> dict:
            from generator.analysis import examples
            from generator.analysis.activations import layer_activations
            from generator.analysis.circuits import UnsupportedCircuit

            size, batch = self.config.images.size, 16
            channels = list(range(find_layer(self.layers, layer, "browse.layers", conv=True)["channels"]))
            with tqdm(total=len(paths), desc=f"examples {layer}", unit="image", disable=None) as bar:
                top = examples.top_examples(
                    self.model.features, self.model.preprocess, layer, channels,
                    examples.stream_images(paths, size, batch), b.examples_top_n, bar.update,
                )
            table = {f: np.array([[getattr(e, f) for e in top[c]] for c in channels]) for f in ("image", "score", "y", "x")}
            # Maps of the top images only, from one more pass over the (few) images that made a top list.
            needed = sorted(set(table["image"].ravel().tolist()))
            maps = None
            for start in range(0, len(needed), batch):
                chunk = needed[start:start + batch]
                pixels = next(examples.stream_images([paths[i] for i in chunk], size, len(chunk)))
                acts = layer_activations(self.model, pixels, [layer])[layer]  # (B, h, w, C)
                if maps is None:
                    maps = np.zeros((*table["image"].shape, *acts.shape[1:3]), np.float32)
                for j, i in enumerate(chunk):
                    where = np.nonzero(table["image"] == i)
                    maps[where] = np.moveaxis(acts[j], -1, 0)[where[0]]
            try:
                rf = examples.receptive_field(self.model.features, layer, self.config.images.size)
                geometry = np.array([rf.size, rf.stride, rf.offset], np.float64)
            except UnsupportedCircuit:  # not a plain chain: examples are shown whole
                geometry = np.zeros(0)
            return {**table, "maps": maps, "rf": geometry}

        return self.cache.arrays(key, compute)


def _ranked_inputs(circuits, weights: np.ndarray, top_k: int) -> dict:
    """Every input channel of a (h, w, C_in) weight slice ranked by norm, and the top-k kernels."""
    ranked = circuits.rank_inputs(weights, weights.shape[-1])
    return {
        "kernel_shape": list(weights.shape),
        "inputs": [
            {"rank": r + 1, "channel": w.channel, "norm": w.norm, "excitatory": w.excitatory, "inhibitory": w.inhibitory,
             "net": w.excitatory + w.inhibitory}
            for r, w in enumerate(ranked)
        ],
        "top_kernels": weights[..., [w.channel for w in ranked[:top_k]]].tolist(),
    }


def _never() -> dict:
    raise AssertionError("cache entry vanished during the build")


def build_site(config: Config, project: Path | None = None) -> dict:
    """Build the site into ``<project>/docs/generated`` atomically; the cache is ``<project>/.cache``.

    ``project`` (default: the current folder) is where ``mkdocs.yml`` lives; paths inside the
    config are relative to the config file instead.
    """
    start = time.perf_counter()
    project = Path.cwd() if project is None else project
    out_dir = project / GENERATED
    cache = Cache(project / CACHE)
    _recover(out_dir)
    staging = out_dir.parent / f".{out_dir.name}-staging-{os.getpid()}"
    try:
        summary = _build_into(config, cache, staging, project / HAND_WRITTEN)
        _swap(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary.update(cache_hits=cache.hits, cache_misses=cache.misses, seconds=round(time.perf_counter() - start, 2))
    log.info("site written to %s (%d pages, %.1f s, cache %d hits / %d misses)",
             out_dir, summary["pages"], summary["seconds"], cache.hits, cache.misses)
    return summary


def _recover(out_dir: Path) -> None:
    """Clear what a killed build left beside ``out_dir``; if it died mid-swap, put the old site back."""
    for leftover in sorted(out_dir.parent.glob(f".{out_dir.name}-staging-*")):
        shutil.rmtree(leftover, ignore_errors=True)
    for old in sorted(out_dir.parent.glob(f".{out_dir.name}-old-*")):
        if out_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, out_dir)


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
        example_paths = _example_files(config)
    with stage("check config"):
        site.check()
        browse_layers = site.browse_layers()
    composite = next((im for im in images if im.file == config.images.composite), images[0])

    with stage("predictions"):
        predictions = {im.slug: site.prediction(im) for im in tqdm(images, desc="predictions", disable=None)}

    featured = [Unit(u.layer, u.channel) for u in config.units]
    notes = {Unit(u.layer, u.channel): config.note(u.note) for u in config.units}
    with stage("circuits"):
        circuits = {u: site.circuit(u) for u in featured}
    inputs = {u: [Unit(c["previous"], w["channel"]) for w in c["top"]] for u, c in circuits.items() if c["previous"]}
    earlier_inputs = [Unit(e["layer"], w["channel"]) for c in circuits.values() for e in [c.get("expanded") or {}]
                      for w in e.get("top", [])]
    circuit_units = list(dict.fromkeys(featured + [i for ins in inputs.values() for i in ins] + earlier_inputs))
    channels = {r["name"]: r["channels"] for r in site.layers}
    browse_units = [Unit(layer, c) for layer in browse_layers for c in range(channels[layer])]
    all_units = sorted(set(circuit_units) | set(browse_units))

    with stage("exciters"):
        methods = {Unit(u.layer, u.channel): u.method for u in config.units if u.method}
        exciters = {}
        for method in sorted({methods.get(u, config.exciters.method) for u in circuit_units}):
            todo = [u for u in circuit_units if methods.get(u, config.exciters.method) == method]
            exciters.update(site.exciters(todo, dataclasses.replace(site.exciter_params(), method=method), f"exciters ({method})"))
        b = config.browse
        thumb_params = dataclasses.replace(site.exciter_params(b.thumbnail_size), steps=b.thumbnail_steps,
                                           method=b.thumbnail_method or config.exciters.method)
        thumbs = site.exciters(browse_units, thumb_params, "thumbnails")
        exciters = {**thumbs, **exciters}
        grid_cfg = config.exciters.grid
        grid_units, grid = [], {}
        if grid_cfg.layer and grid_cfg.count:
            grid_units = [Unit(grid_cfg.layer, c) for c in range(min(grid_cfg.count, channels[grid_cfg.layer]))]
            grid = site.exciters(grid_units, site.exciter_params(grid_cfg.size), f"exciter grid {grid_cfg.layer}")

    unit_layers = list(dict.fromkeys(u.layer for u in all_units))
    map_layers = list(dict.fromkeys([*config.feature_maps.layers, *unit_layers]))
    with stage("activations"):
        activations = {im.slug: site.activations(im, map_layers) for im in tqdm(images, desc="activations", disable=None)}

    with stage("examples"):
        root = Path(os.path.commonpath([p.parent for p in example_paths]))
        example_names = [p.relative_to(root).as_posix() for p in example_paths]
        listing = digest([(name, p.stat().st_size, p.stat().st_mtime_ns) for name, p in zip(example_names, example_paths)])
        examples = {layer: site.examples(layer, example_paths, listing) for layer in unit_layers}

    with stage("neighbours"):
        neighbours = {layer: site.neighbours(layer) for layer in unit_layers}

    units = {}
    for u in all_units:
        maps = {slug: acts[u.layer][..., u.channel] for slug, acts in activations.items()}
        map_stats = {slug: {"mean": float(m.mean()), "max": float(m.max())} for slug, m in maps.items()}
        peak = max(m["max"] for m in map_stats.values())
        units[u] = UnitResult(
            unit=u,
            exciter=exciters[u],
            maps=maps,
            map_stats=map_stats,
            stats={"mean": float(np.mean([m["mean"] for m in map_stats.values()])), "max": peak, "dead": peak <= 0},
            incoming=_ranked(neighbours[u.layer], "incoming", u.channel, config.browse.top_k),
            outgoing=_ranked(neighbours[u.layer], "outgoing", u.channel, config.browse.top_k),
            examples=_unit_examples(examples[u.layer], u.channel, example_names),
            featured=u in circuit_units,
            exciter_map=site.exciter_map(u, exciters[u]) if u in circuit_units else None,
            circuit=circuits.get(u),
            note=notes.get(u, ""),
        )

    with stage("figures"):
        pictures = assets.write_assets(out, cache, site.spec.name, config, images, predictions, activations, units,
                                       examples, example_paths, grid_units, grid)

    with stage("pages"):
        n_pages = pages.render_site(
            out, config=config, model=site.spec, model_description=_model_description(site), layers=site.layers,
            images=images, composite=composite, predictions=predictions, featured=featured, inputs=inputs,
            units=units, grid_layer=grid_cfg.layer if grid_units else "", pictures=pictures, hand_written=hand_written,
        )
    return {"pages": n_pages, "units": len(units), "images": len(images)}


def _example_files(config: Config) -> list[Path]:
    """The images searched for dataset examples: ``browse.examples_dir``, else the configured images."""
    folder = config.browse.examples_dir
    if not folder:
        return image_files(config)
    path = config.folder(folder, "browse.examples_dir")
    files = [p for p in list_images(path, recursive=True) if _readable(p)]
    if not files:
        raise GeneratorError(f"config key 'browse.examples_dir': no readable image files in {folder!r}")
    return files


def _readable(path: Path) -> bool:
    """Whether Pillow recognises the file (a header read); a folder of thousands may hold a few bad ones."""
    try:
        with PILImage.open(path):
            return True
    except (OSError, ValueError):
        log.warning("skipping %s: not an image Pillow can read", path)
        return False


def _ranked(neighbours: dict, side: str, channel: int, top_k: int) -> list[tuple[Unit, float]]:
    """The top-k units on one side of ``channel``, by kernel norm."""
    if side not in neighbours:
        return []
    norms = neighbours[side][:, channel] if side == "incoming" else neighbours[side][channel]
    order = np.argsort(-norms, kind="stable")[:top_k]
    return [(Unit(neighbours[f"{side}_layer"], int(c)), float(norms[c])) for c in order]


def _unit_examples(table: dict, channel: int, names: list[str]) -> list[dict]:
    return [
        {"rank": r + 1, "file": names[i], "image": int(i), "score": float(table["score"][channel, r]),
         "y": int(table["y"][channel, r]), "x": int(table["x"][channel, r])}
        for r, i in enumerate(table["image"][channel])
    ]


def _model_description(site: SiteBuild) -> str:
    key = digest("model-description", site.spec.fingerprint)
    return site.cache.record(key, lambda: site.model.description)
