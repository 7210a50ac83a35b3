"""Activation groups (Lucid's Building Blocks): an image's activations at a layer split into a few groups.

Non-negative matrix factorisation (scikit-learn's NMF, seeded) of the (positions x channels)
activations ``A ~ W H``: column g of ``W`` is group g's spatial map, row g of ``H`` its direction over
the channels (what an exciter of the group is rendered for). Groups are ordered by how much of the
activations they carry. The reconstruction error is reported relative to ``|A|``, beside that of a
random non-negative factorisation with the same number of groups (each scaled to its best fit).
"""

from __future__ import annotations

import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from generator.results import ActivationGroups


def activation_groups(activations: np.ndarray, count: int, seed: int) -> ActivationGroups:
    """NMF of (h, w, C) activations into ``count`` groups (at most the number of positions or channels)."""
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    h, w, channels = activations.shape
    a = np.maximum(np.asarray(activations, np.float64).reshape(h * w, channels), 0.0)
    count = max(1, min(count, h * w, channels))
    if not np.any(a):
        maps, directions = np.zeros((count, h, w)), np.zeros((count, channels))
        return ActivationGroups(maps.astype(np.float32), directions.astype(np.float32), 0.0, 0.0)
    nmf = NMF(n_components=count, init="nndsvda", random_state=seed, max_iter=200, tol=1e-4)
    # One BLAS thread: NMF's hundreds of small products and the errors' gain nothing from more, whose threads
    # spin against TensorFlow's (ten times slower on a busy 2-core machine); the factors are the same bytes,
    # and the errors' last digits no longer depend on how many threads the product had.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # 200 iterations are plenty for a picture
        spatial = nmf.fit_transform(a)  # (positions, count)
        directions = nmf.components_  # (count, channels)
        weight = spatial.sum(axis=0) * np.linalg.norm(directions, axis=1)
        order = np.argsort(-weight, kind="stable")
        spatial, directions = spatial[:, order], directions[order]
        rng = np.random.default_rng(seed)
        random_error = _relative_error(a, rng.random((h * w, count)), rng.random((count, channels)))
        error = _relative_error(a, spatial, directions)
    return ActivationGroups(
        maps=spatial.T.reshape(count, h, w).astype(np.float32),
        directions=directions.astype(np.float32),
        error=error,
        random_error=random_error,
    )


def _relative_error(a: np.ndarray, spatial: np.ndarray, directions: np.ndarray) -> float:
    """``|A - s W H| / |A|`` with the scale ``s`` that fits best (1 for NMF's own factors, nearly)."""
    product = spatial @ directions
    scale = float(np.sum(a * product) / max(np.sum(product * product), 1e-30))
    return float(np.linalg.norm(a - scale * product) / np.linalg.norm(a))
