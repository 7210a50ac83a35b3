"""Reading a 50-megapixel phone photo: memory and time, the old way and now.

    python benchmarks/bench_large_photo.py [--megapixels 50] [--size 224]

Writes a deterministic 4:3 JPEG of about 50 megapixels (smooth colour blobs plus a grating,
quality 90) in a temporary folder, then reads it in two fresh processes, each measuring only
its own read:
- before: the old reader, ``Image.open`` + ``convert("RGB")`` + centre crop + resize, which
  decodes every pixel at full size;
- after: ``generator.images.read_square``, which decodes the JPEG at reduced scale (draft
  mode, still at least twice the target size) before turning, converting and resizing.

One figure a line: megapixels, file_mib, then for each reader peak_rss_mib (the process' peak
resident memory, VmHWM), read_rss_mib (that peak over the resident memory just before the
read) and seconds (wall time of the read); finally the before/after ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def write_photo(path: Path, megapixels: float) -> tuple[int, int]:
    """A smooth, photo-like 4:3 JPEG: colour blobs upsampled plus a sinusoidal grating."""
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    x = np.arange(w, dtype=np.float32)
    wave = (40 * np.sin(2 * np.pi * x / 37.0)).astype(np.int16)
    rows = np.asarray(image, dtype=np.int16)
    rows += wave[None, :, None]
    Image.fromarray(np.clip(rows, 0, 255).astype(np.uint8)).save(path, quality=90)
    return w, h


def memory_mib(field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak resident) of this process, from /proc (Linux).

    Not ru_maxrss: Linux carries it across exec, so a child would report its parent's peak."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def measure(which: str, path: Path, size: int) -> dict:
    """Run in a fresh process: read ``path`` once with the chosen reader."""
    from generator.images import read_square

    def before() -> np.ndarray:  # the reader as it was: full decode, then crop and resize
        with Image.open(path) as image:
            image = image.convert("RGB")
            w, h = image.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
            return np.asarray(image, dtype=np.uint8)

    read = {"before": before, "after": lambda: read_square(path, size)}[which]
    start_rss = memory_mib("VmRSS")
    start = time.perf_counter()
    pixels = read()
    seconds = time.perf_counter() - start
    peak = memory_mib("VmHWM")
    assert pixels.shape == (size, size, 3)
    return {"peak_rss_mib": peak, "read_rss_mib": peak - start_rss, "seconds": seconds, "mean": float(pixels.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=50.0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--measure", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]), args.size)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        w, h = write_photo(path, args.megapixels)
        print(f"megapixels={w * h / 1e6:.1f} ({w}x{h})")
        print(f"file_mib={path.stat().st_size / 2**20:.1f}")
        results = {}
        for which in ("before", "after"):
            run = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--measure", which, str(path)],
                                 capture_output=True, text=True, check=True)
            results[which] = r = json.loads(run.stdout)
            print(f"{which}_peak_rss_mib={r['peak_rss_mib']:.0f}")
            print(f"{which}_read_rss_mib={r['read_rss_mib']:.0f}")
            print(f"{which}_seconds={r['seconds']:.2f}")
        b, a = results["before"], results["after"]
        print(f"mean_pixel_difference={abs(b['mean'] - a['mean']):.2f}")
        print(f"read_memory_ratio={b['read_rss_mib'] / max(a['read_rss_mib'], 1e-9):.1f}")
        print(f"peak_memory_ratio={b['peak_rss_mib'] / a['peak_rss_mib']:.2f}")
        print(f"speedup={b['seconds'] / a['seconds']:.1f}")


if __name__ == "__main__":
    main()
