"""The sections of ``site_config.yaml``: frozen dataclasses whose fields are the allowed keys.

pydantic validates them when a config is loaded (:mod:`generator.config.loading`): unknown keys
(``extra="forbid"``), the types below (no silent conversion: ``yes`` is no number) and the
constraints in each field's annotation, which are also what the JSON Schema says
(:mod:`generator.config.schema`). Built in code, as tests and the build do, they are plain data.
A key given as ``null`` keeps its default.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, Strict, TypeAdapter, ValidationInfo,
    field_validator, model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticKnownError, PydanticUseDefault, core_schema

from generator.config.directions import parse_direction
from generator.config.files import read_text, resolve_path
from generator.errors import GeneratorError, shown

ExciterMethod = Literal["gradient_ascent", "lucid", "maco"]
ExciterMethodOrEmpty = Literal["", ExciterMethod]  # empty: the section's setting (exciters.method)
AttributionMethod = Literal["gradcam", "saliency", "smoothgrad", "integrated_gradients", "gradcam_plus_plus",
                            "occlusion"]
Precision = Literal["auto", "float32", "bfloat16"]
EXCITER_METHODS: tuple[str, ...] = typing.get_args(ExciterMethod)
ATTRIBUTION_METHODS: tuple[str, ...] = typing.get_args(AttributionMethod)
WEB_ADDRESS = r"^(https?://[^\s/]+\S*)?$"  # an http:// or https:// address, or nothing


def _number_as_text(value: object) -> object:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _int_as_float(value: object) -> object:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _OneOrMore:
    """A list where one value stands for a list of one: validation wraps it, the JSON Schema allows it."""

    def __get_pydantic_core_schema__(self, source: object, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            lambda value: [value] if isinstance(value, (str, dict)) else value, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        array = handler(schema)
        return {"anyOf": [array, array["items"]]}


# Converters come last in an annotation, after the constraints, so that pydantic checks (and the JSON Schema
# states) the constraints on the converted value.
AS_FLOAT = BeforeValidator(_int_as_float)
AS_TEXT = BeforeValidator(_number_as_text)  # a number written bare is text too
Int = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
Text = Annotated[str, Strict(), AS_TEXT]
T = typing.TypeVar("T")
OneOrMore = Annotated[tuple[T, ...], _OneOrMore()]
Texts = OneOrMore[Text]


def _inherited_descriptions(schema: dict, cls: type) -> None:
    """pydantic describes a field by the docstring under it in its own class; inherited fields by their base's."""
    for base in cls.__mro__[1:]:
        if dataclasses.is_dataclass(base):
            for name, prop in TypeAdapter(base).json_schema()["properties"].items():
                if "description" in prop:
                    schema["properties"][name].setdefault("description", prop["description"])


class Section:
    """What every section shares: unknown keys refused, ``null`` for a key's default, descriptions from docstrings."""

    __pydantic_config__ = ConfigDict(extra="forbid", use_attribute_docstrings=True,
                                     json_schema_extra=_inherited_descriptions)

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_the_default(cls, value: object, info: ValidationInfo) -> object:
        if value is not None:
            return value
        f = next(f for f in dataclasses.fields(cls) if f.name == info.field_name)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise PydanticKnownError("missing")
        raise PydanticUseDefault()


def _repeat(items: typing.Sequence) -> tuple[int, int] | None:
    """``(i, j)``: item ``i`` is a repeat of item ``j``, for the first repeat; None when all differ."""
    first: dict = {}
    for i, item in enumerate(items):
        j = first.setdefault(item, i)
        if j != i:
            return i, j
    return None


def _once(items: typing.Sequence, key: str) -> None:
    """Each name listed once."""
    if repeat := _repeat(items):
        i, j = repeat
        raise GeneratorError(f"config key '{key}[{i}]': {shown(items[i])} is already {key}[{j}]")


@dataclass(frozen=True)
class SiteSection(Section):
    """The site's name and front page."""

    title: Text = "CNN interpretability report"
    """The site's name, in the header and the browser tab."""
    author: Text = ""
    """Shown as "By <author>" on the front page."""
    description: Text = ""
    """Markdown under the title on the front page."""
    url: Annotated[str, Strict(), Field(pattern=WEB_ADDRESS), AS_TEXT] = ""
    """Where the site is published (MkDocs' site_url), e.g. https://you.github.io/your-repo/; empty: the address `build
    --site-url` gives (the Pages workflow passes GitHub's), else none."""
    pdf: Flag = False
    """Publish the lab report as report.pdf beside the site: the Pages workflow then runs `python -m generator pdf`."""


@dataclass(frozen=True)
class ModelSection(Section):
    """The network the report analyses."""

    name: Text = "vgg16-hed"
    """A keras.applications name (vgg16, resnet50, inception_v3, mobilenet_v2, efficientnet_b0, convnext_tiny, ...:
    README, Configure), the bundled offline model "vgg16-hed", or a path to a user's own ``.keras`` or ``.h5`` file."""
    weights: Text = "imagenet"
    """ "imagenet", "none" (seeded random init) or a path to a weights file; for vgg16-hed "bundled"; ignored for a
    .keras file."""
    seed: Annotated[Int, Field(ge=0, le=2**32 - 1)] = 0
    """Seed of the random initialisation (weights: none) and of Keras' random numbers."""
    preprocess: Literal["caffe", "tf", "torch", "none"] = "none"
    """Input preprocessing for a user's .keras model: caffe, tf, torch or none."""
    labels: Text = ""
    """Optional text file with one class name a line, for a user's classifier."""


@dataclass(frozen=True)
class ImagesSection(Section):
    """The photos the report analyses."""

    dir: Text = "images"
    """Folder of the photos, relative to the config file."""
    files: Texts = ()
    """File names inside ``dir``; empty means every image file there."""
    size: Annotated[Int, Field(ge=16, le=1024)] = 224
    """Side in pixels that images are resized (centre crop) to before the model sees them."""
    composite: Text = ""
    """The image (a file name from ``files``) that the report shows feature maps and unit maps on."""

    @model_validator(mode="after")
    def _each_file_once(self) -> ImagesSection:
        _once(self.files, "images.files")
        return self


@dataclass(frozen=True)
class FeatureMapsSection(Section):
    """Grids of every channel of some layers on each image (the lab's part 2)."""

    layers: Texts = ()
    """Layer names (see: python -m generator layers)."""
    per_row: Annotated[Int, Field(ge=1, le=64)] = 16
    """Maps in one row of a grid."""

    @model_validator(mode="after")
    def _each_layer_once(self) -> FeatureMapsSection:
        _once(self.layers, "feature_maps.layers")
        return self


@dataclass(frozen=True)
class ExciterParams(Section):
    """How an exciter (activation-maximising image) is made; part of its cache key."""

    method: ExciterMethod = "gradient_ascent"
    """ "gradient_ascent" (the lab's recipe), "lucid" (Lucid's: Fourier image, decorrelated colour, transforms,
    Adam) or "maco" (Fel et al.'s: fixed ImageNet magnitude, phase only, random crops and noise, Nadam)."""
    steps: Annotated[Int, Field(ge=0, le=100_000)] = 40
    """Optimisation steps."""
    step_size: Annotated[float, Strict(), Field(gt=0, le=1000), AS_FLOAT] = 1.0
    """Gradient-ascent step on the 0..255 image, after dividing the gradient by its RMS."""
    size: Annotated[Int, Field(ge=16, le=1024)] = 150
    """Side of the exciter image in pixels."""
    seed: Annotated[Int, Field(ge=0, le=2**32 - 1)] = 0
    """Seed of the start image and of Lucid's transforms; the same seed gives the same image."""
    objective: Literal["channel", "neuron"] = "channel"
    """ "channel": the channel's mean over positions; "neuron": its value at the centre position."""
    negative: Flag = False
    """Find what lowers the unit instead of what raises it."""
    batch_size: Annotated[Int, Field(ge=1, le=4096)] = 16
    """Units optimised together in one compiled step."""
    precision: Precision = "auto"
    """Arithmetic of the network during optimisation: "auto" is bfloat16 where the CPU computes it natively
    (AVX512-BF16 or AMX, about twice as fast), else float32."""
    maco_crops: Annotated[Int, Field(ge=0, le=256)] = 1
    """MACO's random crops of each image a step, each one network pass (Xplique: 32; 1 costs what Lucid's recipe
    costs a step, and measured as plausible as 32); 0: the whole image, one pass, as Xplique's nb_crops=0."""
    maco_spectrum: Literal["auto", "imagenet", "images"] = "auto"
    """The Fourier magnitude MACO's images keep: "imagenet" (ImageNet's average spectrum, RGB models only),
    "images" (the average spectrum of the examples folder: browse.examples_dir, else the configured images) or
    "auto" (imagenet for an RGB model, images for a grayscale one)."""


@dataclass(frozen=True)
class ExciterGridSection(Section):
    """The lab's grid of exciters of a layer's first channels."""

    layer: Text = ""
    """Conv layer of the grid; empty: no grid."""
    count: Annotated[Int, Field(ge=0, le=4096)] = 64
    """Channels in the grid, from 0."""
    size: Annotated[Int, Field(ge=16, le=512)] = 64
    """Side of each exciter in pixels."""
    per_row: Annotated[Int, Field(ge=1, le=64)] = 8
    """Exciters in one row."""


@dataclass(frozen=True)
class ExcitersSection(ExciterParams):
    """The exciter settings of the featured units (ExciterParams' fields), plus the lab's grid."""

    grid: ExciterGridSection = field(default_factory=ExciterGridSection)
    directions: Texts = ()
    """Exciters of directions, vectors over a layer's channels, shown on the model page: "<layer>: <weight>*<channel> +
    ..." (for example "block3_conv2: 0.5*8 + 0.5*12") or "<layer>: <file>.npy"."""
    diversity: Annotated[Int, Field(ge=0, le=16)] = 0
    """Exciters per featured unit that differ from one another (Lucid's diversity objective, Lucid's recipe), shown
    side by side on the unit page; 0: none."""
    diversity_weight: Annotated[float, Strict(), Field(gt=0), AS_FLOAT] = 10.0
    """How strongly those exciters are pushed apart: the weight of their mean Gram-matrix cosine similarity against the
    unit's activation."""

    @model_validator(mode="after")
    def _directions_parse(self) -> ExcitersSection:
        for i, text in enumerate(self.directions):
            parse_direction(text, f"exciters.directions[{i}]")
        return self

    def params(self, size: int | None = None) -> ExciterParams:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(ExciterParams)}
        return ExciterParams(**{**values, "size": self.size if size is None else size})

    def pictures(self, size: int, method: str = "") -> ExciterParams:
        """The parameters of pictures smaller than the exciters (activation groups', class concepts'): ``size`` px
        by ``method`` (empty: the exciters'), a batch holding the pixels of ``batch_size`` exciters (never fewer
        units): more units a step keep the cores busier (the default site's 28 group pictures of 64 px: a sixth
        less time a step in one batch than in two of 14) at the memory the setting allows; a unit's picture depends on
        its batch only through bfloat16's rounding."""
        batch = max(self.batch_size, self.batch_size * self.size * self.size // (size * size))
        return dataclasses.replace(self.params(size), method=method or self.method, batch_size=batch)


@dataclass(frozen=True)
class ViewsSection(Section):
    """Microscope's per-layer views of every image: DeepDream and Caricature."""

    layers: Texts = ()
    """Layers to show each image's DeepDream and Caricature at; empty: none."""
    deepdream_steps: Annotated[Int, Field(ge=0, le=10_000)] = 12
    """DeepDream: steps of the lab's normalised gradient, from the image, up the layer's squared activations."""
    deepdream_step_size: Annotated[float, Strict(), Field(gt=0), AS_FLOAT] = 2.0
    """DeepDream: the step on the 0..255 image after dividing the gradient by its RMS."""
    caricature_steps: Annotated[Int, Field(ge=0, le=10_000)] = 32
    """Caricature: Adam steps from noise (Lucid's image) towards the image's activations at the layer."""

    @model_validator(mode="after")
    def _each_layer_once(self) -> ViewsSection:
        _once(self.layers, "views.layers")
        return self


@dataclass(frozen=True)
class GroupsSection(Section):
    """Lucid's Building Blocks: each image's activations at a layer split into groups (NMF)."""

    layers: Texts = ()
    """Layers to split each image's activations at; empty: none."""
    count: Annotated[Int, Field(ge=1, le=10)] = 4
    """Groups per image and layer."""
    exciter_size: Annotated[Int, Field(ge=16, le=512)] = 64
    """Side of each group's exciter (of its direction over the channels), in pixels, for a model that takes any
    size (one with a fixed input size gets exciters of that size)."""
    method: ExciterMethodOrEmpty = "lucid"
    """The groups' exciter method, if not exciters.method."""

    @model_validator(mode="after")
    def _each_layer_once(self) -> GroupsSection:
        _once(self.layers, "groups.layers")
        return self


@dataclass(frozen=True)
class UnitSection(Section):
    """A featured unit: full-size exciter, maps on every image, its circuit."""

    layer: Text
    """Conv layer name."""
    channel: Annotated[Int, Field(ge=0)]
    """Channel index, from 0."""
    note: Text = ""
    """Markdown, or a path to a .md file (relative to the config file)."""
    label: Text = ""
    """A short label for the unit, instead of the one the build finds (its top examples' class folder, or the
    class it raises most)."""
    method: ExciterMethodOrEmpty = ""
    """This unit's exciter method, if not exciters.method."""


@dataclass(frozen=True)
class CircuitsSection(Section):
    """Which units feed the featured units, by weight."""

    top_k: Annotated[Int, Field(ge=1, le=64)] = 6
    """Inputs shown per circuit, strongest first."""
    earlier_layer: Text = ""
    """An earlier conv layer whose units feed the featured units through the layers between (Distill's expanded
    weights); empty: only the adjacent layer's direct weights."""
    window: Annotated[Int, Field(ge=0, le=256)] = 0
    """Side of the expanded-weight window around the target's centre; 0: the whole receptive field."""


@dataclass(frozen=True)
class BrowseSection(Section):
    """Microscope-style browsing: every unit of these layers gets its own page."""

    layers: Texts = ()
    """Layer names, or "all" for every conv layer."""
    thumbnail_size: Annotated[Int, Field(ge=16, le=512)] = 64
    """The exciters on layer pages and unit cards: small and quick, unlike the featured units'."""
    thumbnail_steps: Annotated[Int, Field(ge=0, le=100_000)] = 40
    """Optimisation steps of each thumbnail."""
    thumbnail_method: ExciterMethodOrEmpty = ""
    """The thumbnails' exciter method, if not exciters.method."""
    examples_dir: Text = ""
    """Folder of images searched for each unit's dataset examples; empty: the configured images."""
    examples_top_n: Annotated[Int, Field(ge=1, le=100)] = 6
    """Dataset examples shown per unit."""
    top_k: Annotated[Int, Field(ge=1, le=64)] = 6
    """Incoming and outgoing units listed on a unit page."""
    unit_maps: Annotated[Int, Field(ge=0, le=10_000)] = 0
    """Maps in a browsed unit's strip of its activation on the images: the first this many images; 0: every image.
    Featured units show every image."""
    image_format: Literal["png", "jpeg", "webp"] = "png"
    """Format of the unit pages' pictures (exciters, activation maps, dataset examples): "png" (lossless; the strip of
    maps stays JPEG), "jpeg" or "webp" (a whole VGG16 site: 0.26 GB instead of 0.68). Charts stay PNG."""
    image_quality: Annotated[Int, Field(ge=1, le=100)] = 85
    """Quality of those pictures that are JPEG or WebP, from 1 to 100."""

    @model_validator(mode="after")
    def _all_or_each_layer_once(self) -> BrowseSection:
        _once(self.layers, "browse.layers")
        if "all" in self.layers and len(self.layers) > 1:
            raise GeneratorError("config key 'browse.layers': 'all' already means every conv layer; "
                                 "give either 'all' or a list of layer names")
        return self


@dataclass(frozen=True)
class FaithfulnessSection(Section):
    """Whether each map ranks first the pixels its target's score depends on (Deletion, Insertion, µ-Fidelity)."""

    enabled: Flag = True
    """Score every map, and a random ranking as the floor."""
    steps: Annotated[Int, Field(ge=1, le=1024)] = 8
    """Deletion and insertion: the pixels removed (or put back), highest first, in this many equal steps."""
    samples: Annotated[Int, Field(ge=2, le=1024)] = 32
    """µ-Fidelity: random subsets of the pixels (cells of a 9 x 9 grid, each with chance 20%) set to the baseline."""


@dataclass(frozen=True)
class AttributionSection(Section):
    """Where in each photo the evidence for a prediction, a unit or the output comes from."""

    methods: OneOrMore[AttributionMethod] = ATTRIBUTION_METHODS[:4]
    """Methods, each a map over every image: gradcam, saliency, smoothgrad, integrated_gradients,
    gradcam_plus_plus, occlusion (a patch slid over the photo: one forward pass a patch); empty: none."""
    layer: Text = ""
    """Grad-CAM's conv layer for class and output targets; empty: the model's last conv layer."""
    classes: Annotated[Int, Field(ge=0, le=5)] = 1
    """Classifiers: explain each image's top 1 (or up to top 5) classes; 0: none."""
    units: Flag = True
    """Explain every featured unit (its mean activation), and show its Grad-CAM on its dataset examples."""
    output: Flag = True
    """Models that draw a map (the default edge model): explain the output map's mean."""
    samples: Annotated[Int, Field(ge=1, le=1024)] = 16
    """SmoothGrad's noisy copies per image."""
    noise: Annotated[float, Strict(), Field(gt=0, le=1), AS_FLOAT] = 0.15
    """SmoothGrad's noise: its standard deviation as a fraction of the image's value range."""
    steps: Annotated[Int, Field(ge=1, le=1024)] = 32
    """Integrated Gradients' steps on the path from the baseline to the image."""
    baseline: Literal["black", "blurred"] = "black"
    """Integrated Gradients' start, what Occlusion and faithfulness set pixels to: "black" or "blurred" (the photo
    blurred)."""
    seed: Int = 0
    """Seed of SmoothGrad's noise and of the sanity check's re-initialised weights."""
    sanity_check: Flag = True
    """Adebayo et al.'s sanity check: each method's map on a copy with re-initialised weights, rank-correlated."""
    precision: Precision = "auto"
    """Arithmetic of the network: "auto" is bfloat16 where the CPU computes it natively (about 2x faster), else
    float32."""
    faithfulness: FaithfulnessSection = field(default_factory=FaithfulnessSection)
    """How faithful each map is, beside a random ranking: deletion and insertion curves, µ-Fidelity."""


@dataclass(frozen=True)
class ClassesSection(Section):
    """Class pages: the concepts the model uses for a class (CRAFT: NMF of a layer's activations on crops of the
    class's images), how much of the class score each carries (Sobol indices) and a deletion check."""

    names: Texts = ()
    """Classes to build pages for, by name (as the labels name them; "name#k" is class k where several share the
    name); empty: see top."""
    top: Annotated[Int, Field(ge=0, le=1000)] = 0
    """Instead of names: the classes most predicted over the images and the examples folder; 0: none."""
    output: Flag = False
    """A model without classes (an edge detector): one page for its output (the mean of its output map, as
    attribution explains it)."""
    layer: Text = ""
    """Layer whose activations are factorised; empty: the last layer with a spatial output that reaches the score."""
    concepts: Annotated[Int, Field(ge=1, le=50)] = 10
    """Concepts per class (NMF components)."""
    images: Annotated[Int, Field(ge=1, le=10_000)] = 50
    """At most this many images per class (the first, in file order)."""
    crops: Annotated[Int, Field(ge=1, le=256)] = 8
    """Random crops per image, factorised together."""
    crop_size: Annotated[float, Strict(), Field(gt=0, le=1), AS_FLOAT] = 0.3
    """Side of each crop as a share of the image's side (each crop is resized to images.size)."""
    design: Annotated[Int, Field(ge=2, le=1024)] = 32
    """Sobol design size N: the importance of each image's concepts reads N x (concepts + 2) masked copies."""
    top_crops: Annotated[Int, Field(ge=1, le=50)] = 10
    """Crops shown per concept, strongest first."""
    random_directions: Annotated[Int, Field(ge=1, le=1000)] = 20
    """Random concept-sized directions the deletion check's floor averages over."""
    exciter_size: Annotated[Int, Field(ge=16, le=512)] = 128
    """Side of each concept's picture (an exciter of its direction), in pixels, for a model that takes any size
    (one with a fixed input size gets pictures of that size)."""
    method: ExciterMethodOrEmpty = "maco"
    """The concept pictures' exciter method, if not exciters.method."""
    seed: Annotated[Int, Field(ge=0, le=2**32 - 1)] = 0
    """Seed of the crops, the NMF and the random directions."""

    @model_validator(mode="after")
    def _names_or_top(self) -> ClassesSection:
        _once(self.names, "classes.names")
        if self.names and self.top:
            raise GeneratorError("config key 'classes.top': give either classes.names or classes.top, not both")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.names or self.top or self.output)


@dataclass(frozen=True)
class NotesSection(Section):
    """The author's notes, one per part of the lab report: Markdown or a path to a .md file."""

    introduction: Text = ""
    """Before part 1."""
    predictions: Text = ""
    """Beside the predictions (part 1)."""
    feature_maps: Text = ""
    """Beside the feature maps (part 2)."""
    exciter: Text = ""
    """Beside each featured unit's exciter (part 3), unless the unit has its own note."""
    circuit: Text = ""
    """Beside the incoming circuits (part 4)."""
    inputs: Text = ""
    """Beside the inputs' exciters and maps (part 5)."""
    attribution: Text = ""
    """Beside the attribution maps (part 6: where the evidence is)."""


@dataclass(frozen=True)
class Config(Section):
    """site_config.yaml: the model, the photos, the units to feature and browse, and the author's notes."""

    site: SiteSection = field(default_factory=SiteSection)
    model: ModelSection = field(default_factory=ModelSection)
    images: ImagesSection = field(default_factory=ImagesSection)
    feature_maps: FeatureMapsSection = field(default_factory=FeatureMapsSection)
    exciters: ExcitersSection = field(default_factory=ExcitersSection)
    units: tuple[UnitSection, ...] = ()
    """The featured units: a list of layer, channel and an optional note and method."""
    circuits: CircuitsSection = field(default_factory=CircuitsSection)
    browse: BrowseSection = field(default_factory=BrowseSection)
    attribution: AttributionSection = field(default_factory=AttributionSection)
    views: ViewsSection = field(default_factory=ViewsSection)
    groups: GroupsSection = field(default_factory=GroupsSection)
    classes: ClassesSection = field(default_factory=ClassesSection)
    notes: NotesSection = field(default_factory=NotesSection)
    root: SkipJsonSchema[Path] = Path(".")
    """Directory that relative paths in the config are resolved against: the loader sets it, no key of the file."""

    @field_validator("root", mode="before")
    @classmethod
    def _root_is_no_key(cls, value: object) -> object:
        raise PydanticKnownError("extra_forbidden")

    @model_validator(mode="after")
    def _each_unit_once(self) -> Config:
        if repeat := _repeat([(u.layer, u.channel) for u in self.units]):
            i, j = repeat
            unit = self.units[i]
            raise GeneratorError(f"config key 'units[{i}]': unit {shown(unit.layer)} channel {unit.channel} is "
                                 f"already units[{j}]; list each unit once")
        return self

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
        p = self.note_file(text)
        return read_text(p, f"note file {shown(text.strip())}") if p else text

    def note_file(self, text: str) -> Path | None:
        """The .md file a note names; None for an inline note."""
        if text.strip().endswith(".md") and "\n" not in text.strip():
            return self.path(text.strip())
        return None

    def note_files(self) -> list[Path]:
        """Every note file the config names (the report's parts' and the units')."""
        texts = [*vars(self.notes).values(), *(u.note for u in self.units)]
        return [p for p in map(self.note_file, texts) if p is not None]
