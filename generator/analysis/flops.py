"""The FLOPs a network must do for one image, from its layer shapes (for ``benchmarks/bench_flops.py``).

Counted: the multiply-adds of convolutions (Conv2D, grouped or not; DepthwiseConv2D) and Dense layers,
two FLOPs each: ``2 x output positions x output channels x (kernel height x width x input channels per
group)``. Left out: biases, activations, pooling, normalisation, the objectives' own arithmetic (well
under 1% of a VGG's). A gradient with respect to the input costs what the forward pass costs: each
layer's input gradient is a transposed convolution (or matrix product) with the same multiply-adds,
and no weight gradients are taken.
"""

from __future__ import annotations

import math

import keras

from generator.analysis import graph


def forward_flops(model: keras.Model, size: int, upto: str | None = None, channels: int | None = None) -> int:
    """FLOPs of one ``size`` x ``size`` RGB image through ``model`` up to the layer ``upto`` (all of it when
    None); ``channels``: how many of ``upto``'s output channels are computed (all when None)."""
    net = model if upto is None else graph.cut(model, graph.layer_output(model, upto, "flops"))
    counted = [call for call in graph.calls(net).values() if _kernel_reach(call.layer)]  # a shared conv: each call
    if not counted:
        return 0
    probe = keras.Model(net.input, [call.outputs[0] for call in counted])
    specs = probe.compute_output_spec(keras.KerasTensor((1, size, size, net.input.shape[-1])))
    specs = specs if isinstance(specs, (list, tuple)) else [specs]
    total = 0
    for call, spec in zip(counted, specs):
        out = [int(d) for d in spec.shape]
        kept = channels if channels is not None and call.key == upto else out[-1]
        total += 2 * math.prod(out[1:-1]) * kept * _kernel_reach(call.layer)
    return total


def step_flops(model: keras.Model, size: int, upto: str | None = None, channels: int | None = None) -> int:
    """A forward pass and the gradient with respect to the image: twice :func:`forward_flops`."""
    return 2 * forward_flops(model, size, upto, channels)


def matmul_flops(m: int, k: int, n: int) -> int:
    """An (m, k) by (k, n) matrix product."""
    return 2 * m * k * n


def _kernel_reach(layer) -> int:
    """Multiply-adds per output value: what each output reads of its input (0: a layer not counted)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return math.prod(layer.kernel.shape[:2])
    if type(layer) in (keras.layers.Conv2D, keras.layers.Dense):
        return math.prod(layer.kernel.shape[:-1])  # (kh, kw, in / groups) or (in,)
    return 0
