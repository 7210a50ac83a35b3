"""How a heavy analysis is cut into jobs: runs of whole batches, one per part of the executor."""

from __future__ import annotations

import math


def batch_parts(count: int, width: int, parts: int) -> list[range]:
    """``range(count)`` cut into at most ``parts`` runs as even as whole batches of ``width`` allow,
    each starting at a multiple of ``width`` (so each part sees the batches of one pass over all)."""
    if count == 0:
        return []
    batches = math.ceil(count / width)
    step = width * math.ceil(batches / max(1, min(parts, batches)))
    return [range(start, min(start + step, count)) for start in range(0, count, step)]
