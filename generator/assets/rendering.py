"""The figures the cache lacks, rendered over the machine's cores by a pool of fresh ("spawn")
processes: the build has TensorFlow loaded, which must not be forked, and the figure functions import
none of it. Each figure's bytes depend on its inputs alone, so the pool changes no file.

The pool draws while the build is still queueing figures (reading the examples' crops, hashing each
figure's inputs into its cache key), and its workers import their modules meanwhile; a handful of figures
(a rebuild's) are drawn in this process, where starting a pool would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from generator.cache import render_figure

IN_PROCESS = 8  # up to this many figures are drawn in this process; one more starts the pool


class FigurePool:
    """Renders figures into temporary files beside their cache files as they are added: the first ``IN_PROCESS``
    wait, then a pool of up to ``workers`` processes starts and draws them and every later one while more are
    added; :meth:`finish` draws what waits here, waits for the pool and hands each figure drawn to ``keep(tmp,
    stored)`` (:meth:`generator.cache.Cache.keep`, which publishes it). Used as a context, which finishes at its end; an error or
    Ctrl-C before then cancels the figures not yet started."""

    def __init__(self, workers: int, keep: Callable[[Path, Path], None]):
        self.workers, self.keep = workers, keep
        self.added: set[Path] = set()  # the cache files asked for (a figure queued twice is drawn once)
        self.waiting: list[tuple[Path, tuple]] = []  # added before the pool is worth starting
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list[tuple[Path, Future]] = []  # (cache file, its drawing)
        self.bar: tqdm | None = None

    def add(self, stored: Path, job: tuple) -> None:
        """Render ``job`` = (render, args, kwargs) into the cache file ``stored``, now or by :meth:`finish` (once,
        however often it is added)."""
        if stored in self.added:
            return
        self.added.add(stored)
        if self.bar is None:
            self.bar = tqdm(total=0, desc="figures", disable=None)
        self.bar.total += 1
        self.waiting.append((stored, job))
        if self.pool is None and (self.workers <= 1 or len(self.waiting) <= IN_PROCESS):
            return
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        for path, waiting in self.waiting:
            future = self.pool.submit(render_figure, path, *waiting)
            future.add_done_callback(self._drawn)
            self.futures.append((path, future))
        self.waiting = []

    def _drawn(self, future: Future) -> None:
        if _drawn_whole(future):  # the bar counts figures drawn
            self.bar.update()

    def finish(self) -> None:
        """Draw the figures waiting here, wait for the pool's, keep each. The first failure is raised, the figures
        not yet started cancelled and the ones drawn removed."""
        drawn = []
        try:
            for stored, job in self.waiting:
                drawn.append((render_figure(stored, *job), stored))
                self.bar.update()
            self.waiting = []
            drawn += [(future.result(), stored) for stored, future in self.futures]
        except BaseException:
            self._discard([tmp for tmp, _ in drawn])
            raise
        self._close()
        for tmp, stored in drawn:
            self.keep(tmp, stored)

    def _discard(self, drawn: list[Path]) -> None:
        """Stop: cancel the figures not yet started, wait for the running ones, remove every file drawn."""
        futures = self.futures
        self._close(cancel=True)
        for tmp in drawn + [future.result() for _, future in futures if _drawn_whole(future)]:
            tmp.unlink(missing_ok=True)

    def _close(self, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=cancel)
        if self.bar is not None:
            self.bar.close()
        self.pool, self.bar, self.futures, self.added = None, None, [], set()

    def __enter__(self) -> FigurePool:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.finish()  # (a no-op after an explicit finish)
        else:
            self._discard([])  # an error: stop now, not after the queued figures


def _drawn_whole(future: Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None
