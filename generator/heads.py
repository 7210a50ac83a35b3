"""What a classifier's output means, read from its last layer: class probabilities, logits, a binary
unit or independent labels; and how to turn it into the probabilities the prediction table shows.

- several outputs, softmax in the head: probabilities as they are;
- several outputs, no activation (``Dense(n)`` trained ``from_logits=True``): logits, softmax applied;
- several outputs, sigmoid in the head: multi-label, each label's probability on its own;
- one output: a binary classifier (class 0 and class 1), sigmoid applied to a logit or already in the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.errors import GeneratorError


@dataclass(frozen=True)
class Head:
    kind: str  # "multi-class", "binary" or "multi-label"
    link: str  # what turns the output into probabilities: "none", "softmax" or "sigmoid"
    note: str  # one sentence for the prediction table

    @property
    def logits(self) -> bool:
        """True when the model outputs logits (the data file keeps them beside the probabilities)."""
        return self.link != "none"

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        """(N, K) model output -> (N, classes) probabilities: a binary head gives two columns."""
        x = np.asarray(output, np.float64)
        if self.link == "softmax":
            e = np.exp(x - x.max(axis=1, keepdims=True))
            x = e / e.sum(axis=1, keepdims=True)
        elif self.link == "sigmoid":
            x = 1.0 / (1.0 + np.exp(-x))
        if self.kind == "binary":
            x = np.concatenate([1.0 - x, x], axis=1)
        return x.astype(np.float32)


def last_activation(model) -> str:
    """The name of the activation the model's last layer applies ("linear" when none)."""
    layer = model.layers[-1]
    if type(layer).__name__ == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "linear") if activation is not None else "linear"


def classifier_head(units: int, activation: str) -> Head:
    """The head of a classifier with ``units`` outputs whose last layer applies ``activation``."""
    if units == 1 and activation == "sigmoid":
        return Head("binary", "none", "A binary classifier: its single output is already a sigmoid probability "
                                      "(of class 1; class 0 gets 1 minus it).")
    if units == 1 and activation == "linear":
        return Head("binary", "sigmoid", "A binary classifier: its single output is a logit; the probability of class 1 "
                                         "is its sigmoid (applied here), class 0 gets 1 minus it.")
    if units > 1 and activation == "softmax":
        return Head("multi-class", "none", "")
    if units > 1 and activation == "linear":
        return Head("multi-class", "softmax", "The model's head gives logits: the probabilities are their softmax "
                                              "(applied here); the data file keeps the logits beside them.")
    if units > 1 and activation == "sigmoid":
        return Head("multi-label", "none", "A multi-label head (sigmoid outputs): each label's probability is on its "
                                           "own, so they need not sum to 1.")
    return Head("multi-class", "none", f"The model's last layer applies {activation!r}: its outputs are shown as they are.")


def check_labels(head: Head, names: list[str] | None) -> None:
    """A binary head's labels file names its two classes: class 0, then class 1."""
    if head.kind == "binary" and names is not None and len(names) != 2:
        raise GeneratorError(
            f"config key 'model.labels': the model is a binary classifier (one output unit), so the labels file "
            f"needs 2 lines (class 0, then class 1); it has {len(names)}"
        )


def class_logits(head: Head, output: np.ndarray) -> np.ndarray | None:
    """(N, classes) logits where the head gives them (a binary logit z: -z for class 0, z for class 1), else None."""
    if not head.logits:
        return None
    x = np.asarray(output, np.float32)
    return np.concatenate([-x, x], axis=1) if head.kind == "binary" else x


def scored_network(model, head: Head):
    """The network attribution scores a class on: ``model``, but a binary head outputs (-z, z) with z its
    logit (taken before the sigmoid where the head applies one), so class 0's score is the negative logit."""
    if head.kind != "binary":
        return model
    import keras

    last = model.layers[-1]
    z = model.output
    if head.link == "none":  # the sigmoid is in the head: the same layer without it gives the logit
        if isinstance(last, keras.layers.Activation):
            z = last.input
        else:
            linear = last.__class__.from_config({**last.get_config(), "activation": "linear", "name": f"{last.name}_logit"})
            z = linear(last.input)
            linear.set_weights(last.get_weights())
    return keras.Model(model.input, keras.layers.Concatenate(name="class_logits")([-z, z]), name=model.name)
