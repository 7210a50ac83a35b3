"""Class concepts through the build's analyses: which classes, their images, the cache, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from generator import build as build_module
from generator.analyses import Analyses
from generator.analyses.classes import class_id
from generator.cache import Cache
from generator.config import load_config
from generator.errors import GeneratorError
from generator.images import example_image_files

from tiny import edit_config, make_project, write_images

SMALL = {"concepts": 3, "crops": 4, "design": 8, "images": 4, "random_directions": 4, "exciter_size": 16}


def classes_of(project, **classes):
    edit_config(project, classes={**SMALL, **classes}, exciters={"steps": 2})
    config = load_config(project / "site_config.yaml")
    analyses = Analyses(config, Cache(project / "cache"))
    return analyses, build_module._classes(config, analyses, example_image_files(config))


def test_a_named_class_gets_concepts_from_its_folder_with_pictures(tmp_path, tiny_model_file):
    project = make_project(tmp_path, tiny_model_file)
    for k in (1, 3):
        write_images(project / "examples" / f"class {k}", n=3, size=36, seed=k)
    edit_config(project, browse={"examples_dir": "examples"})
    analyses, found = classes_of(project, names=["class 3"])
    (c,) = found
    names = analyses.class_names()
    assert c.name == "class 3" and c.class_id == names.index("class 3") == 3 and c.source == "folder" and c.layer == "c3"
    assert [p.parent.name for p in c.images] == ["class 3"] * 3 and len(c.concepts) == 3
    assert [k.index for k in c.concepts] == [0, 1, 2] and sum(k.importance for k in c.concepts) == pytest.approx(1)
    assert all(k.exciter is not None and k.exciter.image.shape == (16, 16, 3) for k in c.concepts)
    assert c.concepts[0].maps.shape == (3, 16, 16) and c.embedding.shape == (3, 2)
    assert "Sobol total index" in c.importance_method and c.head == "the model after c3"


def test_top_classes_are_the_most_predicted_and_a_rebuild_reads_the_cache(tmp_path, tiny_model_file, monkeypatch):
    project = make_project(tmp_path, tiny_model_file)
    analyses, found = classes_of(project, top=1)
    files = [project / "images" / f"photo{i}.png" for i in range(3)]
    predicted = analyses.top_classes(files)
    (c,) = found
    assert c.class_id == np.bincount(predicted).argmax() and c.source == "predicted"
    assert len(c.images) == int(np.sum(predicted == c.class_id))
    monkeypatch.setattr(Analyses, "model", property(lambda self: pytest.fail("model loaded on a rebuild")))
    _, again = classes_of(project, top=1)
    assert again[0].name == c.name and np.array_equal(again[0].concepts[0].vector, c.concepts[0].vector)


def test_an_unknown_class_name_is_one_line(tmp_path, tiny_model_file):
    project = make_project(tmp_path, tiny_model_file)
    with pytest.raises(GeneratorError, match=r"^config key 'classes.names\[0\]': 'zebra' is not a class of the model"):
        classes_of(project, names=["zebra"])


def test_a_name_that_several_classes_share_is_picked_by_its_number():
    names = ("kite", "crane", "dog", "crane")  # ImageNet has two cranes: the bird (134) and the machine (517)
    assert [class_id(n, names, "k") for n in ("crane#3", "crane#1", "dog", "dog#2")] == [3, 1, 2, 2]
    with pytest.raises(GeneratorError, match=r"^config key 'classes.names\[0\]': 'crane' names 2 classes of the model "
                                             r"\(1, 3\); write 'crane#1' or 'crane#3' to pick one$"):
        class_id("crane", names, "classes.names[0]")
    for wrong in ("crane#2", "crane#9", "crane#", "zebra#1"):
        with pytest.raises(GeneratorError, match=r"is not a class of the model"):
            class_id(wrong, names, "classes.names[0]")
    assert class_id("c#1", ("a", "c#1"), "k") == 1  # a label with '#' in it is its own name first


def test_names_and_top_together_are_refused(tmp_path, tiny_model_file):
    project = make_project(tmp_path, tiny_model_file)
    data = yaml.safe_load((project / "site_config.yaml").read_text())
    data["classes"] = {"names": ["1"], "top": 2}
    (project / "site_config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(GeneratorError, match="give either classes.names or classes.top"):
        load_config(project / "site_config.yaml")


def test_an_unknown_class_fails_the_build_in_one_line_before_any_analysis(tmp_path, tiny_model_file, capsys):
    from generator import cli

    project = make_project(tmp_path, tiny_model_file)
    edit_config(project, classes={"names": ["class 1", "zebra"]})
    assert cli.main(["build", "--config", str(project / "site_config.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: config key 'classes.names[1]': 'zebra' is not a class of the model")
    assert not (project / "site").exists()


def test_classes_of_a_map_model_point_to_output(tmp_path):
    import keras

    x = inputs = keras.Input((None, None, 3))
    keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", name="edges")(x)).save(tmp_path / "map.keras")
    project = make_project(tmp_path / "p", tmp_path / "map.keras")
    with pytest.raises(GeneratorError, match=r"^config key 'classes.names': the model's output is a map, not classes; "
                                             "set classes.output: true"):
        classes_of(project, names=["class 1"])
    with pytest.raises(GeneratorError, match=r"^config key 'classes.top': the model's output is a map"):
        classes_of(project, names=[], top=2)
    _, (found,) = classes_of(project, names=[], top=0, output=True, concepts=1)
    assert (found.name, found.class_id, found.source, found.layer) == ("output", None, "all", "edges")
    assert len(found.images) == 3 and found.head == "the model after edges" and len(found.concepts) == 1


def test_the_builds_results_carry_the_classes(tmp_path, tiny_model_file):
    project = make_project(tmp_path, tiny_model_file)
    edit_config(project, classes={**SMALL, "top": 2})
    config = load_config(project / "site_config.yaml")
    site = build_module.site_results(Analyses(config, Cache(project / "cache")))
    assert 1 <= len(site.classes) <= 2 and all(c.source == "predicted" for c in site.classes)
    assert all(k.exciter is not None for c in site.classes for k in c.concepts)
    edit_config(project, classes={"top": 0})
    plain = build_module.site_results(Analyses(load_config(project / "site_config.yaml"), Cache(project / "cache")))
    assert plain.classes == ()


def test_a_binary_classifiers_top_class_is_read_from_its_one_sigmoid_output(tmp_path):
    import keras

    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # every image scores sigmoid(10) ~ 1: class 1 (its one output), not the argmax of one column, 0
    head = keras.layers.Dense(1, activation="sigmoid", name="head", kernel_initializer="zeros", bias_initializer="ones")
    model = keras.Model(inputs, head(x))
    head.set_weights([np.zeros((2, 1), np.float32), np.full((1,), 10.0, np.float32)])
    model.save(tmp_path / "binary.keras")
    project = make_project(tmp_path / "p", tmp_path / "binary.keras")
    analyses, (found,) = classes_of(project, top=2, concepts=1)
    assert analyses.class_names() == ("class 0", "class 1")
    assert (found.name, found.class_id, found.source, len(found.images)) == ("class 1", 1, "predicted", 3)


def test_a_classes_layer_without_an_image_shaped_output_is_one_line(tmp_path, tiny_model_file, capsys):
    from generator import cli

    project = make_project(tmp_path, tiny_model_file)
    edit_config(project, classes={"top": 1, "layer": "gap"})  # (N, C): no positions to crop and factorise
    assert cli.main(["build", "--config", str(project / "site_config.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("error: config key 'classes.layer': layer 'gap' (GlobalAveragePooling2D) has no image-shaped "
                       "output with channels to analyse")
    assert not (project / "site").exists()


def test_output_asked_of_a_classifier_is_one_line(tmp_path, tiny_model_file):
    project = make_project(tmp_path, tiny_model_file)
    with pytest.raises(GeneratorError, match=r"^config key 'classes.output': the model is a classifier \(5 classes\); "
                                             r"set classes.names or classes.top for its classes' pages"):
        classes_of(project, output=True)
