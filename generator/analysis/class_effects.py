"""Which classes a unit pushes up or down: gradient x activation of each logit over the unit's channel.

For a classifier, the effect of channel ``c`` of a layer on the logit of class ``k`` is

    E[k, c] = mean over images x of  sum over positions p of  d logit_k(x) / d A(x, p, c) * A(x, p, c)

(A the layer's activations): the first-order change of the logit if the channel were switched off,
the gradient x activation attribution summed over the channel. It is computed for every channel of
the layer at once, one backward pass per class (classes in chunks, vectorised), on the configured
images. Where the layer feeds the logits through linear layers only (global average pooling, then
the dense head), the logit is linear in A and E is exactly the direct path: the head's weight times
the unit's mean activation; elsewhere it is the local linearisation of the whole path to the
logits, so it is measured, not assumed. The *logit* is the output layer's pre-activation (the input
to its softmax); a model whose output layer is not Dense or a softmax gets its outputs as they are.

Gradients at an inner layer are TensorFlow's (a tape on the model's own tensors).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from generator.analysis import backend, graph
from generator.errors import GeneratorError
from generator.results import ClassEffects

MAX_JACOBIAN = 1 << 26  # floats of one chunk's Jacobian (256 MB)


def layer_class_effects(loaded, layer: str, pixels: np.ndarray) -> ClassEffects:
    """The class effects of every unit of ``layer`` on ``pixels``, or why a model has none."""
    if loaded.output_kind != "classes":
        return ClassEffects(False, "The model's output is a map, not classes: no unit raises or lowers a class")
    effects = class_effects(loaded, layer, pixels)
    return ClassEffects(True, classes=tuple(class_names(loaded, len(effects))), effects=effects, images=len(pixels))


def class_effects(loaded, layer: str, pixels: np.ndarray) -> np.ndarray:
    """(classes, channels) float64: ``E`` above for every channel of ``layer`` over the uint8 (N, H, W, 3)
    ``pixels``."""
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise GeneratorError(f"class effects need the TensorFlow backend, not {keras.backend.backend()!r}")
    net = loaded.network
    head = net.layers[-1]
    logits_input = head.input if isinstance(head, (keras.layers.Dense, keras.layers.Softmax, keras.layers.Activation)) \
        else head.output
    probe = keras.Model(net.input, [graph.layer_output(net, layer, "class effects"), logits_input])
    x = backend.network_input(net, loaded.preprocess, ops.convert_to_tensor(pixels.astype(np.float32)))
    with tf.GradientTape(persistent=True) as tape:
        acts, before = probe(x, training=False)
        logits = tf.reduce_sum(_logits(head, before), axis=0)  # (K,): each class's logit summed over the images
        chunk = max(1, MAX_JACOBIAN // int(np.prod(acts.shape)))
        parts = [logits[k:k + chunk] for k in range(0, int(logits.shape[0]), chunk)]
    found = [tf.reduce_sum(tape.jacobian(part, acts, experimental_use_pfor=True) * acts[None], axis=(1, 2, 3))
             for part in parts]
    del tape
    return np.concatenate([np.asarray(f, np.float64) for f in found]) / len(pixels)


def _logits(head, before):
    """The head's pre-activation (its logits) from its input; the output itself for another head."""
    if isinstance(head, keras.layers.Dense):
        out = ops.matmul(before, head.kernel)
        return out + head.bias if head.use_bias else out
    return before


def class_names(loaded, count: int) -> list[str]:
    """The names of the model's ``count`` classes, as its predictions name them."""
    return [row[0][1] for row in loaded.class_names(np.eye(count, dtype=np.float32))]
