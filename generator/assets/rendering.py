"""The figures the cache lacks, rendered over the machine's cores by a pool of fresh ("spawn")
processes: the build has TensorFlow loaded, which must not be forked, and the figure functions import
none of it. Each figure's bytes depend on its inputs alone, so the pool changes no file.

The pool draws while the build is still queueing figures (reading the examples' crops, hashing each
figure's inputs into its cache key), and its workers import their modules meanwhile; a handful of figures
(a rebuild's) are drawn in this process, where starting a pool would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from generator.cache import render_figure

IN_PROCESS = 8  # up to this many figures are drawn in this process; one more starts the pool


class FigurePool:
    """Renders figures into their cache files as they are added: the first ``IN_PROCESS`` wait, then a pool of
    up to ``workers`` processes starts and draws them and every later one while more are added; :meth:`finish`
    draws what waits here and waits for the pool. Used as a context: an error or Ctrl-C before the end cancels
    the figures not yet started."""

    def __init__(self, workers: int):
        self.workers = workers
        self.waiting: list[tuple[Path, tuple]] = []  # added before the pool is worth starting
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list[Future] = []
        self.bar: tqdm | None = None

    def add(self, stored: Path, job: tuple) -> None:
        """Render ``job`` = (render, args, kwargs) into the cache file ``stored``, now or by :meth:`finish`."""
        if self.bar is None:
            self.bar = tqdm(total=0, desc="figures", disable=None)
        self.bar.total += 1
        self.waiting.append((stored, job))
        if self.pool is None and (self.workers <= 1 or len(self.waiting) <= IN_PROCESS):
            return
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        for stored, job in self.waiting:
            future = self.pool.submit(render_figure, stored, *job)
            future.add_done_callback(lambda _: self.bar.update())
            self.futures.append(future)
        self.waiting = []

    def finish(self) -> None:
        """Draw the figures waiting here, wait for the pool's; the first failure is raised."""
        for stored, job in self.waiting:
            render_figure(stored, *job)
            self.bar.update()
        self.waiting = []
        for future in self.futures:
            future.result()
        self._close()

    def _close(self, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=cancel)
        if self.bar is not None:
            self.bar.close()
        self.pool, self.bar, self.futures = None, None, []

    def __enter__(self) -> FigurePool:
        return self

    def __exit__(self, kind, error, trace) -> None:
        self._close(cancel=kind is not None)  # an error: stop now, not after the queued figures


def render_all(jobs: dict[Path, tuple], workers: int) -> None:
    """Render each job ``cache file -> (render, args, kwargs)`` into its cache file, over up to
    ``workers`` fresh processes (in this one for a single worker or a handful of jobs)."""
    with FigurePool(workers) as pool:
        for stored, job in jobs.items():
            pool.add(stored, job)
        pool.finish()


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
