"""Does ``mkdocs serve`` follow a build that swaps its ``docs_dir``? Two ways to swap, side by side.

    python benchmarks/bench_serve_swap.py [--swaps 5]

For each way, a fresh temporary project with a small site and a fresh ``mkdocs serve``; then,
``--swaps`` times, a new copy of the site with a changed page is swapped in, and the page is
fetched from the server until it shows the change (at most 20 s, then it counts as missed):
- renames: the old site renamed aside, the new one renamed in (the generator's swap before
  ``generator/staging.py``), with no pause and with a 0.6 s pause between the two renames, as
  when the builder is descheduled at that moment: ``docs_dir`` is missing for that long;
- link: ``generator.staging.swap``, one rename of a symbolic link.

One figure a line: ``<way>_shown=<swaps shown>/<swaps>`` and the median seconds until shown.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator import staging  # noqa: E402


def renames(pause: float):
    def swap(new: Path, out: Path) -> None:
        old = out.parent / f".{out.name}-old"
        os.replace(out, old)
        time.sleep(pause)
        os.replace(new, out)
        shutil.rmtree(old)
    return swap


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def wait_for(url: str, text: str, limit: float = 20.0) -> float | None:
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if text in fetch(url):
            return time.perf_counter() - start
        time.sleep(0.1)
    return None


def trial(name: str, swap, swaps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "mkdocs.yml").write_text("site_name: swap test\ndocs_dir: docs/generated\n")
        out = project / "docs" / "generated"
        site = out.parent / ".generated-first"
        (site / "page").mkdir(parents=True)
        (site / "index.md").write_text("# Home\n")
        (site / "page" / "index.md").write_text("version 0\n")
        if name == "link":
            os.symlink(site.name, out)
        else:
            os.replace(site, out)
        port = free_port()
        url = f"http://127.0.0.1:{port}/page/"
        server = subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "-a", f"127.0.0.1:{port}"], cwd=project,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
        try:
            wait_for(url, "version 0", limit=60)
            delays = []
            for i in range(1, swaps + 1):
                new = out.parent / f".generated-{i}"
                shutil.copytree(out, new)
                (new / "page" / "index.md").write_text(f"version {i}\n")
                swap(new, out)
                delays.append(wait_for(url, f"version {i}"))
        finally:
            server.terminate()
            server.wait()
    shown = [d for d in delays if d is not None]
    print(f"{name}_shown={len(shown)}/{swaps}")
    if shown:
        print(f"{name}_median_seconds_to_show={statistics.median(shown):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=5)
    args = parser.parse_args()
    trial("renames_no_pause", renames(0.0), args.swaps)
    trial("renames_pause_0.6s", renames(0.6), args.swaps)
    trial("link", staging.swap, args.swaps)


if __name__ == "__main__":
    main()
