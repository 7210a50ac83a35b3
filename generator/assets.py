"""The files beside the pages: figures (rendered through the cache) and the data behind them.

Every number a page shows is also written here as JSON or CSV, next to its figure. Every file
name comes from :class:`generator.site_paths.SitePaths`, which the pages use to link to them.
Figures the cache lacks are rendered over the machine's cores by a pool of fresh ("spawn")
processes: the build has TensorFlow loaded, which must not be forked, and the figure functions
import none of it. Each figure's bytes depend on its inputs alone, so the pool changes no file.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm import tqdm

from generator import canvas, figures
from generator.cache import Cache, copy_figure, render_figure
from generator.circuit_diagram import circuit_diagram
from generator.config import Config
from generator.geometry import box_map, crop_box
from generator.images import read_square
from generator.model_checks import input_size
from generator.pixels import upsample
from generator.results import Circuit, CircuitWeights, ImageResult, Site, Unit, UnitResult
from generator.saved_arrays import largest_magnitude, save_maps
from generator.site_paths import SitePaths


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


class AssetWriter:
    """Writes one site's files under ``out``, figures through the cache."""

    def __init__(self, out: Path, cache: Cache, site: Site, config: Config):
        self.out, self.cache, self.site, self.config = out, cache, site, config
        self.paths = SitePaths(site.model, config.browse.image_format)
        self.example_pixels = _ExamplePixels(list(site.example_files), config.images.size)
        self.to_render: dict[Path, tuple] = {}  # cache file -> (render, args, kwargs), figures the cache lacks
        self.to_copy: list[tuple[Path, Path]] = []  # (cache file, destination)
        self.at_least = small_model_zoom(site.layers)

    def figure(self, path: str, render, *args, **kwargs) -> None:
        """Queue a figure: rendered (if the cache lacks it) and copied into place by :meth:`render_figures`."""
        if render is figures.save_rgb and self.at_least:
            kwargs["at_least"] = self.at_least
        dest = self.out / path
        stored = self.cache.figure_entry(dest, render, args, kwargs)
        if not stored.exists():
            self.to_render.setdefault(stored, (render, args, kwargs))
        self.to_copy.append((stored, dest))

    def picture(self, path: str, render, *args, **kwargs) -> None:
        """Queue a unit page's picture: in the format its path's suffix names, at ``browse.image_quality`` when
        that format is lossy (JPEG, WebP), the quality then being part of its cache key."""
        if Path(path).suffix in canvas.LOSSY:
            kwargs["quality"] = self.config.browse.image_quality
        self.figure(path, render, *args, **kwargs)

    def render_figures(self) -> None:
        """Render the queued figures the cache lacks, one process a core, then copy every figure into place."""
        render_all(self.to_render, _cores())
        for stored, dest in self.to_copy:
            copy_figure(stored, dest)
        self.to_render, self.to_copy = {}, []

    def file(self, path: str) -> Path:
        return self.out / path

    def write_all(self) -> None:
        for i, result in enumerate(self.site.images):
            self.image(result)
            self.attribution(i, result)
        pixels = np.stack([r.image.pixels for r in self.site.images])
        labels = [r.image.slug for r in self.site.images]
        for result in self.site.units.values():
            self.unit(result, pixels, labels)
        if self.site.grid:
            self.grid()
        if self.site.directions:
            self.directions()
        self.render_figures()
        for layer in self.site.analysed_layers:
            rows = [{"channel": u.channel, **dataclasses.asdict(self.site.units[u].stats)}
                    for u in self.site.layer_units(layer.name)]
            write_csv(self.file(self.paths.layer_file(layer.name, "units.csv")), rows)

    def image(self, result: ImageResult) -> None:
        im, p = result.image, self.paths
        self.figure(p.image_file(im.slug, "input.png"), figures.save_rgb, im.pixels)
        prediction = result.prediction
        if prediction.top5:
            top5 = prediction.top5
            self.figure(p.image_file(im.slug, "predictions.png"), figures.top_predictions_bar,
                        [c.name for c in top5], [c.probability for c in top5], title=f"Top-5 predictions: {im.file}")
            write_json(self.file(p.image_file(im.slug, "predictions.json")), [dataclasses.asdict(c) for c in top5])
        else:
            m = prediction.output_map
            self.figure(p.image_file(im.slug, "output.png"), figures.output_map, im.pixels, m,
                        title=f"Model output: {im.file}")
            write_json(self.file(p.image_file(im.slug, "output.json")),
                       {"shape": list(m.shape), "mean": float(m.mean()), "max": float(m.max()),
                        "fraction_above_0.5": float((m > 0.5).mean())})
        for layer, views in result.views.items():
            self.figure(p.image_view(im.slug, layer, "deepdream"), figures.save_rgb, views.deepdream.image)
            self.figure(p.image_view(im.slug, layer, "caricature"), figures.save_rgb, views.caricature.image)
        if result.views:
            write_json(self.file(p.image_file(im.slug, "views.json")),
                       {layer: {"deepdream": {"mean_squared_activation": [v.deepdream.start_activation,
                                                                           v.deepdream.activation]},
                                "caricature": {"cosine_similarity": [v.caricature.start_activation,
                                                                     v.caricature.activation]}}
                        for layer, v in result.views.items()})
        for layer, groups in result.groups.items():
            self.figure(p.image_groups(im.slug, layer), figures.activation_groups, im.pixels, groups.maps,
                        title=f"Activation groups of {im.file} at {layer} (NMF, {len(groups.maps)} groups)")
            for k, e in enumerate(groups.exciters):
                self.figure(p.group_exciter(im.slug, layer, k), figures.save_rgb, e.image)
        if result.groups:
            write_json(self.file(p.image_file(im.slug, "groups.json")),
                       {layer: {"reconstruction_error": g.error, "random_factorisation_error": g.random_error,
                                "groups": [{"group": k + 1, "strongest_channels": [c for c, _ in g.strongest(k, 8)],
                                            "direction": g.directions[k],
                                            "exciter_activation": g.exciters[k].activation if g.exciters else None}
                                           for k in range(len(g.directions))]}
                        for layer, g in result.groups.items()})
        for layer in self.config.feature_maps.layers:
            self.figure(p.feature_maps(im.slug, layer), figures.feature_map_grid, result.activations[layer],
                        title=f"{layer} feature maps on {im.file} (each map normalised on its own)",
                        per_row=self.config.feature_maps.per_row)

    def attribution(self, index: int, result: ImageResult) -> None:
        """Each target's maps on image ``index``: one figure (the methods side by side, each on the scale it
        shares with every image), the raw maps (``.npy``, see :mod:`generator.saved_arrays`) and a JSON summary."""
        im, summary = result.image, []
        for target, found in self.site.attribution_targets().items():
            self.figure(self.paths.attribution(im.slug, found[0].slug), figures.attribution_overlays, im.pixels,
                        np.stack([a.maps[index] for a in found]), [a.title for a in found],
                        [_scale(a.maps) for a in found], title=f"Where the evidence for {target} is: {im.file}")
            path = self.file(self.paths.attribution(im.slug, found[0].slug, ".npy"))
            save_maps(path, np.stack([a.maps[index] for a in found]))
            summary += [_attribution_record(a, index) for a in found]
        if summary:
            write_json(self.file(self.paths.image_file(im.slug, "attribution.json")), summary)

    def unit(self, result: UnitResult, pixels: np.ndarray, labels: list[str]) -> None:
        u, p = result.unit, self.paths
        shown = len(result.maps)  # the first images' maps (browse.unit_maps)
        self.picture(p.unit_picture(u, "exciter"), figures.save_rgb, result.exciter.image)
        self.picture(p.unit_strip(u), figures.activation_strip, pixels[:shown], np.stack(list(result.maps.values())),
                     labels[:shown])
        if result.featured:
            self.picture(p.unit_picture(u, "exciter-map"), figures.activation_overlay, result.exciter.image,
                         result.exciter_map, title=f"{u} on its own exciter")
            for r in self.site.images:
                self.picture(p.unit_map(u, r.image.slug), figures.activation_overlay, r.image.pixels,
                             result.maps[r.image.slug], title=f"{u} on {r.image.file}")
        for method, e in result.recipes.items():
            self.picture(p.unit_recipe(u, method), figures.save_rgb, e.image)
        for k, e in enumerate(result.diverse):
            self.picture(p.unit_diverse(u, k), figures.save_rgb, e.image)
        if result.examples:
            crops, maps = self._example_crops(result)
            self.picture(p.unit_picture(u, "examples"), figures.example_crops, crops, maps,
                         [x.score for x in result.examples], title=f"Images that excite {u} most")
        if result.example_gradcam:
            whole = np.stack([self.example_pixels[x.image] for x in result.examples])
            self.picture(p.unit_picture(u, "examples-gradcam"), figures.example_crops, whole,
                         result.example_gradcam.maps, [x.score for x in result.examples],
                         title=f"Grad-CAM of {u} at {result.example_gradcam.layer} on its top images",
                         label="Grad-CAM")
        data = {
            "layer": u.layer, "channel": u.channel,
            "exciter": {"size": int(result.exciter.image.shape[0]), "activation": result.exciter.activation,
                        "start_activation": result.exciter.start_activation},
            "stats": dataclasses.asdict(result.stats),
            "maps": {slug: dataclasses.asdict(s) for slug, s in result.map_stats.items()},
            "incoming": [_link_record(link) for link in result.incoming],
            "outgoing": [_link_record(link) for link in result.outgoing],
            "examples": [{"rank": x.rank, "file": x.file, "image": x.image, "score": x.score, "y": x.y, "x": x.x}
                         for x in result.examples],
        }
        if result.recipes:
            data["recipes"] = {method: {"activation": e.activation, "start_activation": e.start_activation}
                               for method, e in result.recipes.items()}
        if result.diverse:
            data["diverse"] = [{"activation": e.activation, "start_activation": e.start_activation}
                               for e in result.diverse]
        c = result.circuit
        if c and c.supported:
            data["circuit"] = self.circuit(c)
        write_json(self.file(p.unit_file(u, "unit.json")), data)

    def circuit(self, c: Circuit) -> dict:
        """A supported circuit's tables, kernels and diagram; returns its summary for ``unit.json``."""
        u, p, direct, x = c.unit, self.paths, c.direct, c.expanded
        h, w = direct.top_kernels.shape[:2]
        self._weights(direct, p.unit_file(u, "incoming-kernels.png"), p.unit_file(u, "incoming-norms.png"),
                      p.unit_file(u, "circuit.csv"), f"Incoming {h}x{w} kernels of {u}, top {len(direct.top)} by norm",
                      f"Strongest inputs of {u} from {direct.layer}", "Frobenius norm of incoming kernel")
        summary = {"previous": direct.layer, "top": [_input_record(i) for i in direct.top]}
        columns = [(direct.layer, [i.unit.channel for i in direct.top]), (u.layer, [u.channel])]
        edges = [(_node(i.unit), _node(u), i.norm, i.net) for i in direct.top]
        if c.expanded_supported:
            h, w = x.top_kernels.shape[:2]
            self._weights(x, p.circuit_file(u, "expanded-kernels.png"), p.circuit_file(u, "expanded-norms.png"),
                          p.circuit_file(u, "expanded.csv"),
                          f"Expanded weights of {x.layer} on {u} ({h}x{w} window), top {len(x.top)} by norm",
                          f"Strongest inputs of {u} from {x.layer}", "Frobenius norm of expanded weights")
            summary["expanded"] = {"layer": x.layer, "top": [_input_record(i) for i in x.top]}
            if x.top and x.layer != direct.layer:
                columns.insert(0, (x.layer, [i.unit.channel for i in x.top]))
                edges += [(_node(i.unit), _node(u), i.norm, i.net) for i in x.top]
                edges += [(_node(e.source), _node(e.target), e.norm, e.net) for e in c.edges]
        thumbnails = {(layer, ch): self.site.units[Unit(layer, ch)].exciter.image
                      for layer, channels in columns for ch in channels if Unit(layer, ch) in self.site.units}
        self.figure(p.circuit_file(u, "diagram.png"), circuit_diagram, columns, edges, title=f"Circuit into {u}",
                    thumbnails=thumbnails)
        return summary

    def _weights(self, w: CircuitWeights, kernels: str, norms: str, table: str, kernels_title: str, norms_title: str,
                 xlabel: str) -> None:
        """One side of a circuit: its top kernels on one scale, their norms as bars, every input as CSV."""
        names = [str(i.unit) for i in w.top]
        self.figure(kernels, figures.kernel_heatmaps, np.asarray(w.top_kernels, dtype=np.float32), names,
                    title=kernels_title)
        self.figure(norms, figures.norm_bar, names, [i.norm for i in w.top], title=norms_title, xlabel=xlabel)
        write_csv(self.file(table), [_input_record(i) for i in w.inputs])

    def grid(self) -> None:
        g, layer = self.site.grid, self.site.grid.layer
        self.figure(self.paths.layer_file(layer, "exciter-grid.png"), figures.exciter_grid,
                    np.stack([e.image for e in g.exciters]), [u.channel for u in g.units],
                    title=f"Exciters of {layer}, channels 0-{len(g.units) - 1}", per_row=self.config.exciters.grid.per_row)
        write_csv(self.file(self.paths.layer_file(layer, "exciter-grid.csv")),
                  [{"channel": u.channel, "activation": e.activation, "start_activation": e.start_activation}
                   for u, e in zip(g.units, g.exciters)])

    def directions(self) -> None:
        records = []
        for i, d in enumerate(self.site.directions):
            self.figure(self.paths.direction_exciter(i), figures.save_rgb, d.exciter.image)
            records.append({"direction": d.text, "layer": d.layer, "weights": d.weights,
                            "activation": d.exciter.activation, "start_activation": d.exciter.start_activation})
        write_json(self.file(self.paths.model_file("directions.json")), records)

    def _example_crops(self, result: UnitResult) -> tuple[np.ndarray, np.ndarray]:
        """Square crops around each example's peak, sized to the receptive field, with the map over the
        same square; the whole image where the receptive field is unknown (a model that is not a chain)."""
        rf = result.receptive_field
        crops, maps = [], []
        for x in result.examples:
            image = self.example_pixels[x.image]
            if rf is None:
                crops.append(image)
                maps.append(upsample(x.map, image.shape[:2]))
                continue
            top, left, side = box = crop_box(rf, x.y, x.x, image.shape[0])
            crops.append(image[top:top + side, left:left + side])
            maps.append(box_map(rf, x.map, box))
        return np.stack(crops), np.stack(maps)


SMALL_INPUT = 64  # a model taking fixed images under this side (MNIST 28, CIFAR 32 px) ...
SMALL_SHOWN = 128  # ... gets its pictures zoomed (nearest neighbour) to at least this side


def small_model_zoom(layers) -> int:
    """``at_least`` for :func:`figures.save_rgb`: SMALL_SHOWN for a small fixed-input model, else 0 (as saved)."""
    size = input_size(layers)
    return SMALL_SHOWN if size and size < SMALL_INPUT else 0


def write_assets(out: Path, cache: Cache, site: Site, config: Config) -> None:
    """Every figure and data file of ``site`` under ``out``."""
    AssetWriter(out, cache, site, config).write_all()


class _ExamplePixels:
    """Pixels of example images, read once each and only when a figure needs them."""

    def __init__(self, paths: list[Path], size: int):
        self.paths, self.size, self.loaded = paths, size, {}

    def __getitem__(self, index: int) -> np.ndarray:
        if index not in self.loaded:
            self.loaded[index] = read_square(self.paths[index], self.size, "dataset examples")
        return self.loaded[index]


def _scale(maps: np.ndarray) -> tuple[float, float]:
    """One colour scale for a method's maps on every image: 0 to the maximum, or symmetric when signed."""
    top = largest_magnitude(maps)
    return (-top, top) if np.nanmin(maps) < 0 else (0.0, float(np.nanmax(maps)) or 1.0)


def _attribution_record(a, index: int) -> dict:
    m = a.maps[index]
    record = {"target": a.target, "method": a.method, "settings": a.settings, "score": float(a.scores[index]),
              "min": float(m.min()), "max": float(m.max()), "sum": float(m.sum())}
    if a.classes:
        record["class"] = a.classes[index]
    if a.layer:
        record["layer"] = a.layer
    if a.baseline_scores is not None:
        record["baseline_score"] = float(a.baseline_scores[index])
    if a.sanity is not None:
        record["sanity_spearman"] = float(a.sanity[index])
        record["randomised_layers"] = list(a.randomised)
    return record


def render_all(jobs: dict[Path, tuple], workers: int) -> None:
    """Render each job ``cache file -> (render, args, kwargs)`` into its cache file, over up to
    ``workers`` fresh processes (in this one for a single worker or a single job)."""
    workers = min(workers, len(jobs))
    with tqdm(total=len(jobs), desc="figures", disable=None) as progress:
        if workers <= 1:
            for stored, job in jobs.items():
                render_figure(stored, *job)
                progress.update()
            return
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            try:
                for done in as_completed([pool.submit(render_figure, stored, *job) for stored, job in jobs.items()]):
                    done.result()
                    progress.update()
            except BaseException:  # a failed figure or Ctrl-C: stop now, not after the queued figures
                pool.shutdown(cancel_futures=True)
                raise


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _node(unit: Unit) -> tuple[str, int]:
    return unit.layer, unit.channel


def _link_record(link) -> dict:
    return {"layer": link.unit.layer, "channel": link.unit.channel, "norm": link.norm}


def _input_record(w) -> dict:
    return {"rank": w.rank, "channel": w.unit.channel, "norm": w.norm, "excitatory": w.excitatory,
            "inhibitory": w.inhibitory, "net": w.net}
