"""The class pages' concepts (a mixin of :class:`generator.analyses.Analyses`): which classes, their images,
and one CRAFT job per class through the executor (:mod:`generator.analysis.concepts`).

A class's images are its folder of ``browse.examples_dir`` (ImageFolder layout: a subfolder named as the
class), else the configured images and examples the model predicts as it; a model without classes has one
"output" class over all of them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from tqdm import tqdm

from generator.errors import GeneratorError, shown
from generator.executor import Job
from generator.images import file_digest, read_square
from generator.results import ClassConcepts

NOT_IN_CONCEPTS = ("names", "top", "output", "exciter_size", "method")  # which classes, and their pictures


class ClassAnalyses:
    def classes(self, files: list[Path], folders: dict[str, list[Path]]) -> tuple[ClassConcepts, ...]:
        """The configured classes' concepts over ``files`` (the images and examples, for predictions) and
        ``folders`` (class name -> its examples subfolder's files)."""
        c = self.config.classes
        if not c.enabled:
            return ()
        wanted = self._wanted_classes(files)
        chosen = [self._class_files(name, class_id, files, folders) for name, class_id in wanted]
        numbers = {k: v for k, v in dataclasses.asdict(c).items() if k not in NOT_IN_CONCEPTS}
        keys = {i: self._key("class-concepts", name, class_id, source, [file_digest(p) for p in paths],
                             self.config.images.size, numbers)
                for i, (name, class_id, source, paths) in enumerate(chosen)}

        def compute(missing: list[int]) -> dict[int, ClassConcepts]:
            jobs = [Job(_concepts_job, (c.layer, self._class_images(*chosen[i]), concept_settings(c))) for i in missing]
            with tqdm(total=len(jobs), desc="class concepts", unit="class", disable=None) as bar:
                return dict(zip(missing, self.executor.run(jobs, bar.update)))

        found = self.cache.values(keys, ClassConcepts, compute)
        # The files as they are now: a project moved since the cache was written keeps its concepts' links to images.
        return tuple(dataclasses.replace(found[i], images=tuple(chosen[i][3])) for i in keys)

    def class_names(self) -> tuple[str, ...]:
        """The classifier's class names (its labels), in output order; () for a model without classes."""
        def compute() -> tuple[str, ...]:
            from generator.analysis.class_effects import class_names

            if self.model.output_kind != "classes":
                return ()
            return tuple(class_names(self.model, int(self.model.network.output.shape[-1])))

        return self.cache.value(self._key("class-names"), tuple[str, ...], compute)

    def top_classes(self, files: list[Path]) -> np.ndarray:
        """(files,) the class each file is predicted as (the most probable: a binary head's one output read as
        its two classes' probabilities)."""
        def compute() -> np.ndarray:
            from generator.analysis.after_layer import IMAGES

            size, head = self.config.images.size, self.model.head
            found = []
            for i in range(0, len(files), IMAGES):  # images through the network at once (64 at 224 px: gigabytes)
                pixels = np.stack([read_square(p, size, "classes") for p in files[i:i + IMAGES]]).astype(np.float32)
                output = self.model.predict(pixels)
                found.append(np.argmax(head.probabilities(output) if head else np.asarray(output), axis=-1))
            return np.concatenate(found).astype(np.int64)

        key = self._key("top-classes", "probabilities", [file_digest(p) for p in files], self.config.images.size)
        return self.cache.value(key, np.ndarray, compute)

    def check_classes(self) -> None:
        """One ``error:`` line for a class name the model does not have, classes asked of a model without, or the
        output's page asked of a classifier."""
        c, names = self.config.classes, self.class_names()
        if not names and (c.names or c.top):
            key = "classes.names" if c.names else "classes.top"
            raise GeneratorError(f"config key {key!r}: the model's output is a map, not classes; "
                                 "set classes.output: true for its output's page")
        if names and c.output and not (c.names or c.top):
            raise GeneratorError(f"config key 'classes.output': the model is a classifier ({len(names)} classes); "
                                 f"set classes.names or classes.top for its classes' pages")
        for i, name in enumerate(c.names):
            class_id(name, names, f"classes.names[{i}]")

    def _wanted_classes(self, files: list[Path]) -> list[tuple[str, int | None]]:
        """(name, class id) of each class to build: ``output`` for a model without classes."""
        c, names = self.config.classes, self.class_names()
        self.check_classes()
        if not names:
            return [("output", None)]
        if c.names:
            ids = [class_id(name, names, f"classes.names[{i}]") for i, name in enumerate(c.names)]
            return [(names[k], k) for k in ids]
        counts = np.bincount(self.top_classes(files), minlength=len(names)) if files else np.zeros(len(names))
        order = [int(k) for k in np.argsort(-counts, kind="stable")[:c.top] if counts[k] > 0]
        return [(names[k], k) for k in order]

    def _class_files(self, name: str, class_id: int | None, files: list[Path],
                     folders: dict[str, list[Path]]) -> tuple[str, int | None, str, list[Path]]:
        """(name, id, source, files) of a class: its folder, else the files predicted as it; every file for
        "output"; at most classes.images of them."""
        most = self.config.classes.images
        if class_id is None:
            return name, None, "all", files[:most]
        if folders.get(name):
            return name, class_id, "folder", folders[name][:most]
        predicted = self.top_classes(files) if files else np.zeros(0, np.int64)
        return name, class_id, "predicted", [p for p, k in zip(files, predicted) if k == class_id][:most]

    def _class_images(self, name: str, class_id: int | None, source: str, paths: list[Path]):
        from generator.analysis.concepts import ClassImages

        size = self.config.images.size
        pixels = np.stack([read_square(p, size, "classes") for p in paths]) if paths else \
            np.zeros((0, size, size, 3), np.uint8)
        return ClassImages(name, class_id, source, tuple(paths), pixels)


def class_id(name: str, names: tuple[str, ...], key: str) -> int:
    """The class ``name`` in ``classes.names`` picks: the one so named, or ``name#k`` class k where several share a name
    (ImageNet's two "crane"s); one ``error:`` line naming ``key`` where it picks none or more than one."""
    ids = [k for k, n in enumerate(names) if n == name]
    if len(ids) == 1:
        return ids[0]
    if len(ids) > 1:
        choices = " or ".join(shown(f"{name}#{k}") for k in ids)
        raise GeneratorError(f"config key {key!r}: {shown(name)} names {len(ids)} classes of the model "
                             f"({', '.join(map(str, ids))}); write {choices} to pick one")
    base, mark, number = name.rpartition("#")
    if mark and number.isdigit() and int(number) < len(names) and names[int(number)] == base:
        return int(number)
    raise GeneratorError(f"config key {key!r}: {shown(name)} is not a class of the model (its {len(names)} classes "
                         f"are named as its labels: {shown(names[0])}, ...)")


def concept_settings(section):
    """The CRAFT settings of the ``classes`` section."""
    from generator.analysis.concepts import ConceptSettings

    return ConceptSettings(concepts=section.concepts, crops=section.crops, crop_size=section.crop_size,
                           design=section.design, top_crops=section.top_crops,
                           random_directions=section.random_directions, seed=section.seed)


def _concepts_job(loaded, layer: str, images, settings, progress=None) -> ClassConcepts:
    from generator.analysis.after_layer import last_spatial_layer
    from generator.analysis.concepts import class_concepts

    found = class_concepts(loaded, layer or last_spatial_layer(loaded), images, settings)
    if progress is not None:
        progress(1)
    return found
