"""Files written behind the compute: one thread writes them, in the order given, while the caller goes on.

A cold default build writes some 380 MiB of cache entries (the photos' activations alone 322 MB); written in
the build's thread they stop the compute for a second or more (the kernel's page copies, and its throttling of
dirty pages). Here they overlap it. A write that fails stops the ones after it (a record is never written
after its arrays failed), and its error is raised to the caller at its next submit, wait or settle.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable


class WriteBehind:
    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-writes")
        self._jobs: dict[Path, Future] = {}  # by the file each writes; a file written again: its last job
        self._failed: Exception | None = None

    def submit(self, path: Path, write: Callable[[], object]) -> None:
        """Run ``write()`` (which writes ``path``) after the writes submitted before it."""
        self.raise_failed()
        self._jobs[path] = self._pool.submit(self._run, write)

    def _run(self, write: Callable[[], object]) -> bool:
        if self._failed is not None:
            return False
        try:
            write()
        except Exception as e:  # noqa: BLE001 - any error stops the writes after it, and reaches the caller
            self._failed = e
            raise
        return True

    def wait(self, path: Path) -> None:
        """Until ``path`` is written, if it is being written; raises the error of a failed write."""
        job = self._jobs.get(path)
        if job is not None:
            job.result()
            self.raise_failed()

    def settle(self, cancel: bool = False) -> set[Path]:
        """Wait for every write (``cancel``: drop those not started); the files not written (failed, skipped after
        a failure, cancelled). The caller publishes the written ones, then :meth:`raise_failed`."""
        if cancel:
            for job in self._jobs.values():
                job.cancel()
        unwritten = {path for path, job in self._jobs.items()
                     if job.cancelled() or job.exception() is not None or not job.result()}
        self._jobs.clear()
        return unwritten

    def raise_failed(self) -> None:
        """Raise the error of the write that failed, if one did."""
        if self._failed is not None:
            raise self._failed

    def close(self) -> None:
        self.settle(cancel=True)
        self._pool.shutdown()
