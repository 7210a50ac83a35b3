"""``python -m generator serve``: build, serve the site with MkDocs' live reload, rebuild on a change.

Three parts, each simple on its own:

- MkDocs' own server (``mkdocs serve``, a child process) serves ``docs/generated`` and reloads
  the browser when it changes. A build swaps that folder in atomically (:mod:`generator.staging`),
  so the server sees the old site or the new one, never half of one, and a failed build leaves
  the last good site up.
- Watchers (:class:`Watchers`, watchfiles) report changes to what the author edits: the config,
  the note files it names, the images folder and ``docs/pages/``.
- One loop (:func:`rebuild_loop`) runs the builds, one at a time: a change during a build queues
  exactly one more build, however many changes came (:class:`Rebuilds`). The cache makes a
  rebuild after a note change take seconds: only the pages are written again.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from generator.errors import GeneratorError

log = logging.getLogger("generator")

POLL_S = 0.5  # how often the loop checks that the server still runs
STOP_S = 10.0  # how long the server gets to stop before it is killed


@dataclass(frozen=True)
class Inputs:
    """What a build reads that an author edits: single files (their folders are watched, so an
    editor's save by rename is seen) and whole folders."""

    files: frozenset[Path]
    folders: frozenset[Path]

    def wants(self, path: str) -> bool:
        p = Path(path)
        return p in self.files or any(p.is_relative_to(f) for f in self.folders)


def watched_inputs(config_path: Path, project: Path) -> Inputs:
    """The config, the note files it names, its images folder and ``docs/pages/``; just the config and
    ``docs/pages/`` while the config does not load."""
    from generator.build import HAND_WRITTEN
    from generator.config import load_config

    config_path = config_path.resolve()
    files, folders = {config_path}, {project.resolve() / HAND_WRITTEN}
    try:
        config = load_config(config_path)
    except GeneratorError:
        pass
    else:
        files.update(p.resolve() for p in config.note_files())
        folders.add(config.path(config.images.dir).resolve())
    return Inputs(frozenset(files), frozenset(folders))


class Rebuilds:
    """The build queue: any number of requests while a build runs make exactly one more build."""

    def __init__(self):
        self._pending = threading.Event()

    def request(self) -> None:
        self._pending.set()

    def take(self, timeout: float) -> bool:
        """Whether a build is due (waiting up to ``timeout`` seconds); taking it clears the queue."""
        if not self._pending.wait(timeout):
            return False
        self._pending.clear()
        return True


def rebuild_loop(build: Callable[[], None], rebuilds: Rebuilds, running: Callable[[], bool]) -> None:
    """Run ``build`` for each queued rebuild, one at a time, while ``running()`` says the server is up."""
    while running():
        if rebuilds.take(POLL_S):
            build()


class Watchers:
    """watchfiles watchers in threads, calling ``changed(paths)`` for each batch of changes to the inputs."""

    def __init__(self, changed: Callable[[list[str]], None]):
        self.changed = changed
        self.inputs: Inputs | None = None
        self._stop: threading.Event | None = None
        self._threads: list[threading.Thread] = []

    def follow(self, inputs: Inputs) -> None:
        """Watch ``inputs`` (unchanged ones keep their watchers; new ones start before the old stop)."""
        if inputs == self.inputs:
            return
        old_stop, old_threads = self._stop, self._threads
        self.inputs, self._stop = inputs, threading.Event()
        singles = {f.parent for f in inputs.files if f.parent.is_dir()}
        folders = {f for f in inputs.folders if f.is_dir()}
        self._threads = [self._start(singles, recursive=False), self._start(folders, recursive=True)]
        self._join(old_stop, old_threads)

    def stop(self) -> None:
        self._join(self._stop, self._threads)
        self._threads = []

    def _start(self, paths: set[Path], recursive: bool) -> threading.Thread:
        thread = threading.Thread(target=self._watch, args=(sorted(paths), recursive, self.inputs, self._stop),
                                  daemon=True)
        thread.start()
        return thread

    def _watch(self, paths: list[Path], recursive: bool, inputs: Inputs, stop: threading.Event) -> None:
        import watchfiles

        if not paths:
            return
        for changes in watchfiles.watch(*paths, watch_filter=lambda _, path: inputs.wants(path), recursive=recursive,
                                        stop_event=stop, debounce=300, raise_interrupt=False):
            self.changed(sorted({path for _, path in changes}))

    @staticmethod
    def _join(stop: threading.Event | None, threads: list[threading.Thread]) -> None:
        if stop is not None:
            stop.set()
        for t in threads:
            t.join()


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as MkDocs' ``--dev-addr`` takes it; one line when malformed or the port is taken."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GeneratorError(f"--dev-addr {text!r}: expected HOST:PORT, for example 127.0.0.1:8000")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host.strip("[]"), int(port)))
        except OSError as e:
            raise GeneratorError(f"--dev-addr {text}: cannot listen there ({e.strerror}); "
                                 "choose another with --dev-addr HOST:PORT") from None
    return host, int(port)


def serve(config_path: Path, dev_addr: str, build_once: Callable[[], bool], project: Path) -> int:
    """Build, start MkDocs' server at ``dev_addr``, rebuild on each change until Ctrl-C (or SIGTERM); exit status 0.

    ``build_once`` builds the site and says whether it succeeded (a failure already printed as its
    one line). With no site at all after the first build there is nothing to serve: exit status 2.
    """
    from generator.build import GENERATED

    parse_address(dev_addr)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    if not build_once() and not (project / GENERATED).is_dir():
        return 2
    rebuilds = Rebuilds()

    def changed(paths: list[str]) -> None:
        log.info("changed: %s", ", ".join(os.path.relpath(p, project) for p in paths))
        rebuilds.request()

    def build() -> None:
        build_once()
        watchers.follow(watched_inputs(config_path, project))  # the config may name other notes now

    watchers = Watchers(changed)
    watchers.follow(watched_inputs(config_path, project))
    server = _start_mkdocs(dev_addr, project)
    log.info("serving http://%s/ with live reload; watching the config, notes, images and docs/pages "
             "(Ctrl-C stops)", dev_addr)
    try:
        rebuild_loop(build, rebuilds, lambda: server.poll() is None)
        raise GeneratorError(f"the MkDocs server stopped (exit status {server.returncode}); see its lines above")
    except KeyboardInterrupt:
        log.info("stopped")
        return 0
    finally:
        watchers.stop()
        _stop(server)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _start_mkdocs(dev_addr: str, project: Path) -> subprocess.Popen:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's notice about MkDocs 2.0, on every start
    return subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "--dev-addr", dev_addr,
                             "--config-file", str(project / "mkdocs.yml")], cwd=project, env=env)


def _stop(server: subprocess.Popen) -> None:
    """Stop the server (Ctrl-C in a terminal already reached it: its process group got the signal)."""
    if server.poll() is None:
        server.terminate()
    try:
        server.wait(STOP_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
