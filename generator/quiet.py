"""The build's terminal shows the project's own lines: TensorFlow's start-up chatter is filtered out.

TensorFlow 2.21 writes its C++ start-up notices (oneDNN, CUDA drivers) through absl before absl's
logging is initialised, when no threshold applies (``TF_CPP_MIN_LOG_LEVEL`` included), straight to
file descriptor 2. :func:`import_keras` imports Keras and its backend with that descriptor
captured and passes on every line that is not an absl info or warning line: errors still show (and with
Python's garbage collector paused, which makes a command start about 0.45 s sooner).
"""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager

# absl's "I1206 04:27:38.803569    5727 port.cc:153] ..." (info and warning only) and its notice before them.
_CHATTER = re.compile(r"(WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] )")


def import_keras() -> None:
    """Import Keras (and TensorFlow) without their start-up chatter on the terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # (oneDNN stays on: it makes CPU convolutions ~3x faster)
    with _filtered_stderr(), _collector_paused():
        import keras  # noqa: F401
    logging.getLogger("absl").setLevel(logging.ERROR)  # "Compiled the loaded model, but ..." and the like
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # "... triggered tf.function retracing ..." (MACO's steps)


def quiet_python_warnings() -> None:
    """Python's warnings off, as the ``warnings`` docs advise for applications, unless ``-W`` or
    ``PYTHONWARNINGS`` asks for them."""
    if not sys.warnoptions:
        warnings.simplefilter("ignore")


def chatter(line: str) -> bool:
    """Whether a line on stderr is absl's info or warning chatter."""
    return bool(_CHATTER.match(line))


@contextmanager
def _collector_paused():
    """Python's cyclic garbage collector off for the block: TensorFlow's import makes some 400,000 objects that live
    as long as the process, and the full passes they set off took about 0.45 s of a command's 4.6 s start (a
    collection after the import frees some 4,000 objects of 725,000)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _filtered_stderr():
    """File descriptor 2 captured for the block; its lines other than :func:`chatter` written back after."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(True) if not chatter(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
