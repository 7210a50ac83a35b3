"""Which arithmetic the exciters' network runs in: the CPU probe behind ``precision: auto``."""

from __future__ import annotations

from pathlib import Path


def resolve_precision(precision: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``auto`` -> ``bfloat16`` where the CPU has native bfloat16 arithmetic (AVX512-BF16, AMX), else ``float32``."""
    if precision != "auto":
        return precision
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return "float32"
    return "bfloat16" if {"avx512_bf16", "amx_bf16"} & flags else "float32"
