"""What this machine lends the build: the cores this process may run on."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, as a container's limit)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def in_threads(fn: Callable, *iterables: Iterable, most: int = 4) -> list:
    """``[fn(*args) for args in zip(*iterables)]``, in order, up to one call a core (``most`` at most) at a time:
    for calls that spend their time in compiled code that lets go of the GIL (NumPy, BLAS, a compiled step). An
    error or Ctrl-C cancels the calls not yet started."""
    pool = ThreadPoolExecutor(max(1, min(most, cores())))
    try:
        found = list(pool.map(fn, *iterables))
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()
    return found
