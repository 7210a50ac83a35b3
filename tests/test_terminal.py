"""A build's terminal shows the project's own lines (stage times, progress bars) and no TensorFlow chatter.

The build runs in a real process whose stdout and stderr are a pseudo-terminal, as in a user's shell
(progress bars draw only on a terminal), without the tests' TF_CPP_MIN_LOG_LEVEL.
"""

from __future__ import annotations

import fcntl
import gc
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import generator
from generator import quiet

from tiny import edit_config

SOURCE = Path(generator.__file__).parents[1]  # this checkout's generator, not another one installed in the venv


def run_in_terminal(project: Path, *args: str) -> tuple[int, str]:
    """``python -m generator *args`` in ``project`` on a pseudo-terminal: its exit code and everything it wrote."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a terminal's size: bars fit it
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")}
    env["PYTHONPATH"] = str(SOURCE)
    process = subprocess.Popen([sys.executable, "-m", "generator", *args], cwd=project, env=env,
                               stdin=subprocess.DEVNULL, stdout=child, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 1 << 16)
        except OSError:  # EIO: the process has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def finished_bars(text: str) -> dict[str, str]:
    """Each progress bar's last drawing, by its description: ``{"views c3 (DeepDream, Caricature)": "6/6", ...}``."""
    found = {}
    for piece in re.split(r"[\r\n]+", text):
        bar = re.match(r"\s*(.+?): +\d+%\|.*?\| *(\d+/\d+)", piece)
        if bar:
            found[bar.group(1)] = bar.group(2)
    return found


def test_a_build_shows_stage_times_and_progress_and_no_tensorflow_lines(tiny_project):
    edit_config(tiny_project, views={"layers": ["c3"], "deepdream_steps": 2, "caricature_steps": 3},
                groups={"layers": ["c3"], "count": 2, "exciter_size": 16},
                attribution={"methods": ["gradcam", "saliency"]},
                exciters={"method": "maco"})  # MACO's steps once printed TensorFlow's retracing warnings
    code, text = run_in_terminal(tiny_project, "build")
    assert code == 0, text
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    assert not [line for line in lines if quiet.chatter(line)]
    for chatter in ("absl", "oneDNN", "cuda", "tf.function", "retracing", "Warning", "WARNING", "Traceback"):
        assert chatter not in text, next(line for line in lines if chatter in line)
    bars = finished_bars(text)
    # 3 images in one batch (batch_size 4): 2 DeepDream + 3 Caricature steps.
    assert bars["views c3 (DeepDream, Caricature)"] == "5/5"
    assert bars["activation groups"] == "1/1"
    assert bars["group exciters c3"].split("/")[0] == bars["group exciters c3"].split("/")[1] != "0"
    assert bars["attribution"] == "2/2"
    assert bars["Grad-CAM of the examples"] == "1/1"
    assert bars["faithfulness"] == "2/2"  # the top class and the unit
    for name in ("import keras", "views", "groups", "attribution", "faithfulness", "exciters", "pages"):
        assert any(re.fullmatch(rf"{name} +\d+\.\d s", line) for line in lines), name
    assert lines[-1].startswith("site written to ")
    # A rebuild that finds every result in the cache imports neither Keras nor TensorFlow.
    rebuild = subprocess.run(
        [sys.executable, "-c", "import sys; from generator.cli import main; code = main(['build']); "
                               "print(code, 'keras' in sys.modules, 'tensorflow' in sys.modules)"],
        cwd=tiny_project, env={**os.environ, "PYTHONPATH": str(SOURCE)}, capture_output=True, text=True, timeout=60)
    assert rebuild.stdout.splitlines()[-1] == "0 False False", rebuild.stdout + rebuild.stderr
    assert "import keras" not in rebuild.stderr and "site written to" in rebuild.stderr


def test_chatter_is_absl_info_and_warning_lines_only():
    assert quiet.chatter("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert quiet.chatter("I0000 00:00:1796531258.803569    5727 port.cc:153] oneDNN custom operations are on.")
    assert quiet.chatter("W1206 04:27:38.803569 5727 cudart_stub.cc:31] Could not find cuda drivers")
    assert not quiet.chatter("E1206 04:27:38.803569 5727 kernel.cc:31] out of memory")
    assert not quiet.chatter("error: config key 'exciters.stepz' is not known")
    assert not quiet.chatter("images              0.0 s")


def test_the_collector_is_paused_for_the_import_and_left_as_it_was():
    seen = []
    for before in (True, False):
        (gc.enable if before else gc.disable)()
        try:
            with quiet._collector_paused():
                seen.append(gc.isenabled())
            seen.append(gc.isenabled())
        finally:
            gc.enable()
    assert seen == [False, True, False, False]
