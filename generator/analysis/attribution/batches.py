"""The batched scorer: every item (image x target x sample) of a method through one compiled step.

Items go in equal batches of ``batch_size`` (the last one padded by repeating its final item, the
padding's outputs dropped), so the compiled step is traced once for all of them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from keras import ops


def batched(
    step: Callable, inputs: Callable, selectors: np.ndarray, batch_size: int, keep: Callable | None = None
) -> tuple[np.ndarray, ...]:
    """``step`` over items ``0..len(selectors)-1`` in equal batches (the last padded), outputs stacked.

    ``inputs(rows)`` gives the items' 0..255 images; equal batches keep the compiled step to one trace.
    ``keep(rows, outputs)``, if given, reduces each batch's numpy outputs before they are kept.
    """
    count = len(selectors)
    width = min(batch_size, count)
    kept = []
    for first in range(0, count, width):
        rows = np.arange(first, first + width).clip(max=count - 1)
        result = step(ops.convert_to_tensor(inputs(rows)), ops.convert_to_tensor(selectors[rows]))
        result = result if isinstance(result, tuple) else (result,)
        real = min(width, count - first)
        outputs = tuple(ops.convert_to_numpy(r)[:real] for r in result)
        kept.append(keep(rows[:real], outputs) if keep else outputs)
    return tuple(np.concatenate(parts) for parts in zip(*kept))


def per_target(values: np.ndarray, n: int, t: int) -> list[np.ndarray]:
    """(N * T,) values of the pairs (image, target), image-major -> T arrays (N,), one per target."""
    values = np.asarray(values, np.float32).reshape(n, t)
    return [values[:, j].copy() for j in range(t)]
