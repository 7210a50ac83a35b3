"""The figures the cache lacks, rendered over the machine's cores by a pool of fresh ("spawn")
processes: the build has TensorFlow loaded, which must not be forked, and the figure functions import
none of it. Each figure's bytes depend on its inputs alone, so the pool changes no file.

The pool draws while the build is still queueing figures (reading the examples' crops, hashing each
figure's inputs into its cache key), and its workers import their modules meanwhile; a handful of figures
(a rebuild's) are drawn in this process, where starting a pool would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from generator.cache import render_figure
from generator.errors import GeneratorError

IN_PROCESS = 8  # up to this many figures are drawn in this process; one more starts the pool


class FigurePool:
    """Renders figures into temporary files beside their cache files as they are added: the first ``IN_PROCESS``
    wait, then a pool of up to ``workers`` processes starts and draws them and every later one while more are
    added. Each figure drawn is handed, in the order added, to ``keep(tmp, stored)``
    (:meth:`generator.cache.Cache.keep`, which publishes it) as soon as it is done and the build adds another or
    waits in :meth:`finish`, which draws what waits here and waits for the pool. Used as a context, which finishes
    at its end; an error or Ctrl-C before then cancels the figures not yet started and keeps the ones drawn."""

    def __init__(self, workers: int, keep: Callable[[Path, Path], None]):
        self.workers, self.keep = workers, keep
        self.added: set[Path] = set()  # the cache files asked for (a figure queued twice is drawn once)
        self.waiting: list[tuple[Path, tuple]] = []  # added before the pool is worth starting
        self.pool: ProcessPoolExecutor | None = None
        self.futures: deque[tuple[Path, Future]] = deque()  # (cache file, its drawing) not yet kept, in order
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
        self._keep_drawn()

    def _drawn(self, future: Future) -> None:
        if _drawn_whole(future):  # the bar counts figures drawn
            self.bar.update()

    def _keep_drawn(self, wait: bool = False) -> None:
        """Keep the figures drawn, in the order added, up to the first still drawing (with ``wait``: all of them);
        a figure that failed raises its error."""
        while self.futures and (wait or self.futures[0][1].done()):
            stored, future = self.futures[0]
            tmp = future.result()
            self.futures.popleft()
            self.keep(tmp, stored)

    def finish(self) -> None:
        """Draw the figures waiting here, wait for the pool's, keep each. The first failure is raised, the figures
        not yet started cancelled, the ones drawn kept."""
        try:
            while self.waiting:
                stored, job = self.waiting.pop(0)
                self.keep(render_figure(stored, *job), stored)
                self.bar.update()
            self._keep_drawn(wait=True)
        except BaseException:
            self._discard()
            raise
        self._close()

    def _discard(self) -> None:
        """Stop: cancel the figures not yet started, wait for the running ones, keep every one drawn whole."""
        futures = self.futures
        self._close(cancel=True)
        for stored, future in futures:
            if _drawn_whole(future):
                with suppress(GeneratorError):  # the error being raised comes first; keep removed what it could not publish
                    self.keep(future.result(), stored)

    def _close(self, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=cancel)
        if self.bar is not None:
            self.bar.close()
        self.pool, self.bar, self.futures, self.added = None, None, deque(), set()

    def __enter__(self) -> FigurePool:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.finish()  # (a no-op after an explicit finish)
        else:
            self._discard()  # an error: stop now, not after the queued figures


def _drawn_whole(future: Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None
