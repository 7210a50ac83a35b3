"""The figures the cache lacks, rendered over the machine's cores by a pool of fresh ("spawn")
processes: the build has TensorFlow loaded, which must not be forked, and the figure functions import
none of it. Each figure's bytes depend on its inputs alone, so the pool changes no file."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from generator.cache import render_figure


def render_all(jobs: dict[Path, tuple], workers: int) -> None:
    """Render each job ``cache file -> (render, args, kwargs)`` into its cache file, over up to
    ``workers`` fresh processes (in this one for a single worker or a single job)."""
    workers = min(workers, len(jobs))
    with tqdm(total=len(jobs), desc="figures", disable=None) as progress:
        if workers <= 1:
            for stored, job in jobs.items():
                render_figure(stored, *job)
                progress.update()
            return
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            try:
                for done in as_completed([pool.submit(render_figure, stored, *job) for stored, job in jobs.items()]):
                    done.result()
                    progress.update()
            except BaseException:  # a failed figure or Ctrl-C: stop now, not after the queued figures
                pool.shutdown(cancel_futures=True)
                raise


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
