"""How the analysis modules run a network: the two things keras.ops cannot say backend-neutrally (a
gradient, and a compiled function), and the precision it computes in.

Everything else in the analysis modules is written with ``keras.ops``; these helpers hold the
few lines that differ between TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import keras
import numpy as np


def value_and_grad(fn: Callable) -> Callable:
    """``fn(x, *args) -> values`` (one value per batch item) becomes ``(x, *args) -> (values, grad)``.

    ``grad`` is the gradient of ``sum(values)`` with respect to ``x``: when item ``i`` of ``values``
    depends only on item ``i`` of ``x``, each item gets the gradient of its own value.
    """
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        def tf_value_and_grad(x, *args):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
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


def read_numpy(x):
    """A tensor as NumPy, for reading at once: a TensorFlow or JAX array on the CPU without a copy (a read-only
    view; on a GPU NumPy copies it over), a torch tensor through Keras (NumPy cannot read one on a GPU)."""
    return keras.ops.convert_to_numpy(x) if keras.backend.backend() == "torch" else np.asarray(x)


def network_input(net: keras.Model, preprocess: Callable, x):
    """0..255 images (B, H, W, C) -> ``net``'s input: resized (bilinear) first where its size is fixed, then
    ``preprocess``ed."""
    fixed = tuple(net.input.shape[1:3])
    if None not in fixed and tuple(x.shape[1:3]) != fixed:
        x = keras.ops.image.resize(x, fixed)
    return preprocess(x)


def compile_step(fn: Callable) -> Callable:
    """Compile ``fn`` once for its argument shapes.

    tf.function (without XLA, which is slower for convolutions on CPU, and without AutoGraph: the steps hold no
    Python control flow on tensor values, as jax.jit requires too, and tracing a VGG16 step takes a third less
    time), jax.jit; torch runs it eagerly.
    """
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=False, autograph=False)
    if name == "jax":
        import jax

        return jax.jit(fn)
    if name == "torch":
        import torch

        return torch.no_grad()(fn)  # no autograd graph outside value_and_grad
    return fn


class AnyBatch:
    """``fn(fixed, *batched)`` compiled once for every batch size: ``fixed`` (a tuple of tensors, such as a network's
    weight values) keeps its shapes, the other arguments' first axis may vary.

    TensorFlow traces it once for each shape and dtype of the arguments but that axis, which it leaves unknown (the
    same kernels run on each batch, so the numbers are those of a function traced for that batch alone); JAX traces
    it once a batch size; torch runs it eagerly.
    """

    def __init__(self, fn: Callable):
        self._fn = fn
        self._compiled: dict[tuple, Callable] = {}  # by the arguments' shapes and dtypes but the batch axis

    def __call__(self, fixed, *batched):
        key = tuple((tuple(x.shape[1:]), str(x.dtype)) for x in keras.tree.flatten(batched))
        if key not in self._compiled:
            self._compiled[key] = self._compile(fixed, batched)
        return self._compiled[key](fixed, *batched)

    def traces(self) -> int | None:
        """How many times TensorFlow traced it (None on other backends, or before the first call)."""
        counts = [getattr(f, "experimental_get_tracing_count", None) for f in self._compiled.values()]
        return sum(count() for count in counts) if counts and all(counts) else None

    def _compile(self, fixed, batched) -> Callable:
        if keras.backend.backend() != "tensorflow":
            return compile_step(self._fn)
        import tensorflow as tf

        def spec(x, batch: bool):
            return tf.TensorSpec((None, *x.shape[1:]) if batch else x.shape, x.dtype)

        signature = [tf.nest.map_structure(lambda x: spec(x, False), fixed),
                     *(tf.nest.map_structure(lambda x: spec(x, True), b) for b in batched)]
        return tf.function(self._fn, input_signature=signature, jit_compile=False, autograph=False)


def at_precision(model: keras.Model, precision: str) -> keras.Model:
    """A copy of ``model`` computing in ``precision`` ("bfloat16": Keras' mixed_bfloat16, float32 weights).

    About twice as fast on CPUs with AVX512-BF16; the gradient's direction barely changes, and the
    input and the objective stay float32.
    """
    if precision == "float32":
        return model
    if precision != "bfloat16":
        raise ValueError(f"unknown precision {precision!r}; allowed: float32, bfloat16")

    clone = clone_zeroed(model, lambda layer, key: True, "mixed_bfloat16")
    for copy, own in zip(clone.weights, model.weights, strict=True):  # in place: no numpy copies
        copy.assign(own.value)
    return clone


def clone_zeroed(model: keras.Model, zeroed: Callable[[keras.layers.Layer, str], bool],
                 dtype: str | None = None) -> keras.Model:
    """A copy of ``model`` made of new layers (computing in ``dtype`` where given) whose initialisers that
    ``zeroed(layer, key)`` names (``key`` a config key such as "kernel_initializer") give zeros: for the weights the
    caller then overwrites, since zeros are made at once and random draws take half of a VGG16 copy's time."""
    def clone_layer(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.Layer):  # not a bare op (``x + y`` saved as an Add operation)
            if dtype is not None:
                config["dtype"] = dtype
            config.update({key: "zeros" for key in config if key.endswith("_initializer") and zeroed(layer, key)})
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone_layer)


@lru_cache(maxsize=4)
def cut_at_precision(model: keras.Model, layer: str, precision: str) -> keras.Model:
    """``model`` up to the layer named ``layer`` (checked by the caller), computing in ``precision``: made once for
    every render that climbs that layer (a build's exciters, directions, diverse exciters and views of a layer),
    since a bfloat16 copy takes a tenth of a second. A copy keeps the weights ``model`` had when it was made (the
    analyses never change a loaded model's), and the last four stay alive, as the attribution scorers' do."""
    from generator.analysis import graph

    return at_precision(graph.cut(model, graph.layer_output(model, layer, "a render")), precision)
