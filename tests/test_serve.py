"""``python -m generator serve``: the build queue, the watched inputs, and the command in a real process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from generator.errors import GeneratorError
from generator.serve import Rebuilds, parse_address, rebuild_loop, watched_inputs
from tiny import edit_config

REPO = Path(__file__).resolve().parent.parent
BOUND_S = 90  # a rebuild after a note change takes seconds; generous for a loaded 2-core machine


def test_changes_during_a_build_queue_exactly_one_more():
    rebuilds, calls, busy = Rebuilds(), [], threading.Event()

    def build():
        assert not busy.is_set(), "two builds at once"
        busy.set()
        calls.append(len(calls))
        if len(calls) == 1:
            for _ in range(3):  # three changes while the first build runs
                rebuilds.request()
        busy.clear()

    polls_after_two = []

    def running():  # the server runs on for three more polls after the second build
        if len(calls) >= 2:
            polls_after_two.append(1)
        return len(polls_after_two) < 3

    rebuilds.request()
    rebuild_loop(build, rebuilds, running)
    assert calls == [0, 1]


def test_no_change_no_build():
    rebuilds, calls, polls = Rebuilds(), [], []
    rebuild_loop(lambda: calls.append(1), rebuilds, running=lambda: len(polls) < 3 and polls.append(1) is None)
    assert calls == [] and len(polls) == 3


def test_watched_inputs_are_the_config_its_notes_images_and_pages(tiny_project):
    (tiny_project / "notes").mkdir()
    (tiny_project / "notes" / "intro.md").write_text("Hello.")
    edit_config(tiny_project, notes={"introduction": "notes/intro.md"})
    inputs = watched_inputs(tiny_project / "site_config.yaml", tiny_project)
    root = tiny_project.resolve()
    assert inputs.files == {root / "site_config.yaml", root / "notes" / "intro.md"}
    assert inputs.folders == {root / "images", root / "docs" / "pages"}
    assert inputs.wants(str(root / "images" / "new.jpg")) and inputs.wants(str(root / "docs/pages/a/b.md"))
    assert not inputs.wants(str(root / "notes" / "other.md"))
    assert not inputs.wants(str(root / ".cache" / "generator" / "x"))


def test_a_broken_config_still_watches_itself(tiny_project):
    (tiny_project / "site_config.yaml").write_text("site: [unclosed")
    inputs = watched_inputs(tiny_project / "site_config.yaml", tiny_project)
    assert inputs.files == {(tiny_project / "site_config.yaml").resolve()}


@pytest.mark.parametrize("text, message", [("8000", "expected HOST:PORT"), ("localhost:http", "expected HOST:PORT"),
                                           ("127.0.0.1:70000", "expected HOST:PORT")])
def test_bad_dev_addr(text, message):
    with pytest.raises(GeneratorError, match=message):
        parse_address(text)


def test_a_taken_port_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(GeneratorError, match="cannot listen there .*--dev-addr HOST:PORT"):
            parse_address(f"127.0.0.1:{s.getsockname()[1]}")


# --- the command in a real process ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_for(condition, what: str, bound: float = BOUND_S):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not within {bound} s: {what}")


class Output:
    """A process's merged stdout and stderr, read line by line in a thread."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(process.stdout), daemon=True).start()

    def errors(self) -> list[str]:
        return [line for line in self.lines if line.startswith("error:")]


def processes_in(folder: Path) -> list[int]:
    """Processes whose working folder is ``folder`` (what serve started runs there)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == folder.resolve():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def test_serve_rebuilds_on_a_note_change_keeps_the_last_good_site_and_stops_cleanly(built):
    project, _ = built
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    (project / "notes").mkdir()
    note = project / "notes" / "predictions.md"
    note.write_text("The first version of the note.\n")
    edit_config(project, notes={"predictions": "notes/predictions.md"})
    address = f"127.0.0.1:{free_port()}"
    report = f"http://{address}/report/"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's generator, whatever is installed
    serving = subprocess.Popen([sys.executable, "-m", "generator", "serve", "--dev-addr", address], cwd=project,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(serving)
    try:
        page = wait_for(lambda: fetch(report), "the report page served", bound=3 * BOUND_S)
        assert "The first version of the note." in page

        note.write_text("The second version of the note.\n")
        wait_for(lambda: "The second version" in (fetch(report) or ""), "the page shows the changed note")

        (project / "site_config.yaml").write_text((project / "site_config.yaml").read_text()
                                                  + "exciters_typo: {steps: 3}\n")
        errors = wait_for(output.errors, "the config error shown")
        assert len(errors) == 1 and "exciters_typo" in errors[0], errors
        time.sleep(2)  # the server had time to pick up anything a failed build might have left
        assert "The second version of the note." in fetch(report)
        assert not any("Traceback" in line for line in output.lines), "".join(output.lines)

        serving.send_signal(signal.SIGINT)
        assert serving.wait(60) == 0, "".join(output.lines[-20:])
    finally:
        if serving.poll() is None:
            serving.kill()
    assert wait_for(lambda: not processes_in(project), "no process left running in the project", bound=15)
    assert fetch(report) is None
