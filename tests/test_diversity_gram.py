"""Lucid's diversity term: the Gram matrices (their one-product gradient), their unit vectors and the mean cosine
similarity of each image with the others of its unit, against NumPy and against autodiff."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

from generator.analysis import backend  # noqa: E402
from generator.analysis.diversity import gram_matrices, gram_vectors, mean_other_similarity  # noqa: E402

RNG = np.random.default_rng(5)
FLAT = RNG.normal(size=(3, 20, 6)).astype("float32")  # (B, P, C)


def _weighted(weights):
    """``flat -> (B,)``: each item's Gram matrix dotted with ``weights`` (B, C, C), by ``gram_matrices``."""
    w = ops.convert_to_tensor(weights)
    return lambda flat: ops.sum(gram_matrices(flat) * w, axis=(1, 2))


def _autodiff_weighted(weights):
    """The same values from the plain formula, differentiated by the backend."""
    w = ops.convert_to_tensor(weights)

    def values(flat):
        grams = ops.matmul(ops.transpose(flat, (0, 2, 1)), flat) / ops.cast(ops.shape(flat)[1], "float32")
        return ops.sum(grams * w, axis=(1, 2))

    return values


def test_gram_matrices_and_their_gradient_match_numpy():
    weights = RNG.normal(size=(3, 6, 6)).astype("float32")  # not symmetric: the gradient is flat (W + W^T) / P
    values, grad = backend.value_and_grad(_weighted(weights))(ops.convert_to_tensor(FLAT))
    grams = np.einsum("bpc,bpd->bcd", FLAT, FLAT) / 20
    np.testing.assert_allclose(ops.convert_to_numpy(gram_matrices(ops.convert_to_tensor(FLAT))), grams, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(values), (grams * weights).sum(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    expected = FLAT @ (weights + weights.transpose(0, 2, 1)) / 20
    np.testing.assert_allclose(ops.convert_to_numpy(grad), expected, rtol=1e-5, atol=1e-5)


def test_a_symmetric_upstream_gives_autodiffs_gradient_to_float32_rounding():
    """The one product equals autodiff's two, added, to float32 rounding: to the bit where the matrix product sums a
    transposed operand in the same order (what keeps a float32 render's pixels on AVX-512 CPUs; the AVX2 kernels of
    an AMD EPYC sum it in another order)."""
    half = RNG.normal(size=(3, 6, 6)).astype("float32")
    weights = half + half.transpose(0, 2, 1)
    flat = ops.convert_to_tensor(FLAT)
    ours = ops.convert_to_numpy(backend.value_and_grad(_weighted(weights))(flat)[1])
    theirs = ops.convert_to_numpy(backend.value_and_grad(_autodiff_weighted(weights))(flat)[1])
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6 * np.abs(theirs).max())


def test_bfloat16_activations_give_float32_grams_within_bfloat16_rounding():
    flat = ops.cast(ops.convert_to_tensor(FLAT), "bfloat16")
    rounded = ops.convert_to_numpy(ops.cast(flat, "float32"))
    grams = gram_matrices(flat)
    assert keras.backend.standardize_dtype(grams.dtype) == "float32"
    exact = np.einsum("bpc,bpd->bcd", rounded, rounded) / 20
    np.testing.assert_allclose(ops.convert_to_numpy(grams), exact, rtol=2**-7, atol=2**-7 * np.abs(exact).max())
    weights = RNG.normal(size=(3, 6, 6)).astype("float32")
    grad = backend.value_and_grad(_weighted(weights))(flat)[1]
    assert keras.backend.standardize_dtype(grad.dtype) == "bfloat16"
    expected = rounded @ (weights + weights.transpose(0, 2, 1)) / 20
    np.testing.assert_allclose(ops.convert_to_numpy(ops.cast(grad, "float32")), expected, rtol=0.05,
                               atol=0.02 * np.abs(expected).max())


def test_gram_vectors_and_mean_other_similarity_match_numpy():
    maps = RNG.uniform(0, 2, (4, 5, 4, 6)).astype("float32")  # two units' groups of two images, (B, H, W, C)
    vectors = ops.convert_to_numpy(gram_vectors(ops.convert_to_tensor(maps)))
    flat = maps.reshape(4, 20, 6)
    grams = (np.einsum("bpc,bpd->bcd", flat, flat) / 20).reshape(4, -1)
    expected = grams / np.linalg.norm(grams, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-6)
    cosines = expected @ expected.T
    others = [cosines[0, 1], cosines[1, 0], cosines[2, 3], cosines[3, 2]]
    np.testing.assert_allclose(ops.convert_to_numpy(mean_other_similarity(ops.convert_to_tensor(vectors), 2)), others,
                               rtol=1e-5)
    grouped = np.concatenate([expected[:3], expected[:1]])  # a group of four: each row's mean over the three others
    cos = grouped @ grouped.T
    mean = (cos.sum(axis=1) - np.diag(cos)) / 3
    np.testing.assert_allclose(ops.convert_to_numpy(mean_other_similarity(ops.convert_to_tensor(grouped), 4)), mean,
                               rtol=1e-5)


def test_float16_activations_take_float32_gram_matrices():
    """A float16 Gram matrix overflows (65504) on ordinary activations: a float16 model's are cast to float32 first."""
    activations = np.random.default_rng(6).uniform(0, 60, (2, 37, 37, 8)).astype("float16")
    got = ops.convert_to_numpy(gram_vectors(ops.convert_to_tensor(activations)))
    expected = ops.convert_to_numpy(gram_vectors(ops.convert_to_tensor(activations.astype("float32"))))
    assert np.isfinite(got).all()
    np.testing.assert_array_equal(got, expected)
