"""``python -m generator build``: read the inputs, check the config against the model, plan the
units, analyse them (cached), write figures and data, render the pages.

Everything is written into a fresh folder and swapped in at the end (``staging``), so a
failed or interrupted build leaves the previous site as it was. Each stage
logs its time; long stages show a progress bar.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from generator import assets, pages, quiet, staging
from generator.analyses import Analyses
from generator.analysis.labels import folder_classes, unit_label
from generator.cache import Cache, digest
from generator.config import Config, image_files
from generator.errors import GeneratorError
from generator.executor import open_executor
from generator.images import example_image_files, file_digest, load_images, read_square
from generator.model_checks import browse_layers, check_config, configured_directions, input_size
from generator.results import (
    ActivationGroups, Attribution, Circuit, ClassConcepts, DatasetExamples, DirectionExciter, Exciter, ExciterGrid, Faithfulness,
    ImageResult, ImageViews, InputImage, MapStats, RecipeQuality, Site, Unit, UnitExample, UnitResult, UnitStats,
)
from generator.timing import stage

log = logging.getLogger("generator")

GENERATED = Path("docs") / "generated"
CACHE = Path(".cache") / "generator"
HAND_WRITTEN = Path("docs") / "pages"  # the author's own pages, copied into the site as they are


def build_site(config: Config, project: Path | None = None, executor: str = "local", address: str = "",
               workers: int = 0) -> dict:
    """Build the site into ``<project>/docs/generated`` atomically; the cache is ``<project>/.cache``.

    ``project`` (default: the current folder) is where ``mkdocs.yml`` lives; paths inside the
    config are relative to the config file instead. One build at a time per project: a second
    one waits for the first (``staging.locked``). ``executor``, ``address`` and ``workers`` say where
    the heavy analyses run (:func:`generator.executor.open_executor`).
    """
    start = time.perf_counter()
    project = Path.cwd() if project is None else project
    out_dir = project / GENERATED
    cache = Cache(project / CACHE, prepare=_import_keras)
    remote = open_executor(executor, config.model, config.root, address, workers)
    try:
        with staging.locked(project), staging.staged(out_dir) as out, cache.batched_writes():
            summary = _build_into(Analyses(config, cache, remote), out, project / HAND_WRITTEN)
    finally:
        if remote is not None:
            remote.close()
    summary.update(cache_hits=cache.hits, cache_misses=cache.misses, seconds=round(time.perf_counter() - start, 2))
    log.info("site written to %s (%d pages, %.1f s, cache %d hits / %d misses)",
             out_dir, summary["pages"], summary["seconds"], cache.hits, cache.misses)
    return summary


def _import_keras() -> None:
    """Keras and TensorFlow, imported quietly when the build computes its first result: a rebuild that finds every
    result in the cache needs neither (their import is some 3.5 s of a command's start)."""
    with stage("import keras"):
        quiet.import_keras()


def _build_into(analyses: Analyses, out: Path, hand_written: Path) -> dict:
    site = site_results(analyses)
    config, cache = analyses.config, analyses.cache

    def write_pages() -> int:
        with stage("pages"):
            return pages.render_site(out, site, config, hand_written)

    # The pages are written while the pool draws: the figures' seconds include the pages' (printed first).
    with stage("figures"):
        n_pages = assets.write_assets(out, cache, site, config, meanwhile=write_pages)
    return {"pages": n_pages, "units": len(site.units), "images": len(site.images)}


def site_results(analyses: Analyses) -> Site:
    """Read the inputs, check the config against the model, and analyse: every result the site shows."""
    config = analyses.config
    with stage("images"):
        images = load_images(image_files(config), config.images.size)
        example_files = example_image_files(config)
    with stage("check config"):
        config = analyses.config = check_config(config, analyses.layers)
        if config.classes.enabled:
            analyses.check_classes()
    return analyse(config, analyses, images, example_files)


# --- plan: which units get pages, and which get the featured units' full treatment ----------------


@dataclass(frozen=True)
class UnitPlan:
    featured: list[Unit]  # the configured units
    circuit_units: list[Unit]  # featured units and their circuits' top inputs: full-size exciters and maps
    browse_units: list[Unit]  # every unit of the browsed layers: thumbnails
    grid_units: list[Unit]  # the lab's exciter grid

    @property
    def all_units(self) -> list[Unit]:
        return sorted(set(self.circuit_units) | set(self.browse_units))

    @property
    def unit_layers(self) -> list[str]:
        return list(dict.fromkeys(u.layer for u in self.all_units))


def plan_units(config: Config, analyses: Analyses, circuits: dict[Unit, Circuit]) -> UnitPlan:
    featured = list(circuits)
    inputs = [w.unit for c in circuits.values() for side in (c.direct, c.expanded) if side for w in side.top]
    channels = {r.name: r.channels for r in analyses.layers}
    grid = config.exciters.grid
    grid_units = [Unit(grid.layer, c) for c in range(min(grid.count, channels[grid.layer]))] if grid.layer else []
    return UnitPlan(
        featured=featured,
        circuit_units=list(dict.fromkeys(featured + inputs)),
        browse_units=[Unit(layer, c) for layer in browse_layers(config, analyses.layers) for c in range(channels[layer])],
        grid_units=grid_units,
    )


# --- analyse: every result the pages show, each from the cache or computed ------------------------


def analyse(config: Config, analyses: Analyses, images: list[InputImage], example_files: list[Path]) -> Site:
    with stage("predictions"):
        predictions = analyses.predictions(images)
    with stage("circuits"):
        circuits = {Unit(u.layer, u.channel): analyses.circuit(Unit(u.layer, u.channel)) for u in config.units}
    plan = plan_units(config, analyses, circuits)
    with stage("exciters"):
        exciters, grid, directions = _exciters(config, analyses, plan)
        recipes = _recipes(config, analyses, plan.featured)
    with stage("diversity"):
        diverse = _diverse(config, analyses, plan.featured)
    map_layers = list(dict.fromkeys([*config.feature_maps.layers, *plan.unit_layers, *config.groups.layers]))
    with stage("activations"):
        activations = analyses.activations(images, map_layers)
    with stage("views"):
        views = _views(config, analyses, images)
    with stage("groups"):
        groups = _groups(config, analyses, images, activations)
    with stage("examples"):
        names, classes, examples = _examples(analyses, plan.unit_layers, example_files)
        quality = _recipe_quality(analyses, recipes, example_files, examples)
    with stage("neighbours"):
        links = {layer: analyses.layer_links(layer) for layer in plan.unit_layers}
    with stage("class effects"):
        effects = {layer: analyses.class_effects(layer, images) for layer in plan.unit_layers}

    attributions, gradcams, faithfulness = _evidence(config, analyses, images, plan.featured, example_files, examples)
    configured = {Unit(u.layer, u.channel): u for u in config.units}
    units = {}
    for u in plan.all_units:
        featured = u in plan.circuit_units
        units[u] = _unit_result(
            u, exciters[u], {slug: acts[u.layer][..., u.channel] for slug, acts in activations.items()},
            len(images) if featured else config.browse.unit_maps or len(images), examples[u.layer], names,
            incoming=links[u.layer].incoming_of(u.channel, config.browse.top_k),
            outgoing=links[u.layer].outgoing_of(u.channel, config.browse.top_k),
            exciter_map=analyses.exciter_map(u, exciters[u]) if featured else None,
            featured=featured, circuit=circuits.get(u), example_gradcam=gradcams.get(u),
            note=config.note(configured[u].note) if u in configured else "",
            diverse=diverse.get(u, ()), recipes=recipes.get(u, {}), recipe_quality=quality.get(u, {}),
            class_effects=effects[u.layer], label=unit_label(u.channel, examples[u.layer].image[u.channel], classes,
                                                             effects[u.layer], getattr(configured.get(u), "label", None)),
        )
    results = tuple(ImageResult(im, predictions[im.slug], activations[im.slug], views[im.slug], groups[im.slug])
                    for im in images)
    return Site(
        model=analyses.spec.name, description=analyses.description,
        layers=analyses.layers,
        images=results,
        composite=next((r for r in results if r.image.file == config.images.composite), results[0]),
        featured=tuple(plan.featured),
        units=units,
        example_files=tuple(example_files), example_names=tuple(names),
        grid=grid, directions=directions,
        notes={name: config.note(text) for name, text in vars(config.notes).items()},
        attributions=attributions,
        faithfulness=faithfulness, classes=_classes(config, analyses, example_files),
    )


def _examples(analyses: Analyses, layers: list[str], example_files: list[Path]
              ) -> tuple[list[str], tuple[str, ...] | None, dict[str, DatasetExamples]]:
    """The example files' names inside their folder, their classes (where the folder holds one sub-folder a
    class) and each layer's dataset examples."""
    names = _example_names(example_files)
    listing = digest([(name, file_digest(p)) for name, p in zip(names, example_files)])
    classes = folder_classes(names) if analyses.config.browse.examples_dir else None
    return names, classes, analyses.examples(layers, example_files, listing)


def _recipe_quality(analyses: Analyses, recipes: dict[Unit, dict[str, Exciter]], example_files: list[Path],
                    examples: dict[str, DatasetExamples]) -> dict[Unit, dict[str, RecipeQuality]]:
    """Each configured unit's recipes against its dataset examples (read at the exciters' size); none for
    negative exciters (``exciters.negative``), which the unit's top examples say nothing about."""
    found = {}
    if analyses.config.exciters.negative:
        return found
    for u, by_method in recipes.items():
        chosen = [example_files[i] for i in examples[u.layer].image[u.channel]] if u.layer in examples else []
        if not by_method or not chosen:
            continue
        size = next(iter(by_method.values())).image.shape[0]
        pixels = np.stack([read_square(p, size, "dataset examples") for p in chosen])
        found[u] = analyses.recipe_quality(u, by_method, pixels, [file_digest(p) for p in chosen])
    return found


def _evidence(config: Config, analyses: Analyses, images: list[InputImage], units: list[Unit], example_files: list[Path],
              examples: dict[str, DatasetExamples]) -> tuple[tuple[Attribution, ...], dict, tuple[Faithfulness, ...]]:
    """Where the evidence is: the attribution maps on the images, the featured units' Grad-CAM on their
    dataset examples, and how faithful the maps are (a stage of its own)."""
    with stage("attribution"):
        attributions = analyses.attributions(images, units) if config.attribution.methods else ()
        gradcams = _example_gradcams(config, analyses, units, example_files, examples)
    with stage("faithfulness"):
        faithfulness = analyses.faithfulness(images, units, attributions)
    return attributions, gradcams, faithfulness


def _example_gradcams(config: Config, analyses: Analyses, units: list[Unit], example_files: list[Path],
                      examples: dict[str, DatasetExamples]) -> dict[Unit, Attribution]:
    """Each configured unit's Grad-CAM on its dataset examples (when attribution covers units and Grad-CAM)."""
    if not (config.attribution.units and "gradcam" in config.attribution.methods):
        return {}
    gradcams = {}
    for u in tqdm(units, desc="Grad-CAM of the examples", unit="unit", disable=None):
        chosen = [example_files[i] for i in examples[u.layer].image[u.channel]]
        pixels = np.stack([read_square(p, config.images.size, "dataset examples") for p in chosen])
        gradcams[u] = analyses.example_gradcam(u, pixels, [file_digest(p) for p in chosen])
    return gradcams


def _exciters(config: Config, analyses: Analyses, plan: UnitPlan
              ) -> tuple[dict[Unit, Exciter], ExciterGrid | None, tuple[DirectionExciter, ...]]:
    """Full-size exciters of the circuit units (each with its method) and of ``exciters.directions`` (with the
    featured units' settings, in one batch with the circuit units of their layer), thumbnails of the browsed
    units, and the lab's grid."""
    size = input_size(analyses.layers)
    e, b = config.exciters, config.browse
    methods = {Unit(u.layer, u.channel): u.method or e.method for u in config.units}
    found = configured_directions(config, analyses.layers)
    exciters, drawn = {}, []
    for method in sorted({methods.get(u, e.method) for u in plan.circuit_units} | ({e.method} if found else set())):
        todo = [u for u in plan.circuit_units if methods.get(u, e.method) == method]
        params = dataclasses.replace(e.params(size), method=method)
        pairs = [(spec.layer, vector) for spec, vector in found] if method == e.method else []
        rendered, more = analyses.exciters_with_directions(todo, pairs, params, f"exciters ({method})")
        exciters.update(rendered)
        drawn += more
    thumbnails = dataclasses.replace(e.params(size or b.thumbnail_size), steps=b.thumbnail_steps,
                                     method=b.thumbnail_method or e.method)
    exciters = {**analyses.exciters(plan.browse_units, thumbnails, "thumbnails"), **exciters}
    grid = None
    if plan.grid_units:
        found_grid = analyses.exciters(plan.grid_units, e.params(size or e.grid.size), f"exciter grid {e.grid.layer}")
        grid = ExciterGrid(e.grid.layer, tuple(plan.grid_units), tuple(found_grid[u] for u in plan.grid_units))
    directions = tuple(DirectionExciter(spec.text, spec.layer, vector, d) for (spec, vector), d in zip(found, drawn))
    return exciters, grid, directions


def _recipes(config: Config, analyses: Analyses, featured: list[Unit]) -> dict[Unit, dict[str, Exciter]]:
    """Each configured unit's exciter by the lab's recipe, Lucid's and the configured one (maco), side by side."""
    found: dict[Unit, dict[str, Exciter]] = {u: {} for u in featured}
    for method in dict.fromkeys(["gradient_ascent", "lucid", config.exciters.method]):
        params = dataclasses.replace(config.exciters.params(input_size(analyses.layers)), method=method)
        for u, e in analyses.exciters(featured, params, f"exciters ({method})").items():
            found[u][method] = e
    return found


def _diverse(config: Config, analyses: Analyses, featured: list[Unit]) -> dict[Unit, tuple[Exciter, ...]]:
    """``exciters.diversity`` exciters of each configured unit, Lucid's recipe with its diversity term."""
    e = config.exciters
    if e.diversity < 1 or not featured:
        return {}
    params = dataclasses.replace(e.params(input_size(analyses.layers)), method="lucid")
    return analyses.diverse_exciters(featured, e.diversity, e.diversity_weight, params)


def _groups(config: Config, analyses: Analyses, images: list[InputImage],
            activations: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, ActivationGroups]]:
    """Each image's activation groups at ``groups.layers``, with an exciter of each group's direction
    (all of a layer's groups over every image rendered together)."""
    g = config.groups
    params = config.exciters.pictures(input_size(analyses.layers) or g.exciter_size, g.method)
    found: dict[str, dict[str, ActivationGroups]] = {im.slug: {} for im in images}
    for layer in tqdm(g.layers, desc="activation groups", unit="layer", disable=None):
        split = analyses.activation_groups(images, layer, {im.slug: activations[im.slug][layer] for im in images})
        vectors = [d for s in split.values() for d in s.directions if d.any()]
        rendered = iter(analyses.direction_exciters(layer, vectors, params, f"group exciters {layer}") if vectors else [])
        blank = Exciter(np.full((params.size, params.size, 3), 128, np.uint8), 0.0, 0.0)
        for slug, s in split.items():
            exciters = tuple(next(rendered) if d.any() else blank for d in s.directions)
            found[slug][layer] = dataclasses.replace(s, exciters=exciters)
    return found


def _classes(config: Config, analyses: Analyses, example_files: list[Path]) -> tuple[ClassConcepts, ...]:
    """The class pages' concepts (``classes``), each concept with its picture (an exciter of its direction, all
    of a layer's concepts rendered together); nothing, and no stage, unless classes are configured."""
    c = config.classes
    if not c.enabled:
        return ()
    with stage("classes"):
        files = list(dict.fromkeys([*image_files(config), *example_files]))
        labels = folder_classes(_example_names(example_files)) if config.browse.examples_dir else None
        folders: dict[str, list[Path]] = {}
        for path, name in zip(example_files, labels or ()):
            folders.setdefault(name, []).append(path)
        found = analyses.classes(files, folders)
        params = config.exciters.pictures(input_size(analyses.layers) or c.exciter_size, c.method)
        pictures = {layer: iter(analyses.direction_exciters(
            layer, [k.vector for f in found if f.layer == layer for k in f.concepts], params,
            f"concept pictures {layer}")) for layer in dict.fromkeys(f.layer for f in found)}
        return tuple(dataclasses.replace(f, concepts=tuple(dataclasses.replace(k, exciter=next(pictures[f.layer]))
                                                           for k in f.concepts)) for f in found)


def _views(config: Config, analyses: Analyses, images: list[InputImage]) -> dict[str, dict[str, ImageViews]]:
    """Each image's DeepDream and Caricature at ``views.layers``, by image slug and layer."""
    views: dict[str, dict[str, ImageViews]] = {im.slug: {} for im in images}
    for layer in config.views.layers:  # (each layer's views draw their own bar, a step at a time)
        for slug, found in analyses.layer_views(images, layer).items():
            views[slug][layer] = found
    return views


def _unit_result(u: Unit, exciter: Exciter, maps: dict[str, np.ndarray], shown: int, examples: DatasetExamples,
                 names: list[str], **extra) -> UnitResult:
    """The unit's result, its statistics over every image's map, its page showing the first ``shown`` maps."""
    map_stats = {slug: MapStats(float(m.mean()), float(m.max())) for slug, m in maps.items()}
    peak = max(m.max for m in map_stats.values())
    return UnitResult(
        unit=u,
        exciter=exciter,
        maps=dict(list(maps.items())[:shown]),
        map_stats=map_stats,
        stats=UnitStats(float(np.mean([m.mean for m in map_stats.values()])), peak, peak <= 0),
        examples=tuple(
            UnitExample(r + 1, names[i], int(i), float(examples.score[u.channel, r]), int(examples.y[u.channel, r]),
                        int(examples.x[u.channel, r]), examples.maps[u.channel, r])
            for r, i in enumerate(examples.image[u.channel])
        ),
        receptive_field=examples.receptive_field,
        distribution=examples.distributions[u.channel] if examples.distributions else None,
        **extra,
    )


# --- inputs ---------------------------------------------------------------------------------------


def _example_names(files: list[Path]) -> list[str]:
    """Each example's path inside the folder they share."""
    root = Path(os.path.commonpath([p.parent for p in files]))
    return [p.relative_to(root).as_posix() for p in files]


