"""Seeding the weights Keras draws when it builds a layer."""

from __future__ import annotations

import random

import numpy as np


def seed_weights(seed: int) -> None:
    """Seed what Keras 3's initialisers draw from: an initialiser without a seed takes one from
    Python's ``random`` when it is made (``keras.random.make_default_seed``), so the same seed
    builds the same weights as ``keras.utils.set_random_seed(seed)``. That function also calls
    ``tf.random.set_seed``, which clears TensorFlow's kernel caches, and that has aborted the whole
    process natively (``TFE_ContextClearCaches``) in a long test run; nothing here needs it."""
    random.seed(seed)
    np.random.seed(seed)
