"""Unit labels: the class folder of a unit's top examples, with its purity; else the class it raises most."""

import keras
import numpy as np
import pytest
from PIL import Image

from generator.analysis.examples import example_shard, finish_examples, merge_tables
from generator.analysis.labels import consensus, folder_classes, unit_label
from generator.models import LoadedModel, ModelSpec
from generator.results import ClassEffects, UnitLabel


def colour_model():
    """A 1x1 conv: channel 0 is relu(red - blue), channel 1 relu(blue - red)."""
    image = keras.Input((None, None, 3))
    model = keras.Model(image, keras.layers.Conv2D(2, 1, activation="relu", name="c")(image))
    kernel = np.zeros((1, 1, 3, 2), np.float32)
    kernel[0, 0, 0], kernel[0, 0, 2] = [1, -1], [-1, 1]
    model.get_layer("c").set_weights([kernel, np.zeros(2, np.float32)])
    return LoadedModel(ModelSpec("colours", "x"), model, lambda x: x / 255.0, "map", None)


def test_a_unit_that_fires_on_one_class_folder_only_gets_that_label_with_purity_1(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for folder, channel in (("blue", 2), ("red", 0)):
        (tmp_path / folder).mkdir()
        for i in range(5):
            pixels = rng.integers(0, 60, (20, 20, 3), dtype=np.uint8)
            pixels[..., channel] = rng.integers(150, 256, (20, 20))
            Image.fromarray(pixels).save(tmp_path / folder / f"{i}.png")
            files.append(tmp_path / folder / f"{i}.png")
    names = [p.relative_to(tmp_path).as_posix() for p in files]
    loaded = colour_model()
    table = merge_tables([example_shard(loaded, ["c"], files, 0, 16, 4, seed=0)["c"]], 4)
    found = finish_examples(loaded, {"c": table}, 16)["c"]
    classes = folder_classes(names)
    red, blue = (unit_label(c, found.image[c], classes, None) for c in (0, 1))
    assert red == UnitLabel("red (4 of 4)", "examples", "red", 1.0)
    assert blue == UnitLabel("blue (4 of 4)", "examples", "blue", 1.0)
    assert found.distributions[0].density == 0.5  # it fires on the 5 red images of 10 only


def test_folder_classes_need_every_example_in_one_of_two_or_more_folders():
    assert folder_classes(["cats/a.jpg", "dogs/b/c.jpg"]) == ("cats", "dogs")
    assert folder_classes(["cats/a.jpg", "b.jpg"]) is None
    assert folder_classes(["cats/a.jpg", "cats/b.jpg"]) is None
    assert folder_classes([]) is None


def test_consensus_counts_the_majority_and_breaks_ties_by_rank():
    classes = ["a", "b", "b", "a", "c"]
    assert consensus([1, 2, 0], classes) == UnitLabel("b (2 of 3)", "examples", "b", pytest.approx(2 / 3))
    assert consensus([3, 1, 0, 2], classes).name == "a"  # 2 each: a's example ranks first
    assert consensus([], classes) is None


def test_without_folders_a_classifier_unit_is_labelled_by_the_class_it_raises_most_and_config_wins():
    effects = ClassEffects(True, classes=("cat", "dog"), effects=np.array([[0.5, -1.0], [2.0, -0.5]]), images=3)
    assert unit_label(0, [0], None, effects) == UnitLabel("raises dog", "class effect", "dog")
    assert unit_label(1, [0], None, effects) is None  # it raises no class
    assert unit_label(0, [0], ("x",), effects, override="stripes") == UnitLabel("stripes", "config")
    assert unit_label(0, [0], None, ClassEffects(False, "no classes")) is None
