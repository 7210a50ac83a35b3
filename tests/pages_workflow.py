"""The Pages workflow (.github/workflows/pages.yml) read as data, and its own ``run:`` steps run here.

Shared by tests/test_publish.py and benchmarks/bench_publish.py. The steps that install packages
are left out (this environment has them) and so are the ``uses:`` actions (checkout, cache,
deploy: they need GitHub); every ``${{ ... }}`` expression a run step sees must be in EXPRESSIONS.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github/workflows/pages.yml"
# What configure-pages gives a project site (no trailing slash), standing in for the runner's value.
PAGES_URL = "https://example.github.io/my-report"
EXPRESSIONS = {"${{ steps.pages.outputs.base_url }}": PAGES_URL}


@dataclass(frozen=True)
class StepRun:
    name: str
    seconds: float
    returncode: int
    output: str


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def cached_path(workflow: dict) -> str:
    """The folder that the workflow's actions/cache step saves and restores."""
    (path,) = [s["with"]["path"] for s in steps(workflow) if s.get("uses", "").startswith("actions/cache@")]
    return path


def steps(workflow: dict) -> list[dict]:
    return [step | {"job_env": job.get("env", {})} for job in workflow["jobs"].values() for step in job["steps"]]


def run_steps(workflow: dict) -> list[dict]:
    """The ``run:`` steps that build the site, in order: every run step but the package installs."""
    return [s for s in steps(workflow) if "run" in s and "pip install" not in s["run"]]


def fresh_copy(dest: Path) -> Path:
    """The repository's files as a clone would have them (tracked, or new and not ignored) copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _substitute(text: str) -> str:
    for expression, value in EXPRESSIONS.items():
        text = text.replace(expression, value)
    if "${{" in text:
        raise ValueError(f"the workflow has an expression this runner stand-in does not know: {text!r}")
    return text


def run(project: Path, workflow: dict | None = None) -> list[StepRun]:
    """Run the workflow's site-building steps in ``project`` with bash -e, as the runner does; stop at a failure.

    ``python`` and the tools it installed are this interpreter's (its folder leads PATH).
    """
    results = []
    for step in run_steps(workflow or load()):
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        env |= {k: _substitute(str(v)) for k, v in {**step["job_env"], **step.get("env", {})}.items()}
        start = time.perf_counter()
        done = subprocess.run(["bash", "-e", "-c", _substitute(step["run"])], cwd=project, env=env,
                              capture_output=True, text=True)
        results.append(StepRun(step.get("name", step["run"]), round(time.perf_counter() - start, 2),
                               done.returncode, done.stdout + done.stderr))
        if done.returncode:
            break
    return results
