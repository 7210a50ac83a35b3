"""The part of a network after one of its layers: a score re-computed from that layer's activations.

CRAFT's importance and deletion check change a layer's activations and read the score again. The
"head" here is every operation of the network that the layer's output reaches, run on new
activations; any other tensor those operations read (a skip connection from before the layer, an
edge detector's side outputs from earlier layers) is held at its value on the image. For a plain
chain there is none, and the head is exactly the model after the layer. The score is the one
attribution explains (:mod:`generator.analysis.attribution.targets`): a classifier's output for a
class (as it is: probabilities for keras.applications), or the mean of an output map.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops

from generator.analysis import backend, graph
from generator.errors import GeneratorError

BATCH = 64  # activations a head call reads at once
IMAGES = 16  # images (or crops) through the network at once: at 224 px, a VGG's first block holds 13 MB an image a tensor


@dataclass
class LayerHead:
    """``network``'s score from ``layer``'s activations, other paths held fixed (see the module)."""

    network: keras.Model
    layer: str
    preprocess: object
    class_id: int | None  # None: the mean of the output map
    nodes: list = field(default_factory=list)  # the operations after the layer, in the order they run
    fixed: list = field(default_factory=list)  # the tensors from before the layer that they also read
    start: object = None  # the layer's output tensor in the network's graph
    _steps: dict = field(default_factory=dict)
    # scores are asked from several threads (concepts.each_image): one compiles a step, the others wait for it
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @staticmethod
    def of(loaded, layer: str, class_id: int | None) -> "LayerHead":
        """The head of ``loaded.network`` after ``layer``; one ``error:`` line where the layer does not reach
        the score or is not a layer of the model."""
        net = loaded.network
        if layer not in {l.name for l in net.layers} and layer not in {l.name for l in loaded.features.layers}:
            raise GeneratorError(f"classes.layer {layer!r} is not a layer of the model; run 'python -m generator "
                                 f"layers' to list them")  # (a nested model's layers are its own: flat_model.py)
        head = LayerHead(net, layer, loaded.preprocess, class_id)
        if layer in {l.name for l in net.layers}:
            head.start = graph.layer_output(net, layer, "classes.layer")  # refuses a layer called several times
        after = _after(net, head.start) if head.start is not None else None
        if after is None:
            raise GeneratorError(f"classes.layer {layer!r} does not reach the model's output: its concepts cannot "
                                 f"change the score; pick a later layer")
        head.nodes, head.fixed = after
        return head

    @property
    def exact(self) -> bool:
        """True where nothing is held fixed: the head is the whole model after the layer."""
        return not self.fixed

    @property
    def words(self) -> str:
        if self.exact:
            return f"the model after {self.layer}"
        return (f"the operations after {self.layer}, with the {len(self.fixed)} tensors they also read from earlier "
                f"layers held at their values on the image")

    def model_input(self, pixels: np.ndarray):
        """uint8 (B, H, W, 3) -> the network's input (resized where its size is fixed)."""
        return backend.network_input(self.network, self.preprocess, ops.convert_to_tensor(pixels.astype(np.float32)))

    @property
    def input_size(self) -> int | None:
        """The side of the network's input where it is fixed."""
        size = self.network.input.shape[1]
        return None if size is None else int(size)

    def encode(self, pixels: np.ndarray, held: bool = True) -> tuple[np.ndarray, list[np.ndarray]]:
        """The layer's activations (B, h, w, C) on ``pixels`` and (``held``) the held tensors' values, in batches."""
        outputs = [self.start, *(self.fixed if held else [])]
        step = self._step(f"encode {held}", lambda: keras.Model(self.network.input, outputs))
        parts = [step(self.model_input(pixels[i:i + IMAGES])) for i in range(0, len(pixels), IMAGES)]
        columns = list(zip(*[p if isinstance(p, (list, tuple)) else [p] for p in parts]))
        found = [np.concatenate([ops.convert_to_numpy(t) for t in column]) for column in columns]
        return found[0], found[1:]

    def scores(self, activations: np.ndarray, held: list[np.ndarray]) -> np.ndarray:
        """(B,) float64 scores of (B, h, w, C) ``activations``; ``held``: the held tensors of one image (each with
        a batch of 1, broadcast over the activations inside the compiled step) or of each activation (a batch of B)."""
        step = self._step("head", lambda: self._run)
        out = []
        for i in range(0, len(activations), BATCH):
            a = np.asarray(activations[i:i + BATCH], np.float32)  # (a copy only where not float32 already)
            h = [t if len(t) == 1 else t[i:i + BATCH] for t in held]  # one image's: broadcast in the step
            out.append(np.asarray(ops.convert_to_numpy(step(a, h)), np.float64))
        return np.concatenate(out) if out else np.zeros(0)

    def _run(self, activations, held):
        values = {id(self.start): activations}
        batch = ops.shape(activations)[:1]
        values.update((id(t), ops.broadcast_to(v, batch + ops.shape(v)[1:])) for t, v in zip(self.fixed, held))
        for node in self.nodes:
            args, kwargs = node.arguments.fill_in(values)
            for t, v in zip(node.outputs, keras.tree.flatten(node.operation(*args, **kwargs))):
                values[id(t)] = v
        out = ops.cast(values[id(self.network.output)], "float32")
        if self.class_id is not None:
            return out[:, self.class_id]
        return ops.mean(ops.reshape(out, (ops.shape(out)[0], -1)), axis=1)

    def _step(self, name: str, make):
        with self._lock:
            if name not in self._steps:
                self._steps[name] = backend.compile_step(make())
            return self._steps[name]


def _after(net: keras.Model, start) -> tuple[list, list] | None:
    """The nodes of ``net`` that ``start`` reaches, in run order, and the other tensors they read
    (:func:`graph.crossing`); None where the output is not among what ``start`` reaches."""
    reached, nodes = {id(start)}, []
    for depth in sorted(net._nodes_by_depth, reverse=True):
        for node in net._nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            if any(id(t) in reached for t in keras.tree.flatten(node.input_tensors)):
                nodes.append(node)
                reached.update(id(t) for t in node.outputs)
    if id(net.output) not in reached:
        return None
    return nodes, graph.crossing(net, start)


def last_spatial_layer(loaded) -> str:
    """The last layer of the model with an image-shaped output (N, h, w, C) that reaches the score."""
    net = loaded.network
    once = {name for name, own in graph.calls_by_layer(graph.calls(net)).items() if len(own) == 1}
    once &= {l.name for l in net.layers}
    for layer in reversed(loaded.features.layers):
        if layer.name in once:
            output = graph.layer_output(net, layer.name, "classes.layer")
            if len(output.shape) == 4 and _after(net, output) is not None:
                return layer.name
    raise GeneratorError("classes: no layer with an image-shaped output reaches the model's output; set classes.layer")
