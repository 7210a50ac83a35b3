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

import yaml

from generator.errors import GeneratorError, shown

EXCITER_METHODS = ("gradient_ascent", "lucid")
OBJECTIVES = ("channel", "neuron")
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class SiteSection:
    title: str = "CNN interpretability report"
    author: str = ""
    description: str = ""


@dataclass(frozen=True)
class ModelSection:
    # A keras.applications name (vgg16, vgg19, resnet50, mobilenet_v2), the bundled
    # offline model "vgg16-hed", or a path to a user's own ``.keras`` file.
    name: str = "vgg16-hed"
    # "imagenet", "none" (seeded random init) or a path to a weights file; for
    # vgg16-hed "bundled"; ignored for a .keras file.
    weights: str = "imagenet"
    seed: int = 0
    # Input preprocessing for a user's .keras model: caffe, tf, torch or none.
    preprocess: str = "none"
    # Optional text file with one class name a line, for a user's classifier.
    labels: str = ""


@dataclass(frozen=True)
class ImagesSection:
    dir: str = "images"
    # File names inside ``dir``; empty means every image file there.
    files: tuple[str, ...] = ()
    # Side in pixels that images are resized (centre crop) to before the model sees them.
    size: int = 224
    # The image (a file name from ``files``) that the report shows feature maps and unit maps on.
    composite: str = ""


@dataclass(frozen=True)
class FeatureMapsSection:
    layers: tuple[str, ...] = ()
    per_row: int = 16


@dataclass(frozen=True)
class ExciterParams:
    """How an exciter (activation-maximising image) is made; part of its cache key."""

    method: str = "gradient_ascent"
    steps: int = 40
    step_size: float = 1.0
    size: int = 150
    seed: int = 0
    objective: str = "channel"
    negative: bool = False
    # Units optimised together in one compiled step.
    batch_size: int = 16
    # Arithmetic of the network during optimisation: "auto" is bfloat16 where the CPU computes it
    # natively (AVX512-BF16 or AMX, about twice as fast), else float32.
    precision: str = "auto"


def resolve_precision(precision: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``auto`` -> ``bfloat16`` where the CPU has native bfloat16 arithmetic (AVX512-BF16, AMX), else ``float32``."""
    if precision != "auto":
        return precision
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return "float32"
    return "bfloat16" if {"avx512_bf16", "amx_bf16"} & flags else "float32"


def exciter_key(params: ExciterParams) -> dict:
    """What an exciter depends on: the parameters with the precision resolved, without the batch size."""
    values = dataclasses.asdict(params)
    values["precision"] = resolve_precision(params.precision)
    del values["batch_size"]
    return values


@dataclass(frozen=True)
class ExciterGridSection:
    layer: str = ""
    count: int = 64
    size: int = 64
    per_row: int = 8


@dataclass(frozen=True)
class ExcitersSection(ExciterParams):
    """The exciter settings of the featured units (ExciterParams' fields), plus the lab's grid."""

    grid: ExciterGridSection = field(default_factory=ExciterGridSection)

    def params(self, size: int | None = None) -> ExciterParams:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(ExciterParams)}
        return ExciterParams(**{**values, "size": self.size if size is None else size})


@dataclass(frozen=True)
class UnitSection:
    layer: str
    channel: int
    # Markdown, or a path to a .md file (relative to the config file).
    note: str = ""
    # This unit's exciter method, if not exciters.method.
    method: str = ""


@dataclass(frozen=True)
class CircuitsSection:
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
    thumbnail_steps: int = 40
    # The thumbnails' exciter method, if not exciters.method.
    thumbnail_method: str = ""
    # Folder of images searched for each unit's dataset examples; empty: the configured images.
    examples_dir: str = ""
    examples_top_n: int = 6
    # Incoming and outgoing units listed on a unit page.
    top_k: int = 6


@dataclass(frozen=True)
class NotesSection:
    """The author's notes, one per part of the lab report: Markdown or a path to a .md file."""

    introduction: str = ""
    predictions: str = ""
    feature_maps: str = ""
    exciter: str = ""
    circuit: str = ""
    inputs: str = ""


@dataclass(frozen=True)
class Config:
    site: SiteSection = field(default_factory=SiteSection)
    model: ModelSection = field(default_factory=ModelSection)
    images: ImagesSection = field(default_factory=ImagesSection)
    feature_maps: FeatureMapsSection = field(default_factory=FeatureMapsSection)
    exciters: ExcitersSection = field(default_factory=ExcitersSection)
    units: tuple[UnitSection, ...] = ()
    circuits: CircuitsSection = field(default_factory=CircuitsSection)
    browse: BrowseSection = field(default_factory=BrowseSection)
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


# Checks beyond types: key path -> (predicate, description of what is allowed).
_RULES: dict[str, tuple[typing.Callable[[object], bool], str]] = {
    "images.size": (lambda v: 16 <= v <= 1024, "an integer from 16 to 1024"),
    "feature_maps.per_row": (lambda v: 1 <= v <= 64, "an integer from 1 to 64"),
    "exciters.method": (lambda v: v in EXCITER_METHODS, "one of " + ", ".join(EXCITER_METHODS)),
    "units.method": (lambda v: v in ("", *EXCITER_METHODS), "one of " + ", ".join(EXCITER_METHODS)),
    "browse.thumbnail_method": (lambda v: v in ("", *EXCITER_METHODS), "one of " + ", ".join(EXCITER_METHODS)),
    "exciters.precision": (lambda v: v in PRECISIONS, "one of " + ", ".join(PRECISIONS)),
    "exciters.objective": (lambda v: v in OBJECTIVES, "one of " + ", ".join(OBJECTIVES)),
    "exciters.steps": (lambda v: 0 <= v <= 100_000, "an integer from 0 to 100000"),
    "exciters.step_size": (lambda v: 0 < v <= 1000, "a number above 0 and at most 1000"),
    "exciters.seed": (lambda v: 0 <= v < 2**32, "an integer from 0 to 4294967295"),
    "model.seed": (lambda v: 0 <= v < 2**32, "an integer from 0 to 4294967295"),
    "exciters.size": (lambda v: 16 <= v <= 1024, "an integer from 16 to 1024"),
    "exciters.batch_size": (lambda v: 1 <= v <= 4096, "an integer from 1 to 4096"),
    "exciters.grid.count": (lambda v: 0 <= v <= 4096, "an integer from 0 to 4096"),
    "exciters.grid.size": (lambda v: 16 <= v <= 512, "an integer from 16 to 512"),
    "exciters.grid.per_row": (lambda v: 1 <= v <= 64, "an integer from 1 to 64"),
    "units.channel": (lambda v: v >= 0, "an integer 0 or above"),
    "circuits.top_k": (lambda v: 1 <= v <= 64, "an integer from 1 to 64"),
    "circuits.window": (lambda v: 0 <= v <= 256, "an integer from 0 (whole receptive field) to 256"),
    "browse.thumbnail_size": (lambda v: 16 <= v <= 512, "an integer from 16 to 512"),
    "browse.thumbnail_steps": (lambda v: 0 <= v <= 100_000, "an integer from 0 to 100000"),
    "browse.examples_top_n": (lambda v: 1 <= v <= 100, "an integer from 1 to 100"),
    "browse.top_k": (lambda v: 1 <= v <= 64, "an integer from 1 to 64"),
    "model.preprocess": (lambda v: v in ("caffe", "tf", "torch", "none"), "one of caffe, tf, torch, none"),
}


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
    rule = _RULES.get(_rule_key(key))
    if rule and not rule[0](value):
        raise GeneratorError(f"config key {key!r}: got {shown(value)}, expected {rule[1]}")
    return value


def _rule_key(key: str) -> str:
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
