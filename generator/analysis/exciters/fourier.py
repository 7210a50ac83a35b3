"""Fourier helpers of the spectrum-parametrised recipes (Lucid's and MACO)."""

from __future__ import annotations

from keras import ops


def irfft2(real, imag, size: int):
    """``numpy.fft.irfft2`` over the last two axes, from keras.ops' 1-D transforms."""
    real, imag = ops.swapaxes(real, -1, -2), ops.swapaxes(imag, -1, -2)
    real, imag = ops.fft((real, -imag))  # ifft(z) = conj(fft(conj(z))) / n, along the rows
    real, imag = ops.swapaxes(real, -1, -2) / size, -ops.swapaxes(imag, -1, -2) / size
    return ops.irfft((real, imag), fft_length=size)