"""A site built by hand from typed results (no Keras, no files), for the page snapshot tests.

Not a test module: ``tests/test_page_snapshots.py`` renders it, and ``python tests/fake_site.py``
rewrites the snapshots in ``tests/snapshots/`` after a deliberate change to the templates.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
from pathlib import Path

import numpy as np

from generator.analysis.distribution import Tally
from generator.config import Config, ExcitersSection, FeatureMapsSection, NotesSection, SiteSection, ViewsSection
from generator.geometry import ReceptiveField
from generator.results import (
    ActivationGroups, Attribution, Circuit, CircuitEdge, CircuitInput, CircuitWeights, ClassEffects, ClassScore,
    DirectionExciter, Exciter, ExciterGrid, Faithfulness, FaithfulnessScores, ImageResult, ImageViews, InputImage,
    LayerInfo, Link, MapStats, Prediction, RecipeQuality, Site, Unit, UnitDistribution, UnitExample, UnitLabel,
    UnitResult, UnitStats,
)

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
KINDS = ("classifier", "edge-model")


def _config() -> Config:
    return Config(
        site=SiteSection(title='Fake: "quotes" & colons', author="A. Author", description="A hand-built site."),
        feature_maps=FeatureMapsSection(layers=("c1",)),
        exciters=ExcitersSection(method="lucid", steps=7, size=8),
    )


def _exciter(seed: int) -> Exciter:
    rng = np.random.default_rng(seed)
    return Exciter(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), 2.5 + seed, 0.25)


def _inputs(layer: str, channels: list[int]) -> tuple[CircuitInput, ...]:
    return tuple(CircuitInput(Unit(layer, c), r + 1, 1.0 / (r + 1), 0.75 / (r + 1), -0.25 / (r + 1))
                 for r, c in enumerate(channels))


def fake_site(kind: str) -> tuple[Site, Config]:
    """``classifier``: top-5 predictions and a supported circuit with expanded weights;
    ``edge-model``: an output map, a circuit that cannot be read off the weights, no grid."""
    layers = (
        LayerInfo("image", "InputLayer", (None, None, None, 3), 0, 3),
        LayerInfo("c0", "Conv2D", (None, None, None, 2), 56, 2, ("image",)),
        LayerInfo("c1", "Conv2D", (None, None, None, 3), 57, 3, ("c0",)),
        LayerInfo("c2", "Conv2D", (None, None, None, 2), 56, 2, ("c1",)),
    )
    images = []
    for i, name in enumerate(["cat.jpg", "dog.png"]):
        pixels = np.full((16, 16, 3), 40 * i, np.uint8)
        if kind == "classifier":
            prediction = Prediction(top5=tuple(ClassScore(r + 1, 10 + r, f"class {r}", 0.5 / (r + 1)) for r in range(5)))
        else:
            prediction = Prediction(output_map=np.full((16, 16), 0.25 * (i + 1), np.float32))
        activations = {"c1": np.full((4, 4, 3), float(i), np.float32), "c2": np.full((4, 4, 2), float(i), np.float32)}
        views = {"c1": ImageViews(Exciter(pixels, 2.5 + i, 1.0), Exciter(pixels, 0.75, 0.125))} if kind == "classifier" else {}
        groups = {"c1": ActivationGroups(np.ones((2, 4, 4), np.float32), np.array([[0, 2, 1], [1, 0, 0]], np.float32),
                                         0.125, 0.5, (_exciter(9), _exciter(10)))} if kind == "classifier" else {}
        images.append(ImageResult(InputImage(Path(name).stem, name, pixels, f"digest{i}"), prediction, activations, views,
                                  groups))

    featured = Unit("c2", 1)
    if kind == "classifier":
        circuit = Circuit(
            featured,
            CircuitWeights(("c1",), True, inputs=_inputs("c1", [2, 0, 1]), top_kernels=np.ones((3, 3, 2), np.float32)),
            CircuitWeights(("c0",), True, inputs=_inputs("c0", [1, 0]), top_kernels=np.ones((5, 5, 2), np.float32)),
            (CircuitEdge(Unit("c0", 1), Unit("c1", 2), 0.5, -0.25),),
        )
    else:
        circuit = Circuit(featured, CircuitWeights((), False, "No single conv layer feeds c2 directly"))
    units = {}
    for layer, count in (("c1", 3), ("c2", 2)):
        if kind == "classifier":
            effects = ClassEffects(True, classes=("cat", "dog", "fox"), images=2,
                                   effects=np.arange(3 * count, dtype=np.float64).reshape(3, count) - 2)
        else:
            effects = ClassEffects(False, "The model's output is a map, not classes: no unit raises or lowers a class")
        for c in range(count):
            u = Unit(layer, c)
            maps = {im.image.slug: im.activations[layer][..., c] for im in images}
            stats = {slug: MapStats(float(m.mean()), float(m.max())) for slug, m in maps.items()}
            units[u] = UnitResult(
                unit=u,
                exciter=_exciter(c),
                maps=maps,
                map_stats=stats,
                stats=UnitStats(0.5, 1.0, c == 2),
                incoming=(Link(Unit("c1", 0), 1.5),) if layer == "c2" else (),
                outgoing=(Link(Unit("c2", 1), 0.75),) if layer == "c1" else (),
                examples=(UnitExample(1, "sub/cat.jpg", 0, 3.5, 1, 2, np.ones((4, 4), np.float32)),),
                receptive_field=ReceptiveField(5, 2, 1.0),
                featured=u == featured or (kind == "classifier" and u in {w.unit for w in circuit.direct.top}),
                exciter_map=np.ones((4, 4), np.float32),
                example_gradcam=Attribution("gradcam", str(u), np.ones((1, 16, 16), np.float32), np.ones(1), unit=u,
                                            layer="c1") if u == featured and kind == "classifier" else None,
                circuit=circuit if u == featured else None,
                note="This unit *likes* stripes." if u == featured else "",
                diverse=(_exciter(7), _exciter(8)) if u == featured and kind == "classifier" else (),
                recipes={"gradient_ascent": _exciter(11), "lucid": _exciter(12)} if u == featured else {},
                recipe_quality={"gradient_ascent": RecipeQuality(1.25, 0.875), "lucid": RecipeQuality(math.nan, 0.5)}
                if u == featured else {},
                distribution=_distribution(c),
                class_effects=effects,
                label=(UnitLabel("sub (1 of 1)", "examples", "sub", 1.0) if layer == "c1" else
                       UnitLabel("raises fox", "class effect", "fox")) if kind == "classifier" else None,
            )
    grid = ExciterGrid("c1", (Unit("c1", 0), Unit("c1", 1)), (_exciter(0), _exciter(1))) if kind == "classifier" else None
    maps = np.zeros((2, 16, 16), np.float32)
    attributions = () if kind != "classifier" else (
        Attribution("gradcam", "top-1 class", maps, np.array([0.5, 0.25]), classes=(10, 11), layer="c2",
                    settings="Grad-CAM at c2", sanity=np.array([0.125, 0.75]), randomised=("c2", "c1", "c0")),
        Attribution("integrated_gradients", "top-1 class", maps, np.array([0.5, 0.25]), classes=(10, 11),
                    settings="Integrated Gradients: 8 steps from a black baseline", sanity=np.array([0.25, np.nan]),
                    randomised=("c2", "c1", "c0"), baseline_scores=np.array([0.125, 0.0])),
        Attribution("gradcam", "c2:1", maps, np.array([1.5, 2.5]), unit=featured, layer="c1", settings="Grad-CAM at c1"),
    )
    faithfulness = () if kind != "classifier" else (
        Faithfulness("top-1 class", (_faithful("gradcam", 0.25), _faithful("integrated_gradients", 0.5)),
                     _faithful("random", 0.5), "black", 8),
        Faithfulness("c2:1", (_faithful("gradcam", np.nan),), _faithful("random", np.nan), "black", 8),
    )
    site = Site(
        model="fake",
        description="A fake model.",
        layers=layers,
        images=tuple(images),
        composite=images[0],
        featured=(featured,),
        units=units,
        example_names=EXAMPLE_NAMES,
        grid=grid,
        directions=(DirectionExciter("c1: 0.5*1 - 0.25*2", "c1", np.array([0, 0.5, -0.25], np.float32), _exciter(5)),
                    DirectionExciter("c0: w.npy", "c0", np.array([1, 0], np.float32), _exciter(6)))
        if kind == "classifier" else (),
        notes={**vars(NotesSection()), "introduction": "Why this report.", "circuit": "About the circuit.",
               "attribution": "Edges carry the evidence."},
        attributions=attributions,
        faithfulness=faithfulness,
    )
    config = _config()
    if kind == "classifier":
        config = dataclasses.replace(config, views=ViewsSection(layers=("c1",)))
    return site, config


EXAMPLE_NAMES = ("sub/cat.jpg", "sub/dog.jpg", "other/fox.jpg", "other/owl.jpg")


def _distribution(channel: int) -> UnitDistribution:
    """Channel ``channel``'s distribution over the 4 examples: maxima 0, 0.5, 1 and 2 times (channel + 1)."""
    tally = Tally.empty(1, seed=0)
    peak = np.array([[0.0], [0.5], [1.0], [2.0]], np.float32) * (channel + 1)
    tally.add(0, peak, peak / 2, np.minimum(peak, 0), np.zeros((4, 1), np.int64))
    return tally.unit(0, 4)


def render(kind: str, out: Path) -> list[Path]:
    """The fake site's pages rendered into ``out``; returns the Markdown and YAML files, relative to ``out``."""
    from generator.pages import render_site

    site, config = fake_site(kind)
    render_site(out, site, config, out / "no-hand-written-pages")
    return sorted(p.relative_to(out) for p in out.rglob("*") if p.suffix in (".md", ".yml"))


def _faithful(method: str, fall: float) -> FaithfulnessScores:
    """Two images' curves over 4 steps: falling by ``fall`` a step until 0 (NaN: undefined on both images)."""
    deletion = np.clip(1 - fall * np.arange(5), 0, 1)[None].repeat(2, 0)
    return FaithfulnessScores(method, deletion, 1 - deletion, np.full(2, 0.5 * fall), np.full(2, 1 - 0.5 * fall),
                              np.array([fall, np.nan]))


def update_snapshots() -> None:
    for kind in KINDS:
        target = SNAPSHOTS / kind
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        scratch = SNAPSHOTS / f".{kind}-scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        for page in render(kind, scratch):
            (target / page).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(scratch / page, target / page)
        shutil.rmtree(scratch)
        print(f"snapshots of {kind} written to {target}", file=sys.stderr)


if __name__ == "__main__":
    update_snapshots()
