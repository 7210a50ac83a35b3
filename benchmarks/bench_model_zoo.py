"""Every keras.applications family builds a strict site: one model a family, random weights, a small config.

    python benchmarks/bench_model_zoo.py [name ...]

For each model of ``tests/tiny.py``'s ``ZOO`` and ``TUTORIALS`` (or the names given) makes a project (``zoo_project``: 3
photos of 96 px, a featured mid-level unit, 2-step exciters, its circuit and attribution), runs
``python -m generator build`` and ``mkdocs build --strict`` on it in fresh processes, and prints one
line a model: ``model=<name> ok=<0|1> seconds=<s> pages=<n>`` (ok: both exited 0 and the featured
unit's page is there; seconds: the generator's build alone; pages: the Markdown pages it wrote).

``TUTORIALS`` are the tutorials' own models saved as ``.keras`` files, random weights (``weights=None``): the Keras
transfer-learning model (a frozen MobileNetV2 base called inside it, augmentation, ``Rescaling``, one logit with two
labels) and the TensorFlow flowers model (augmentation and ``Rescaling`` inside, ``Dense(5)`` logits), both at 96 px.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from tiny import TUTORIALS, ZOO, build_zoo_model  # noqa: E402


def main() -> None:
    for name in sys.argv[1:] or [*ZOO, *TUTORIALS]:
        with tempfile.TemporaryDirectory() as tmp:
            ok, seconds, pages, problem = build_zoo_model(name, Path(tmp))
        print(f"model={name} ok={int(ok)} seconds={seconds:.1f} pages={pages}", flush=True)
        if problem:
            print(f"  {problem}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
