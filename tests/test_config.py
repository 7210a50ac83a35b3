import dataclasses
from pathlib import Path

import pytest
import yaml

from generator.config import load_config
from generator.errors import GeneratorError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "images" / "a.png")
    path = tmp_path / "site_config.yaml"
    path.write_text(text)
    return path


def error(path: Path) -> str:
    with pytest.raises(GeneratorError) as e:
        load_config(path)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_defaults_and_values(tmp_path):
    config = load_config(write(tmp_path, "model: {name: vgg19, weights: none}\nexciters: {steps: 7, step_size: 2}\n"))
    assert config.model.name == "vgg19"
    assert config.exciters.steps == 7
    assert config.exciters.step_size == 2.0 and isinstance(config.exciters.step_size, float)
    assert config.exciters.params(64).size == 64
    assert config.circuits.top_k == 6
    assert config.root == tmp_path.resolve()


def test_units_are_parsed(tmp_path):
    config = load_config(write(tmp_path, "units:\n  - {layer: block3_conv2, channel: 8, note: hello}\n"))
    assert config.units[0].layer == "block3_conv2" and config.units[0].channel == 8
    assert config.note(config.units[0].note) == "hello"


def test_unknown_key_suggests_the_close_one(tmp_path):
    message = error(write(tmp_path, "exciters: {stepz: 3}\n"))
    assert "'exciters.stepz'" in message and "did you mean 'steps'" in message


def test_unknown_section(tmp_path):
    assert "'modle' is not known" in error(write(tmp_path, "modle: {name: vgg16}\n"))


def test_malformed_yaml_names_the_line(tmp_path):
    message = error(write(tmp_path, "model:\n  name: [vgg16\n"))
    assert "not valid YAML" in message and "line" in message


def test_wrong_type(tmp_path):
    message = error(write(tmp_path, "exciters: {steps: many}\n"))
    assert "'exciters.steps'" in message and "'many'" in message and "an integer" in message


def test_range_and_choices(tmp_path):
    assert "one of gradient_ascent, lucid, maco" in error(write(tmp_path, "exciters: {method: deepdream}\n"))
    assert "from 1 to 64" in error(write(tmp_path, "circuits: {top_k: 0}\n"))
    assert "'units[0].channel'" in error(write(tmp_path, "units: [{layer: c1, channel: -1}]\n"))


def test_unit_needs_layer_and_channel(tmp_path):
    assert "'units[0].channel' is required" in error(write(tmp_path, "units: [{layer: c1}]\n"))


def test_missing_image(tmp_path):
    message = error(write(tmp_path, "images: {files: [a.png, nope.jpg]}\n"))
    assert "'nope.jpg' not found" in message


def test_composite_must_be_an_image(tmp_path):
    assert "'images.composite'" in error(write(tmp_path, "images: {composite: b.png}\n"))


def test_missing_config_file(tmp_path):
    assert "not found" in error(tmp_path / "nope.yaml")


def test_note_file_is_read(tmp_path):
    (tmp_path / "note.md").write_text("# from a file")
    config = load_config(write(tmp_path, "notes: {circuit: note.md}\n"))
    assert config.note(config.notes.circuit) == "# from a file"


def test_default_config_is_valid():
    config = load_config(Path(__file__).resolve().parent.parent / "site_config.yaml")
    assert config.model.name == "vgg16-hed"
    assert config.units and config.feature_maps.layers
    for unit in config.units:
        assert config.note(unit.note)
    assert yaml.safe_load((config.root / "site_config.yaml").read_text())


@pytest.mark.parametrize("text, expected", [
    ("exciters: {negative: maybe}\n", "config key 'exciters.negative': got 'maybe', expected true or false"),
    ("exciters: {step_size: fast}\n", "config key 'exciters.step_size': got 'fast', expected a number"),
    ("exciters: {steps: 2.5}\n", "config key 'exciters.steps': got 2.5, expected an integer"),
    ("exciters: {steps: true}\n", "config key 'exciters.steps': got True, expected an integer"),
    ("exciters: {step_size: false}\n", "config key 'exciters.step_size': got False, expected a number"),
    ("exciters: {grid: 3}\n", "config key 'exciters.grid': got 3, expected a mapping"),
    ("feature_maps: {layers: 5}\n", "config key 'feature_maps.layers': got 5, expected a list of texts"),
    ("feature_maps: {layers: [[c1]]}\n", "config key 'feature_maps.layers': got ['c1'], expected text"),
    ("site: {title: [a]}\n", "config key 'site.title': got ['a'], expected text"),
    ("units: {layer: c1}\n", "config key 'units': got {'layer': 'c1'}, expected a list of mappings"),
    ("units: [c1]\n", "config key 'units[0]': got 'c1', expected a mapping with layer and channel"),
    ("exciters: {steps: -1}\n", "config key 'exciters.steps': got -1, expected an integer from 0 to 100000"),
    ("exciters: {step_size: 0}\n", "config key 'exciters.step_size': got 0.0, expected a number above 0 and at most 1000"),
    ("exciters: {precision: half}\n", "config key 'exciters.precision': got 'half', expected one of auto, float32, bfloat16"),
    ("exciters: {objective: pixel}\n", "config key 'exciters.objective': got 'pixel', expected one of channel, neuron"),
    ("model: {preprocess: imagenet}\n", "config key 'model.preprocess': got 'imagenet', expected one of caffe, tf, torch, none"),
    ("units: [{layer: c1, channel: 0, method: dream}]\n",
     "config key 'units[0].method': got 'dream', expected one of gradient_ascent, lucid, maco"),
    ("browse: {thumbnail_method: dream}\n",
     "config key 'browse.thumbnail_method': got 'dream', expected one of gradient_ascent, lucid, maco"),
    ("circuits: {window: -1}\n", "config key 'circuits.window': got -1, expected an integer from 0 to 256"),
    ("browse: {image_format: gif}\n", "config key 'browse.image_format': got 'gif', expected one of png, jpeg, webp"),
    ("browse: {image_format: jpg}\n", "config key 'browse.image_format': got 'jpg', expected one of png, jpeg, webp"),
    ("browse: {image_quality: 0}\n", "config key 'browse.image_quality': got 0, expected an integer from 1 to 100"),
    ("browse: {image_quality: 101}\n", "config key 'browse.image_quality': got 101, expected an integer from 1 to 100"),
    ("browse: {image_quality: 0.8}\n", "config key 'browse.image_quality': got 0.8, expected an integer"),
    ("browse: {unit_maps: -1}\n", "config key 'browse.unit_maps': got -1, expected an integer from 0 to 10000"),
    ("[1, 2]\n", "config: the top level must be a mapping of sections, got list"),
    ("units: [{channel: 1}]\n", "config key 'units[0].layer' is required"),
    ("units: [{layer: c1, chanel: 3}]\n",
     "config key 'units[0].chanel' is not known (did you mean 'channel'?); allowed here: layer, channel, note, label, method"),
    ("site: {9223372036854775808: x}\n", "config key 'site.9223372036854775808' is not known; allowed here: title, author, "
     "description, url, pdf"),
    ("site: {title: yes}\n", "config key 'site.title': got True, expected text; put it in quotes to keep it as text"),
    ("exciters: {steps: yes}\n", "config key 'exciters.steps': got True, expected an integer"),
    ("units: [{layer: c1, channel: 2}, {layer: c1, channel: 3}, {layer: c1, channel: 2}]\n",
     "config key 'units[2]': unit 'c1' channel 2 is already units[0]; list each unit once"),
    ("images: {files: [a.png, a.png]}\n", "config key 'images.files[1]': 'a.png' is already images.files[0]"),
    ("feature_maps: {layers: [c1, c2, c1]}\n", "config key 'feature_maps.layers[2]': 'c1' is already feature_maps.layers[0]"),
    ("browse: {layers: [c2, c2]}\n", "config key 'browse.layers[1]': 'c2' is already browse.layers[0]"),
    ("views: {layers: [c1, c2, c2]}\n", "config key 'views.layers[2]': 'c2' is already views.layers[1]"),
    ("groups: {layers: [c2, c2]}\n", "config key 'groups.layers[1]': 'c2' is already groups.layers[0]"),
    ("browse: {layers: [c2, all]}\n",
     "config key 'browse.layers': 'all' already means every conv layer; give either 'all' or a list of layer names"),
    ("images: {dir: site_config.yaml}\n", "config key 'images.dir': folder 'site_config.yaml' is a file, not a folder"),
    ("images: {dir: nowhere}\n", "config key 'images.dir': folder 'nowhere' not found"),
    ("images: {files: [b.png]}\n", "config key 'images.files': image 'b.png' not found in 'images'"),
    ("model: {labels: images}\n", "config key 'model.labels': file 'images' is a folder, not a file"),
    ("notes: {circuit: gone.md}\n", "note file 'gone.md' not found"),
    ('notes: {circuit: "a\\0.md"}\n', "note file 'a\\x00.md' is not a valid file name"),
    ("units: [{layer: c1, channel: 0, note: images.md}]\n", "note file 'images.md' not found"),
])
def test_each_wrong_value_gets_its_exact_line(tmp_path, text, expected):
    assert error(write(tmp_path, text)) == expected


def test_values_of_the_right_type_are_kept_and_converted(tmp_path):
    config = load_config(write(tmp_path, "site: {title: 12}\nexciters: {step_size: 3, negative: true, seed: 4294967295}\n"
                                        "feature_maps: {layers: c1}\nbrowse: {layers: all}\nunits: [{layer: c1, channel: 0}]\n"))
    assert config.site.title == "12"
    assert config.exciters.step_size == 3.0 and config.exciters.negative is True and config.exciters.seed == 2**32 - 1
    assert config.feature_maps.layers == ("c1",) and config.browse.layers == ("all",)
    assert config.units[0].note == "" and config.units[0].method == ""
    assert load_config(write(tmp_path, "site: null\nexciters: {steps: null}\n")).exciters.steps == 40


def test_exciter_params_and_key(tmp_path):
    from generator.analyses import exciter_key
    from generator.config import ExcitersSection

    section = ExcitersSection(steps=7, size=99, batch_size=3, precision="float32", seed=5)
    assert section.params().size == 99 and section.params(24).size == 24
    assert section.params(24).steps == 7 and section.params().batch_size == 3 and section.params().seed == 5
    key = exciter_key(section.params())
    assert "batch_size" not in key and key["precision"] == "float32" and key["steps"] == 7 and key["size"] == 99
    assert exciter_key(section.params()) == exciter_key(dataclasses.replace(section.params(), batch_size=64))
    assert "maco_crops" not in key and "maco_spectrum" not in key  # other recipes' keys as before maco's settings
    maco = dataclasses.replace(section.params(), method="maco", maco_crops=4)
    assert exciter_key(maco, "images 1a2b")["maco_spectrum"] == "images 1a2b" and exciter_key(maco)["maco_crops"] == 4


def test_smaller_pictures_batch_the_pixels_of_batch_size_exciters():
    from generator.config import ExcitersSection

    section = ExcitersSection(size=150, batch_size=16, steps=7, method="gradient_ascent")
    groups = section.pictures(64, "lucid")
    assert (groups.batch_size, groups.size, groups.method, groups.steps) == (87, 64, "lucid", 7)  # 16 * 150^2 // 64^2
    assert section.pictures(150).batch_size == 16 and section.pictures(150).method == "gradient_ascent"
    assert section.pictures(224).batch_size == 16  # never fewer units than the setting
    assert section.pictures(75, "maco") == dataclasses.replace(section.params(75), method="maco", batch_size=64)


def test_paths_resolve_against_the_config_folder(tmp_path):
    from generator.config import resolve_path

    assert resolve_path("a/b.md", tmp_path) == tmp_path / "a" / "b.md"
    assert resolve_path("/abs/x", tmp_path) == Path("/abs/x")
    assert resolve_path("~/x", tmp_path) == Path.home() / "x"


def test_a_note_is_a_file_only_when_it_is_one_line_ending_in_md(tmp_path):
    (tmp_path / "n.md").write_text("from the file")
    config = load_config(write(tmp_path, "{}\n"))
    assert config.note("  n.md  ") == "from the file"
    assert config.note("see n.md\nfor more n.md") == "see n.md\nfor more n.md"
    assert config.note("n.md is my file, not n.md.txt") == "n.md is my file, not n.md.txt"
    assert config.note("") == ""


def test_list_images_by_suffix_sorted_without_hidden_files(tmp_path):
    from generator.config import list_images

    for name in ("b.PNG", "a.jpg", "c.txt", ".hidden.png", "sub/d.webp", ".git/e.png", "sub/.f.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.jpg", "b.PNG"]
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)] == [
        "a.jpg", "b.PNG", "sub/d.webp"]


def test_no_images_and_empty_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "site_config.yaml").write_text("{}\n")
    assert error(tmp_path / "site_config.yaml") == "config key 'images.dir': no image files in 'images'"


def test_composite_lists_a_few_of_the_images(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    for i in range(7):
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / f"p{i}.png")
    (tmp_path / "site_config.yaml").write_text("images: {composite: q.png}\n")
    assert error(tmp_path / "site_config.yaml") == (
        "config key 'images.composite': 'q.png' is not one of the images "
        "('p0.png', 'p1.png', 'p2.png', 'p3.png', 'p4.png', ... (7 in all))")


def test_yaml_errors_name_line_and_column(tmp_path):
    assert error(write(tmp_path, "site:\n  title: [a\n")) == (
        f"config file {str(tmp_path / 'site_config.yaml')!r} is not valid YAML at line 3, column 1: "
        "expected ',' or ']', but got '<stream end>'")
    assert error(write(tmp_path, "site: {title: a\x07}\n")) == (
        f"config file {str(tmp_path / 'site_config.yaml')!r} is not valid YAML: "
        "unacceptable character #x0007: special characters are not allowed")


def test_unknown_key_without_a_close_name(tmp_path):
    assert error(write(tmp_path, "zzzzzz: 1\n")) == (
        "config key 'zzzzzz' is not known; allowed here: site, model, images, feature_maps, exciters, units, circuits, "
        "browse, attribution, views, groups, classes, notes")
    assert error(write(tmp_path, "root: /tmp\n")).startswith("config key 'root' is not known")


def test_null_values_keep_their_defaults_and_the_keys_after_them_count(tmp_path):
    config = load_config(write(tmp_path, "site: null\nexciters: {steps: null, size: 20}\n"))
    assert config.exciters.steps == 40 and config.exciters.size == 20
    assert load_config(write(tmp_path, "")).exciters.steps == 40  # an empty file: every default


def test_image_files_of_a_folder_skip_its_subfolders(tmp_path):
    from PIL import Image

    from generator.config import image_files

    path = write(tmp_path, "{}\n")
    (tmp_path / "images" / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "sub" / "b.png")
    assert [p.name for p in image_files(load_config(path))] == ["a.png"]


def test_labels_file_must_exist(tmp_path):
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    assert load_config(write(tmp_path, "model: {labels: labels.txt}\n")).model.labels == "labels.txt"
    assert error(write(tmp_path, "model: {labels: nope.txt}\n")) == "config key 'model.labels': file 'nope.txt' not found"


def test_missing_config_file_names_it(tmp_path):
    assert error(tmp_path / "nope.yaml") == f"config file {str(tmp_path / 'nope.yaml')!r} not found"


def test_precision_auto_is_bfloat16_with_either_cpu_flag(tmp_path):
    from generator.analysis.precision import resolve_precision

    for flags, want in [("avx512_bf16", "bfloat16"), ("amx_bf16 amx_tile", "bfloat16"), ("avx512f amx_tile", "float32")]:
        (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: fpu sse2 {flags}\n")
        assert resolve_precision("auto", tmp_path / "cpuinfo") == want
    assert resolve_precision("float32", tmp_path / "cpuinfo") == "float32"
    (tmp_path / "cpuinfo").write_text("flags: avx512_bf16\n")
    assert resolve_precision("float32", tmp_path / "cpuinfo") == "float32"  # an explicit choice wins
    assert resolve_precision("auto", tmp_path) == "float32"  # unreadable: a folder


def test_text_files_must_be_utf8(tmp_path):
    (tmp_path / "latin.md").write_bytes("d\u00e9j\u00e0".encode("latin-1"))
    assert error(write(tmp_path, "notes: {exciter: latin.md}\n")) == (
        "note file 'latin.md' is not UTF-8 text (byte 1); save it as UTF-8")
    (tmp_path / "folder.md").mkdir()
    assert error(write(tmp_path, "notes: {exciter: folder.md}\n")) == "note file 'folder.md': cannot read it (Is a directory)"


def test_a_few_images_are_listed_whole(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    for i in range(5):
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / f"p{i}.png")
    (tmp_path / "site_config.yaml").write_text("images: {composite: q.png}\n")
    assert error(tmp_path / "site_config.yaml").endswith("('p0.png', 'p1.png', 'p2.png', 'p3.png', 'p4.png')")


def test_exciter_key_holds_the_resolved_precision(tmp_path):
    from generator.analyses import exciter_key
    from generator.config import ExciterParams

    key = exciter_key(ExciterParams(precision="auto"))
    assert key["precision"] in ("float32", "bfloat16") and sorted(key) == sorted(
        ["method", "steps", "step_size", "size", "seed", "objective", "negative", "precision"])
