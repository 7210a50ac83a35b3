"""Comparing two builds' files: to the byte, but for float32 rounding in their numbers."""

from __future__ import annotations

import csv
import json
import math


def same_file(name: str, a: bytes, b: bytes) -> bool:
    """The same bytes; for a JSON or CSV file, the same text but where its numbers differ in float32's last bits.

    Two builds of one site compute the same float32 numbers to the bit on the AVX-512 CPUs seen; oneDNN's AVX2
    kernels (an AMD EPYC) round a convolution differently with another thread count (a Ray worker of one thread,
    the build's two) or batch size (an exciter recomputed alone, the rest of its batch cached), in the last bits of
    a value, not enough to change a picture's pixels."""
    if a == b:
        return True
    if name.endswith(".json"):
        return _close(json.loads(a), json.loads(b))
    if name.endswith(".csv"):
        rows = [list(csv.reader(text.decode().splitlines())) for text in (a, b)]
        return len(rows[0]) == len(rows[1]) and all(_close(x, y) for x, y in zip(*rows))
    return False


def _close(a, b) -> bool:
    """Equal, but for numbers (also written as text) within 1e-6 of each other."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return False
    return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12)
