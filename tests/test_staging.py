"""Builds that survive crashes and neighbours: one build at a time, an atomic durable swap,
recovery after SIGKILL, and a docs_dir that never goes missing under ``mkdocs serve``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from watchdog.utils.dirsnapshot import DirectorySnapshot

from generator import staging
from generator.build import build_site
from generator.config import load_config

REPO = Path(__file__).resolve().parent.parent


def files(site: Path) -> dict[Path, bytes]:
    return {p.relative_to(site): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


def start_build(project: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "generator", "build"], cwd=project, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def read_until(process: subprocess.Popen, text: str) -> str:
    """The process' stderr up to the first line containing ``text`` (all of it if none does)."""
    seen = []
    for line in process.stderr:
        seen.append(line)
        if text in line:
            break
    return "".join(seen)


def test_two_builds_at_once_both_finish_one_after_the_other(built):
    project, _ = built
    (project / "site_config.yaml").write_text(
        (project / "site_config.yaml").read_text().replace("Random weights, random photos.", "Second edition."))
    with staging.locked(project):  # a build already running: both new ones must wait for it
        builds = [start_build(project), start_build(project)]
        early = [read_until(b, "waiting for it to finish") for b in builds]
        for text in early:
            assert f"another build of this project is running (pid {os.getpid()}); waiting for it to finish" in text
    outputs = [text + b.communicate()[1] for text, b in zip(early, builds)]
    assert [b.returncode for b in builds] == [0, 0], outputs
    assert all("Traceback" not in out and "site written to" in out for out in outputs)
    site = project / "docs" / "generated"
    assert "Second edition." in (site / "report" / "index.md").read_text()
    assert (site / "models" / "tiny" / "c3" / "5" / "unit.json").is_file()
    assert sorted(p.name for p in (project / "docs").iterdir()) == sorted(["generated", staging.current(site).name])


def test_a_build_killed_mid_way_leaves_the_previous_site_and_the_next_one_recovers(built):
    project, _ = built
    site = project / "docs" / "generated"
    before = files(site)
    config = yaml.safe_load((project / "site_config.yaml").read_text())
    config["exciters"]["steps"] = 6  # work to do: the featured exciters are computed again
    config["notes"]["predictions"] = "After the crash."
    (project / "site_config.yaml").write_text(yaml.safe_dump(config))
    process = start_build(project)
    read_until(process, "check config")  # past the lock, with a folder of its own
    live = staging.current(site)
    (folder,) = [p for p in (project / "docs").iterdir() if p.name != "generated" and p != live]
    while process.poll() is None and not any(p.is_file() for p in folder.rglob("*")):  # killed at its first figure
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert folder.is_dir() and not list(folder.rglob("units.csv"))  # half-written: the layers' tables come last
    assert files(site) == before  # the previous site, untouched
    with staging.locked(project):  # the kernel released the dead build's lock
        pass
    build_site(load_config(project / "site_config.yaml"), project)
    assert "After the crash." in (site / "report" / "index.md").read_text()
    assert sorted(p.name for p in (project / "docs").iterdir()) == sorted(["generated", staging.current(site).name])


def make_site(folder: Path, text: str) -> Path:
    for rel in ("index.md", "report/index.md", "models/m/l/0/index.md"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(f"{text} {rel}")
    return folder


STEPS = ["sync", "symlink", "replace", "rmtree"]


@pytest.fixture
def instrumented(monkeypatch):
    """Record every filesystem step of a swap; a step named in ``crash_at`` dies instead (as SIGKILL would)."""
    state = {"steps": [], "crash_at": None, "after_each": lambda: None}

    def step(name, real):
        def run(*args, **kwargs):
            if state["crash_at"] == (name, sum(s == name for s in state["steps"])):
                raise SystemExit("killed")
            result = real(*args, **kwargs)
            state["steps"].append(name)
            state["after_each"]()
            return result
        return run

    monkeypatch.setattr(staging.durable, "sync_all", step("sync", staging.durable.sync_all))
    monkeypatch.setattr(staging.os, "symlink", step("symlink", os.symlink))
    monkeypatch.setattr(staging.os, "replace", step("replace", os.replace))
    monkeypatch.setattr(staging.shutil, "rmtree", step("rmtree", shutil.rmtree))
    return state


def test_docs_dir_names_a_complete_site_at_every_step_of_a_swap(tmp_path, instrumented):
    out = tmp_path / "docs" / "generated"
    with staging.staged(out) as folder:
        make_site(folder, "old")
    old, new = files(out), files(make_site(tmp_path / "expected", "new"))
    seen = []

    def check():  # what mkdocs serve's polling watcher does: a snapshot must never fail
        DirectorySnapshot(str(out))
        seen.append(files(out))

    instrumented["after_each"], instrumented["steps"] = check, []
    with staging.staged(out) as folder:
        make_site(folder, "new")
    assert instrumented["steps"] == ["sync", "symlink", "replace", "rmtree"]  # flushed before any name points at it
    assert seen == [old, old, new, new]
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["generated", staging.current(out).name])


def test_a_site_folder_from_before_links_becomes_a_link(tmp_path):
    out = tmp_path / "docs" / "generated"
    make_site(out, "old")
    with staging.staged(out) as folder:
        make_site(folder, "new")
    assert out.is_symlink() and files(out) == files(make_site(tmp_path / "expected", "new"))
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["generated", staging.current(out).name])


@pytest.mark.parametrize("crash_at", [(step, 0) for step in STEPS] + [("replace", 1)])
def test_a_swap_killed_at_any_step_is_recovered(tmp_path, instrumented, crash_at):
    out = tmp_path / "docs" / "generated"
    make_site(out, "old")  # a real folder: the swap that moves it aside has the most steps
    old, new = files(out), files(make_site(tmp_path / "expected", "new"))
    instrumented["crash_at"] = crash_at
    folder = out.parent / ".generated-999-dead"
    make_site(folder, "new")
    with pytest.raises(SystemExit):
        staging.swap(folder, out)
    assert files(out) in (old, new) or not out.exists()  # missing only while a pre-link folder is moved aside
    instrumented["crash_at"] = None
    staging.recover(out)
    assert files(out) in (old, new)
    live = staging.current(out)
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["generated", *([live.name] if live else [])])


def test_swap_flushes_before_the_rename_and_syncs_the_folder_after(tmp_path, monkeypatch):
    out = tmp_path / "docs" / "generated"
    events = []
    monkeypatch.setattr(staging.durable, "sync_all", lambda: events.append("sync all"))
    monkeypatch.setattr(staging.durable, "sync_dir", lambda path: events.append(f"sync {path.name}"))
    real_replace = os.replace
    monkeypatch.setattr(staging.os, "replace", lambda a, b: events.append(f"rename to {Path(b).name}") or real_replace(a, b))
    with staging.staged(out) as folder:
        make_site(folder, "new")
    assert events == ["sync all", "rename to generated", "sync docs"]


def test_clean_removes_the_site_its_folders_and_the_cache(built, monkeypatch):
    from generator.cli import main

    project, _ = built
    build_site(load_config(project / "site_config.yaml"), project)  # now a link to a folder
    assert (project / "docs" / "generated").is_symlink()
    monkeypatch.chdir(project)
    assert main(["clean"]) == 0
    assert list((project / "docs").iterdir()) == []
    assert not (project / ".cache" / "generator").exists()


def test_a_project_where_the_lock_cannot_be_created_is_one_line(tmp_path):
    from generator.errors import GeneratorError

    (tmp_path / ".cache").write_text("a file where the cache folder should be")
    with pytest.raises(GeneratorError, match=r"^cannot create the build lock .*build\.lock: File exists$"):
        with staging.locked(tmp_path):
            pass
