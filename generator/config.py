"""The site configuration: a typed schema for ``site_config.yaml`` and its loader.

Every section is a frozen dataclass whose fields are the allowed keys. Loading checks
unknown keys (with a suggestion), types and ranges, and raises :class:`GeneratorError`
with one line naming the key, the value and what is allowed. Checks that need the model
(layer names, channel ranges) happen in :mod:`generator.build`, once the model is known.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from generator.directions import parse_direction
from generator.errors import GeneratorError, shown

EXCITER_METHODS = ("gradient_ascent", "lucid")
ATTRIBUTION_METHODS = ("gradcam", "saliency", "smoothgrad", "integrated_gradients", "gradcam_plus_plus", "occlusion")
BASELINES = ("black", "blurred")
OBJECTIVES = ("channel", "neuron")
IMAGE_FORMATS = ("png", "jpeg", "webp")
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class SiteSection:
    """The site's name and front page."""

    # The site's name, in the header and the browser tab.
    title: str = "CNN interpretability report"
    # Shown as "By <author>" on the front page.
    author: str = ""
    # Markdown under the title on the front page.
    description: str = ""
    # Where the site is published (MkDocs' site_url), e.g. https://you.github.io/your-repo/; empty:
    # the address `build --site-url` gives (the Pages workflow passes GitHub's), else none.
    url: str = ""


@dataclass(frozen=True)
class ModelSection:
    # A keras.applications name (vgg16, vgg19, resnet50, mobilenet_v2), the bundled
    # offline model "vgg16-hed", or a path to a user's own ``.keras`` file.
    name: str = "vgg16-hed"
    # "imagenet", "none" (seeded random init) or a path to a weights file; for
    # vgg16-hed "bundled"; ignored for a .keras file.
    weights: str = "imagenet"
    # Seed of the random initialisation (weights: none) and of Keras' random numbers.
    seed: int = 0
    # Input preprocessing for a user's .keras model: caffe, tf, torch or none.
    preprocess: str = "none"
    # Optional text file with one class name a line, for a user's classifier.
    labels: str = ""


@dataclass(frozen=True)
class ImagesSection:
    """The photos the report analyses."""

    # Folder of the photos, relative to the config file.
    dir: str = "images"
    # File names inside ``dir``; empty means every image file there.
    files: tuple[str, ...] = ()
    # Side in pixels that images are resized (centre crop) to before the model sees them.
    size: int = 224
    # The image (a file name from ``files``) that the report shows feature maps and unit maps on.
    composite: str = ""


@dataclass(frozen=True)
class FeatureMapsSection:
    """Grids of every channel of some layers on each image (the lab's part 2)."""

    # Layer names (see: python -m generator layers).
    layers: tuple[str, ...] = ()
    # Maps in one row of a grid.
    per_row: int = 16


@dataclass(frozen=True)
class ExciterParams:
    """How an exciter (activation-maximising image) is made; part of its cache key."""

    # "gradient_ascent" (the lab's recipe) or "lucid" (Lucid's: Fourier image, decorrelated colour, transforms, Adam).
    method: str = "gradient_ascent"
    # Optimisation steps.
    steps: int = 40
    # Gradient-ascent step on the 0..255 image, after dividing the gradient by its RMS.
    step_size: float = 1.0
    # Side of the exciter image in pixels.
    size: int = 150
    # Seed of the start image and of Lucid's transforms; the same seed gives the same image.
    seed: int = 0
    # "channel": the channel's mean over positions; "neuron": its value at the centre position.
    objective: str = "channel"
    # Find what lowers the unit instead of what raises it.
    negative: bool = False
    # Units optimised together in one compiled step.
    batch_size: int = 16
    # Arithmetic of the network during optimisation: "auto" is bfloat16 where the CPU computes it
    # natively (AVX512-BF16 or AMX, about twice as fast), else float32.
    precision: str = "auto"


@dataclass(frozen=True)
class ExciterGridSection:
    """The lab's grid of exciters of a layer's first channels."""

    # Conv layer of the grid; empty: no grid.
    layer: str = ""
    # Channels in the grid, from 0.
    count: int = 64
    # Side of each exciter in pixels.
    size: int = 64
    # Exciters in one row.
    per_row: int = 8


@dataclass(frozen=True)
class ExcitersSection(ExciterParams):
    """The exciter settings of the featured units (ExciterParams' fields), plus the lab's grid."""

    grid: ExciterGridSection = field(default_factory=ExciterGridSection)
    # Exciters of directions, vectors over a layer's channels, shown on the model page:
    # "<layer>: <weight>*<channel> + ..." (for example "block3_conv2: 0.5*8 + 0.5*12") or "<layer>: <file>.npy".
    directions: tuple[str, ...] = ()
    # Exciters per featured unit that differ from one another (Lucid's diversity objective, Lucid's
    # recipe), shown side by side on the unit page; 0: none.
    diversity: int = 0
    # How strongly those exciters are pushed apart: the weight of their mean Gram-matrix cosine
    # similarity against the unit's activation.
    diversity_weight: float = 10.0

    def params(self, size: int | None = None) -> ExciterParams:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(ExciterParams)}
        return ExciterParams(**{**values, "size": self.size if size is None else size})


@dataclass(frozen=True)
class ViewsSection:
    """Microscope's per-layer views of every image: DeepDream and Caricature."""

    # Layers to show each image's DeepDream and Caricature at; empty: none.
    layers: tuple[str, ...] = ()
    # DeepDream: steps of the lab's normalised gradient, from the image, up the layer's squared activations.
    deepdream_steps: int = 12
    # DeepDream: the step on the 0..255 image after dividing the gradient by its RMS.
    deepdream_step_size: float = 2.0
    # Caricature: Adam steps from noise (Lucid's image) towards the image's activations at the layer.
    caricature_steps: int = 32


@dataclass(frozen=True)
class GroupsSection:
    """Lucid's Building Blocks: each image's activations at a layer split into groups (NMF)."""

    # Layers to split each image's activations at; empty: none.
    layers: tuple[str, ...] = ()
    # Groups per image and layer.
    count: int = 4
    # Side of each group's exciter (of its direction over the channels), in pixels.
    exciter_size: int = 64
    # The groups' exciter method, if not exciters.method.
    method: str = "lucid"


@dataclass(frozen=True)
class UnitSection:
    """A featured unit: full-size exciter, maps on every image, its circuit."""

    # Conv layer name.
    layer: str
    # Channel index, from 0.
    channel: int
    # Markdown, or a path to a .md file (relative to the config file).
    note: str = ""
    # This unit's exciter method, if not exciters.method.
    method: str = ""


@dataclass(frozen=True)
class CircuitsSection:
    """Which units feed the featured units, by weight."""

    # Inputs shown per circuit, strongest first.
    top_k: int = 6
    # An earlier conv layer whose units feed the featured units through the layers between
    # (Distill's expanded weights); empty: only the adjacent layer's direct weights.
    earlier_layer: str = ""
    # Side of the expanded-weight window around the target's centre; 0: the whole receptive field.
    window: int = 0


@dataclass(frozen=True)
class BrowseSection:
    """Microscope-style browsing: every unit of these layers gets its own page."""

    # Layer names, or "all" for every conv layer.
    layers: tuple[str, ...] = ()
    # The exciters on layer pages and unit cards: small and quick, unlike the featured units'.
    thumbnail_size: int = 64
    # Optimisation steps of each thumbnail.
    thumbnail_steps: int = 40
    # The thumbnails' exciter method, if not exciters.method.
    thumbnail_method: str = ""
    # Folder of images searched for each unit's dataset examples; empty: the configured images.
    examples_dir: str = ""
    # Dataset examples shown per unit.
    examples_top_n: int = 6
    # Incoming and outgoing units listed on a unit page.
    top_k: int = 6
    # Maps in a browsed unit's strip of its activation on the images: the first this many images; 0: every image.
    # Featured units show every image.
    unit_maps: int = 0
    # Format of the unit pages' pictures (exciters, activation maps, dataset examples): "png" (lossless; the
    # strip of maps stays JPEG), "jpeg" or "webp" (a whole VGG16 site: 0.26 GB instead of 0.68). Charts stay PNG.
    image_format: str = "png"
    # Quality of those pictures that are JPEG or WebP, from 1 to 100.
    image_quality: int = 85


@dataclass(frozen=True)
class FaithfulnessSection:
    """Whether each map ranks first the pixels its target's score depends on (Deletion, Insertion, µ-Fidelity)."""

    # Score every map, and a random ranking as the floor.
    enabled: bool = True
    # Deletion and insertion: the pixels removed (or put back), highest first, in this many equal steps.
    steps: int = 8
    # µ-Fidelity: random subsets of the pixels (cells of a 9 x 9 grid, each with chance 20%) set to the baseline.
    samples: int = 32


@dataclass(frozen=True)
class AttributionSection:
    """Where in each photo the evidence for a prediction, a unit or the output comes from."""

    # Methods, each a map over every image: gradcam, saliency, smoothgrad, integrated_gradients,
    # gradcam_plus_plus, occlusion (a patch slid over the photo: one forward pass a patch); empty: none.
    methods: tuple[str, ...] = ATTRIBUTION_METHODS[:4]
    # Grad-CAM's conv layer for class and output targets; empty: the model's last conv layer.
    layer: str = ""
    # Classifiers: explain each image's top 1 (or up to top 5) classes; 0: none.
    classes: int = 1
    # Explain every featured unit (its mean activation), and show its Grad-CAM on its dataset examples.
    units: bool = True
    # Models that draw a map (the default edge model): explain the output map's mean.
    output: bool = True
    # SmoothGrad's noisy copies per image.
    samples: int = 16
    # SmoothGrad's noise: its standard deviation as a fraction of the image's value range.
    noise: float = 0.15
    # Integrated Gradients' steps on the path from the baseline to the image.
    steps: int = 32
    # Integrated Gradients' start, what Occlusion and faithfulness set pixels to: "black" or "blurred" (the photo blurred).
    baseline: str = "black"
    # Seed of SmoothGrad's noise and of the sanity check's re-initialised weights.
    seed: int = 0
    # Adebayo et al.'s sanity check: each method's map on a copy with re-initialised weights, rank-correlated.
    sanity_check: bool = True
    # Arithmetic of the network: "auto" is bfloat16 where the CPU computes it natively (about 2x faster), else float32.
    precision: str = "auto"
    # How faithful each map is, beside a random ranking: deletion and insertion curves, µ-Fidelity.
    faithfulness: FaithfulnessSection = field(default_factory=FaithfulnessSection)


@dataclass(frozen=True)
class NotesSection:
    """The author's notes, one per part of the lab report: Markdown or a path to a .md file."""

    # Before part 1.
    introduction: str = ""
    # Beside the predictions (part 1).
    predictions: str = ""
    # Beside the feature maps (part 2).
    feature_maps: str = ""
    # Beside each featured unit's exciter (part 3), unless the unit has its own note.
    exciter: str = ""
    # Beside the incoming circuits (part 4).
    circuit: str = ""
    # Beside the inputs' exciters and maps (part 5).
    inputs: str = ""
    # Beside the attribution maps (part 6: where the evidence is).
    attribution: str = ""


@dataclass(frozen=True)
class Config:
    """site_config.yaml: the model, the photos, the units to feature and browse, and the author's notes."""

    site: SiteSection = field(default_factory=SiteSection)
    model: ModelSection = field(default_factory=ModelSection)
    images: ImagesSection = field(default_factory=ImagesSection)
    feature_maps: FeatureMapsSection = field(default_factory=FeatureMapsSection)
    exciters: ExcitersSection = field(default_factory=ExcitersSection)
    # The featured units: a list of layer, channel and an optional note and method.
    units: tuple[UnitSection, ...] = ()
    circuits: CircuitsSection = field(default_factory=CircuitsSection)
    browse: BrowseSection = field(default_factory=BrowseSection)
    attribution: AttributionSection = field(default_factory=AttributionSection)
    views: ViewsSection = field(default_factory=ViewsSection)
    groups: GroupsSection = field(default_factory=GroupsSection)
    notes: NotesSection = field(default_factory=NotesSection)
    # Directory that relative paths in the config are resolved against.
    root: Path = Path(".")

    def path(self, value: str) -> Path:
        """A config path made absolute against the config file's folder."""
        return resolve_path(value, self.root)

    def folder(self, value: str, key: str) -> Path:
        """The folder a config path names; one line when it is missing or is not a folder."""
        path = self.path(value)
        if path.is_dir():
            return path
        problem = "is a file, not a folder" if path.exists() else "not found"
        raise GeneratorError(f"config key {key!r}: folder {shown(value)} {problem}")

    def note(self, text: str) -> str:
        """The Markdown of a note: inline text, or the contents of the .md file it names."""
        if text.strip().endswith(".md") and "\n" not in text.strip():
            p = self.path(text.strip())
            return read_text(p, f"note file {shown(text.strip())}")
        return text


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or undecodable file is one line starting with ``what``."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GeneratorError(f"{what} not found") from None
    except UnicodeDecodeError as e:
        raise GeneratorError(f"{what} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except ValueError:  # an embedded NUL character
        raise GeneratorError(f"{what} is not a valid file name") from None
    except OSError as e:
        raise GeneratorError(f"{what}: cannot read it ({e.strerror})") from None


def resolve_path(value: str, root: Path) -> Path:
    """``value`` (``~`` expanded) made absolute against ``root`` unless it already is."""
    return root / Path(value).expanduser()  # an absolute path replaces root


@dataclass(frozen=True)
class Range:
    """Numbers from ``low`` (or above it, when ``exclusive``) to ``high`` (None: no upper bound)."""

    low: float
    high: float | None = None
    exclusive: bool = False

    def allows(self, value: float) -> bool:
        above = value > self.low if self.exclusive else value >= self.low
        return above and (self.high is None or value <= self.high)

    def describe(self, kind: str) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.exclusive:
            return f"{kind} above {low}" + ("" if self.high is None else f" and at most {high}")
        if self.high is None:
            return f"{kind} {low} or above"
        return f"{kind} from {low} to {high}"

    def schema(self) -> dict:
        bounds = {"exclusiveMinimum" if self.exclusive else "minimum": self.low}
        return bounds if self.high is None else {**bounds, "maximum": self.high}


def _number(value: float | None) -> str:
    """A bound as people write it: 4294967295, 0.5."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class OneOf:
    """One of ``values``; with ``inherit``, also empty (take the section's setting)."""

    values: tuple[str, ...]
    inherit: bool = False

    def allows(self, value: str) -> bool:
        return value in self.values or (self.inherit and value == "")

    def describe(self, kind: str) -> str:
        return "one of " + ", ".join(self.values)

    def schema(self) -> dict:
        return {"enum": [*([""] if self.inherit else []), *self.values]}


@dataclass(frozen=True)
class WebAddress:
    """An http:// or https:// address, or nothing."""

    def allows(self, value: str) -> bool:
        return value == "" or _is_web_address(value)

    def describe(self, kind: str) -> str:
        return "an http:// or https:// address, or nothing"

    def schema(self) -> dict:
        return {"pattern": r"^(https?://[^\s/]+\S*)?$"}


# What a key allows beyond its type, by key path (``units[2].channel`` -> ``units.channel``).
RULES: dict[str, Range | OneOf | WebAddress] = {
    "site.url": WebAddress(),
    "images.size": Range(16, 1024),
    "feature_maps.per_row": Range(1, 64),
    "exciters.method": OneOf(EXCITER_METHODS),
    "units.method": OneOf(EXCITER_METHODS, inherit=True),
    "browse.thumbnail_method": OneOf(EXCITER_METHODS, inherit=True),
    "exciters.precision": OneOf(PRECISIONS),
    "exciters.objective": OneOf(OBJECTIVES),
    "exciters.steps": Range(0, 100_000),
    "exciters.step_size": Range(0, 1000, exclusive=True),
    "exciters.seed": Range(0, 2**32 - 1),
    "model.seed": Range(0, 2**32 - 1),
    "exciters.size": Range(16, 1024),
    "exciters.batch_size": Range(1, 4096),
    "exciters.grid.count": Range(0, 4096),
    "exciters.diversity": Range(0, 16),
    "exciters.diversity_weight": Range(0, exclusive=True),
    "exciters.grid.size": Range(16, 512),
    "exciters.grid.per_row": Range(1, 64),
    "units.channel": Range(0),
    "circuits.top_k": Range(1, 64),
    "circuits.window": Range(0, 256),
    "browse.thumbnail_size": Range(16, 512),
    "browse.thumbnail_steps": Range(0, 100_000),
    "browse.examples_top_n": Range(1, 100),
    "browse.top_k": Range(1, 64),
    "browse.unit_maps": Range(0, 10_000),
    "browse.image_format": OneOf(IMAGE_FORMATS),
    "browse.image_quality": Range(1, 100),
    "views.deepdream_steps": Range(0, 10_000),
    "views.deepdream_step_size": Range(0, exclusive=True),
    "views.caricature_steps": Range(0, 10_000),
    "groups.count": Range(1, 10),
    "groups.exciter_size": Range(16, 512),
    "groups.method": OneOf(EXCITER_METHODS, inherit=True),
    "model.preprocess": OneOf(("caffe", "tf", "torch", "none")),
    "attribution.methods": OneOf(ATTRIBUTION_METHODS),
    "attribution.classes": Range(0, 5),
    "attribution.samples": Range(1, 1024),
    "attribution.noise": Range(0, 1, exclusive=True),
    "attribution.steps": Range(1, 1024),
    "attribution.baseline": OneOf(BASELINES),
    "attribution.precision": OneOf(PRECISIONS),
    "attribution.faithfulness.steps": Range(1, 1024),
    "attribution.faithfulness.samples": Range(2, 1024),
}


def _is_web_address(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in value)


def with_site_url(config: Config, url: str) -> Config:
    """``config`` with ``site.url`` set to ``url`` where the config file leaves it empty (``build --site-url``)."""
    if config.site.url or not url:
        return config
    if not _is_web_address(url):
        raise GeneratorError(f"--site-url: got {url!r}, expected an http:// or https:// address")
    return dataclasses.replace(config, site=dataclasses.replace(config.site, url=url))


def _describe(tp: object) -> str:
    if typing.get_origin(tp) is tuple:
        return "a list of " + _describe(typing.get_args(tp)[0]) + "s"
    return {str: "text", int: "an integer", float: "a number", bool: "true or false"}[tp]


def _convert(value: object, tp: object, key: str) -> object:
    """Check ``value`` against the type ``tp`` and return it converted (lists to tuples)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise GeneratorError(f"config key {key!r}: got {shown(value)}, expected a mapping")
        return _build(tp, value, key)
    if origin is tuple:
        if isinstance(value, (str, dict)):  # one item for a list of one
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise GeneratorError(f"config key {key!r}: got {shown(value)}, expected {_describe(tp)}")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(v, item, key) for v in value)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        value = str(value) if ok else value
    else:  # pragma: no cover - schema error, not user error
        raise TypeError(f"unsupported schema type {tp!r}")
    if not ok:
        # YAML reads yes/no/on/off as booleans and 2024-01-31 as a date: quoting keeps them text.
        quote = "; put it in quotes to keep it as text" if tp is str and isinstance(value, (bool, datetime.date)) else ""
        raise GeneratorError(f"config key {key!r}: got {shown(value)}, expected {_describe(tp)}{quote}")
    rule = RULES.get(rule_key(key))
    if rule and not rule.allows(value):
        raise GeneratorError(f"config key {key!r}: got {shown(value)}, expected {rule.describe(_describe(tp))}")
    return value


def rule_key(key: str) -> str:
    """``units[2].channel`` -> ``units.channel``."""
    return ".".join(part.split("[")[0] for part in key.split("."))


def _build(cls: type, data: dict, prefix: str) -> object:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "root"}
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in fields:
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise GeneratorError(f"config key {shown(key)} is not known{hint}; allowed here: {', '.join(fields)}")
        tp = hints[name]
        if isinstance(tp, types.UnionType):  # pragma: no cover - not used by the schema
            raise TypeError(tp)
        if value is None:
            continue
        if typing.get_origin(tp) is tuple and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            item_cls = typing.get_args(tp)[0]
            if not isinstance(value, list):
                raise GeneratorError(f"config key {key!r}: got {shown(value)}, expected a list of mappings")
            kwargs[name] = tuple(_unit_item(item_cls, v, f"{key}[{i}]") for i, v in enumerate(value))
        else:
            kwargs[name] = _convert(value, tp, key)
    missing = [
        n for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise GeneratorError(f"config key {prefix + '.' + missing[0]!r} is required")
    return cls(**kwargs)


def _unit_item(cls: type, value: object, key: str) -> object:
    if not isinstance(value, dict):
        raise GeneratorError(f"config key {key!r}: got {shown(value)}, expected a mapping with layer and channel")
    return _build(cls, value, key)


def parse_config(data: object, root: Path) -> Config:
    """Build a :class:`Config` from already-parsed YAML data."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise GeneratorError(f"config: the top level must be a mapping of sections, got {type(data).__name__}")
    config = _build(Config, data, "")
    config = dataclasses.replace(config, root=root)
    _check_lists(config)
    _check_paths(config)
    for i, text in enumerate(config.exciters.directions):
        parse_direction(text, f"exciters.directions[{i}]")
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate ``site_config.yaml``; every problem is one :class:`GeneratorError` line."""
    path = Path(path)
    text = read_text(path, f"config file {str(path)!r}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise GeneratorError(f"config file {str(path)!r} is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise GeneratorError(f"config file {str(path)!r} is nested too deeply to be a site config") from None
    return parse_config(data, path.resolve().parent)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def image_files(config: Config) -> list[Path]:
    """The configured image paths, in config order (or sorted when ``files`` is empty)."""
    folder = config.folder(config.images.dir, "images.dir")
    if config.images.files:
        return [folder / name for name in config.images.files]
    return list_images(folder, recursive=False)


def list_images(folder: Path, recursive: bool) -> list[Path]:
    """Image files in ``folder`` by suffix, sorted; hidden files and folders are skipped."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in found
        if p.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _check_paths(config: Config) -> None:
    """Files the config names must exist before any model work starts."""
    labels = config.model.labels
    if labels and not config.path(labels).is_file():
        problem = "is a folder, not a file" if config.path(labels).is_dir() else "not found"
        raise GeneratorError(f"config key 'model.labels': file {shown(labels)} {problem}")
    for text in [*vars(config.notes).values(), *(u.note for u in config.units)]:
        config.note(text)
    files = image_files(config)
    if not files:
        raise GeneratorError(f"config key 'images.dir': no image files in {shown(config.images.dir)}")
    for name, p in zip(config.images.files, files):
        if not p.is_file():
            raise GeneratorError(f"config key 'images.files': image {shown(name)} not found in {shown(config.images.dir)}")
    names = [p.name for p in files]
    if config.images.composite and config.images.composite not in names:
        raise GeneratorError(
            f"config key 'images.composite': {shown(config.images.composite)} is not one of the images ({_listed(names)})"
        )


def _listed(names: list[str], limit: int = 5) -> str:
    """The first ``limit`` names, comma-separated, and how many there are when that is more."""
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(shown(n) for n in names[:limit]) + more


def _repeat(items: list) -> tuple[int, int] | None:
    """``(i, j)``: item ``i`` is a repeat of item ``j``, for the first repeat; None when all differ."""
    first: dict = {}
    for i, item in enumerate(items):
        j = first.setdefault(item, i)
        if j != i:
            return i, j
    return None


def _check_lists(config: Config) -> None:
    """Each featured unit, image and layer is listed once; ``all`` in browse.layers stands alone."""
    repeat = _repeat([(u.layer, u.channel) for u in config.units])
    if repeat:
        i, first = repeat
        raise GeneratorError(
            f"config key 'units[{i}]': unit {shown(config.units[i].layer)} channel {config.units[i].channel} is already "
            f"units[{first}]; list each unit once"
        )
    for key, names in (("images.files", config.images.files), ("feature_maps.layers", config.feature_maps.layers),
                       ("browse.layers", config.browse.layers)):
        repeat = _repeat(names)
        if repeat:
            i, first = repeat
            raise GeneratorError(f"config key '{key}[{i}]': {shown(names[i])} is already {key}[{first}]")
    if "all" in config.browse.layers and len(config.browse.layers) > 1:
        raise GeneratorError(
            "config key 'browse.layers': 'all' already means every conv layer; give either 'all' or a list of layer names"
        )
