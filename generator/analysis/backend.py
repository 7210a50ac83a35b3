"""The two things keras.ops cannot say backend-neutrally: a gradient, and a compiled function.

Everything else in the analysis modules is written with ``keras.ops``; these helpers hold the
few lines that differ between TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

from typing import Callable

import keras


def value_and_grad(fn: Callable) -> Callable:
    """``fn(x, *args) -> values`` (one value per batch item) becomes ``(x, *args) -> (values, grad)``.

    ``grad`` is the gradient of ``sum(values)`` with respect to ``x``: when item ``i`` of ``values``
    depends only on item ``i`` of ``x``, each item gets the gradient of its own value.
    """
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        def tf_value_and_grad(x, *args):
            with tf.GradientTape() as tape:
                tape.watch(x)
                values = fn(x, *args)
                total = tf.reduce_sum(values)
            return values, tape.gradient(total, x)

        return tf_value_and_grad
    if name == "jax":
        import jax

        def summed(x, *args):
            values = fn(x, *args)
            return values.sum(), values

        grad = jax.value_and_grad(summed, has_aux=True)

        def jax_value_and_grad(x, *args):
            (_, values), g = grad(x, *args)
            return values, g

        return jax_value_and_grad
    if name == "torch":
        import torch

        def torch_value_and_grad(x, *args):
            with torch.enable_grad():
                x = x.detach().requires_grad_(True)
                values = fn(x, *args)
                (g,) = torch.autograd.grad(values.sum(), x)
            return values.detach(), g

        return torch_value_and_grad
    raise NotImplementedError(f"gradients are not implemented for the Keras backend {name!r}")


def compile_step(fn: Callable) -> Callable:
    """Compile ``fn`` once for its argument shapes.

    tf.function (without XLA, which is slower for convolutions on CPU), jax.jit; torch runs it eagerly.
    """
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=False)
    if name == "jax":
        import jax

        return jax.jit(fn)
    if name == "torch":
        import torch

        return torch.no_grad()(fn)  # no autograd graph outside value_and_grad
    return fn
