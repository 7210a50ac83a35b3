"""Where the heavy analyses run: in the build's own process, or on the workers of a Ray cluster.

The heavy work (exciter batches, dataset-example shards, attribution methods) is cut into
:class:`Job` s: a module-level function of the loaded model and picklable arguments. The
in-process executor runs them one after another on the build's model; the Ray executor sends
them to actors that each load the model once (on a GPU where the cluster has them) and hands each
idle worker the next job. The results come back to the build, which alone writes the cache and
the site, so both executors give the same files.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from generator.errors import GeneratorError

log = logging.getLogger("generator")

EXECUTORS = ("local", "ray")
RETRIES = 3  # times a job is retried when its worker dies (a killed process, a lost node)


@dataclass(frozen=True)
class Job:
    run: Callable[..., Any]  # (loaded model, *args, progress=None) -> result; module-level, so Ray sends its name
    args: tuple
    size: int = 1  # what it finishes, in the progress bar's unit


class InProcess:
    """Runs every job here, on the build's own model (loaded on the first job)."""

    parts = 1  # how many jobs to cut a piece of work into: one pass, compiled once

    def __init__(self, model: Callable[[], Any]):
        self._model = model

    def run(self, jobs: Sequence[Job], progress: Callable[[int], None] | None = None) -> list:
        return [job.run(self._model(), *job.args, progress=progress) for job in jobs]


class RayExecutor:
    """Runs the jobs on Ray actors, one model per actor: a local cluster of this machine's cores, or
    the cluster at ``address``. ``workers`` actors (default: one per GPU where the cluster has GPUs,
    else one per CPU), the cluster's CPUs shared out among them. The actors start on the first job,
    so a build that finds everything in its cache never starts them."""

    def __init__(self, model_section, root, address: str = "", workers: int = 0):
        self._model_args = (model_section, root)
        self._address, self._workers = address, workers
        self._actors: list = []
        self._connected = False  # whether this executor started Ray here (and so stops it, or leaves the cluster)
        if address not in ("", "auto"):
            check_reachable(address)

    @property
    def parts(self) -> int:
        """How many jobs to cut a piece of work into: two a worker, so that none waits for the slowest."""
        return 2 * len(self._start())

    def _start(self) -> list:
        if self._actors:
            return self._actors
        import ray

        if not ray.is_initialized():
            self._connected = True
            try:
                if self._address:
                    ray.init(address=self._address, logging_level=logging.WARNING, log_to_driver=False)
                else:
                    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                             logging_level=logging.WARNING, log_to_driver=False)
            except (ConnectionError, RuntimeError, TimeoutError) as e:
                raise GeneratorError(f"--address {self._address or 'auto'}: cannot join the Ray cluster "
                                     f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
        count = self._workers or gpus or cpus
        threads = 1 if gpus else max(1, cpus // count)
        worker = ray.remote(ModelWorker).options(
            num_cpus=threads, num_gpus=1 if gpus else 0, max_restarts=RETRIES, max_task_retries=RETRIES)
        self._actors = [worker.remote(*self._model_args, threads) for _ in range(count)]
        log.info("ray: %d worker%s (%s each)", count, "s" if count > 1 else "", "a GPU" if gpus else f"{threads} CPU")
        return self._actors

    def run(self, jobs: Sequence[Job], progress: Callable[[int], None] | None = None) -> list:
        """Each job's result, in order; an idle worker takes the next job, ``progress`` counts finished jobs."""
        import ray

        actors = self._start()
        results: list = [None] * len(jobs)
        todo = list(enumerate(jobs))[::-1]
        running: dict = {}  # object ref -> (job index, actor)
        idle = list(actors)
        while todo or running:
            while todo and idle:
                i, job = todo.pop()
                actor = idle.pop()
                running[actor.run.remote(job.run, job.args)] = (i, actor)
            (done,), _ = ray.wait(list(running), num_returns=1)
            i, actor = running.pop(done)
            results[i] = _result(done, jobs[i])
            idle.append(actor)
            if progress is not None:
                progress(jobs[i].size)
        return results

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._connected:
            ray.shutdown()  # a local cluster stops; a joined one runs on


class ModelWorker:
    """A Ray actor's state: the model, loaded once; TensorFlow held to the actor's CPU share."""

    def __init__(self, model_section, root, threads: int):
        from generator import quiet

        quiet.import_keras()
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        from generator.models import load_model

        self.model = load_model(model_section, root)

    def run(self, fn: Callable, args: tuple):
        return fn(self.model, *args, progress=None)


def _result(ref, job: Job):
    """A finished job's value; its own GeneratorError as it was, a worker that kept dying as one line."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, GeneratorError):
            raise e.cause from None
        raise
    except ray.exceptions.RayActorError as e:
        raise GeneratorError(f"ray: a worker died {RETRIES + 1} times running {job.run.__name__} "
                             f"({str(e).splitlines()[0]})") from None


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A one-line error unless something listens at ``address`` (``host:port`` or ``ray://host:port``)."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise GeneratorError(f"--address {address!r}: expected host:port (a Ray head, e.g. 10.0.0.5:6379), "
                             f"ray://host:port or auto")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise GeneratorError(f"--address {address}: no Ray cluster answers there ({e.strerror or e}); "
                             f"start one with `ray start --head` or leave --address out") from None


def open_executor(name: str, model_section, root, address: str = "", workers: int = 0) -> RayExecutor | None:
    """The executor the command line names (one of EXECUTORS): a :class:`RayExecutor`, or None to run
    in the build's process. Checks the arguments and that ``address`` answers, before any work."""
    if name not in EXECUTORS:
        raise GeneratorError(f"--executor {name!r}: allowed: {', '.join(EXECUTORS)}")
    if workers < 0:
        raise GeneratorError(f"--workers {workers}: allowed: 1 or more, or 0 for one per GPU (else one per CPU)")
    if name == "local":
        if address or workers:
            raise GeneratorError("--address and --workers need --executor ray")
        return None
    try:
        import ray  # noqa: F401
    except ImportError:
        raise GeneratorError('--executor ray needs Ray: pip install -e ".[ray]"') from None
    return RayExecutor(model_section, root, address, workers)
