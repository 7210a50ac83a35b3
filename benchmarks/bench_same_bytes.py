"""Same bytes before and after a refactor: a cold build's ``docs/generated``, file by file.

    python benchmarks/bench_same_bytes.py manifest [--tree DIR] [--site tiny|default] OUT.json
    python benchmarks/bench_same_bytes.py compare BEFORE.json AFTER.json

``manifest`` builds a site cold (a fresh project folder, so a fresh cache) with the generator found
in ``--tree`` (default: this checkout; e.g. ``git archive <commit> | tar -x -C /tmp/before`` for the
code before a change) and writes the SHA-256 of every file under ``docs/generated`` to ``OUT.json``.
``--site tiny`` is the tests' tiny config on the tests' seeded classifier (``tests/tiny.py``);
``--site tiny-all`` adds a direction, diverse exciters, views and activation groups to it;
``--site default`` is this checkout's ``site_config.yaml`` (VGG16-HED: many minutes on a CPU).
``--cache DIR`` builds with DIR as the cache and keeps it: a copy of the first build's cache with some
entries deleted makes the second build recompute just those (whole default builds take long on a CPU).
``compare`` prints the files that differ, are missing or are new, and exits 1 if there are any; pictures whose
bytes differ but whose decoded pixels do not (an encoder setting) are counted on one line instead of listed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TINY = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from tiny import edit_config, make_project, tiny_classifier
project = Path(sys.argv[1])
tiny_classifier().save(project / "tiny.keras")
make_project(project, project / "tiny.keras")
if sys.argv[2] == "tiny-all":
    edit_config(project, exciters={{"directions": ["c3: 0.5*5 + 0.5*1"], "diversity": 2}},
                views={{"layers": ["c2"], "deepdream_steps": 3, "caricature_steps": 3}},
                groups={{"layers": ["c3"], "count": 3, "exciter_size": 16}})
"""


def tiny_project(project: Path, site: str, env: dict) -> None:
    script = TINY.format(tests=str(REPO / "tests"))
    subprocess.run([sys.executable, "-c", script, str(project), site], env=env, check=True)


def default_project(project: Path) -> None:
    """The shipped config as it is, its folders (photos, examples, notes) linked in: its relative paths hold."""
    shutil.copy(REPO / "site_config.yaml", project)
    (project / "images").symlink_to(REPO / "images")
    (project / "docs").mkdir()
    (project / "docs" / "notes").symlink_to(REPO / "docs" / "notes")


def manifest(tree: Path, site: str, cache: Path | None = None) -> dict[str, str]:
    """SHA-256 of every file a build of ``site`` writes, by its path under docs/generated; cold unless
    ``cache`` (a folder, kept) holds a previous build's cache."""
    env = {**os.environ, "PYTHONPATH": str(tree), "TQDM_DISABLE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    project = Path(tempfile.gettempdir()) / f"same-bytes-{site}"  # one path: it shows in the pages
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir()
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        (project / ".cache").symlink_to(cache.resolve())
    try:
        default_project(project) if site == "default" else tiny_project(project, site, env)
        shutil.copy(REPO / "mkdocs.yml", project)
        subprocess.run([sys.executable, "-m", "generator", "build", "--config", "site_config.yaml"],
                       cwd=project, env=env, check=True)
        out = (project / "docs" / "generated").resolve()
        return {str(p.relative_to(out)): file_digest(p) for p in sorted(out.rglob("*")) if p.is_file()}
    finally:
        shutil.rmtree(project, ignore_errors=True)


PICTURES = (".png", ".jpg", ".webp")


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes; for a picture also `` pixels=`` that of its decoded pixels (mode and size)."""
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    if path.suffix not in PICTURES:
        return found
    from PIL import Image

    with Image.open(path) as image:
        pixels = hashlib.sha256(f"{image.mode} {image.size}".encode() + image.tobytes()).hexdigest()
    return f"{found} pixels={pixels}"


def _pixels(digest: str) -> str | None:
    return digest.partition(" pixels=")[2] or None


def compare(before: dict[str, str], after: dict[str, str]) -> list[str]:
    differ = [p for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    recoded = [p for p in differ if _pixels(before[p]) and _pixels(before[p]) == _pixels(after[p])]
    lines = [f"differs: {p}" for p in differ if p not in recoded]
    lines += [f"same pixels, other bytes: {len(recoded)} pictures"] if recoded else []
    lines += [f"missing: {p}" for p in sorted(before.keys() - after.keys())]
    return lines + [f"new: {p}" for p in sorted(after.keys() - before.keys())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("manifest")
    make.add_argument("--tree", type=Path, default=REPO)
    make.add_argument("--site", choices=("tiny", "tiny-all", "default"), default="tiny")
    make.add_argument("--cache", type=Path, help="build with this cache folder (kept; default: a fresh one)")
    make.add_argument("out", type=Path)
    diff = commands.add_parser("compare")
    diff.add_argument("before", type=Path)
    diff.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "manifest":
        files = manifest(args.tree.resolve(), args.site, args.cache)
        args.out.write_text(json.dumps(files, indent=1, sort_keys=True))
        print(f"{len(files)} files hashed into {args.out}")
        return
    lines = compare(json.loads(args.before.read_text()), json.loads(args.after.read_text()))
    print("\n".join(lines) if lines else f"same bytes: {len(json.loads(args.after.read_text()))} files")
    sys.exit(1 if lines else 0)


if __name__ == "__main__":
    main()
