"""Stage timings in the build log."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

log = logging.getLogger("generator")


@contextmanager
def stage(name: str):
    """Log how long the block took, as ``<name>  12.3 s``."""
    start = time.perf_counter()
    yield
    log.info("%-16s %6.1f s", name, time.perf_counter() - start)
