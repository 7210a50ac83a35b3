"""A model with models inside it (a keras.applications base called as one layer, an augmentation
``Sequential``) as one flat functional graph, so that every analysis reaches the inner layers.

The graph is rebuilt on a fresh input: each layer is a fresh copy (same class, config and weights)
called on the new tensors, so that each copy's ``.input`` and ``.output`` belong to this graph alone
(the loaded layers also sit in the graphs of the models around them). A layer called several times
gets one copy, called as often. A layer of a nested model is named by its path from the outer
model, written ``base--block_3_expand`` in the model, on pages and in URLs (Keras names cannot hold
``/``) and ``base/block_3_expand`` in the config as well; the outer model's own layers keep their
names, so a model without nesting keeps every name.

Keras has no public walk that inlines a nested model (``clone_model`` keeps it as one layer, and its
``call_function`` serves functional models only), so a functional model's graph is walked with
``Functional._run_through_graph``, the walk ``clone_model`` itself uses.
"""

from __future__ import annotations

SEPARATOR = "--"  # between a nested model's name and its layer's, in layer names
PATH_SEPARATOR = "/"  # the same, as a config may write it


def own_name(name: str) -> str:
    """``conv1`` for ``base--conv1``: the name the layer has inside its own model."""
    return name.rsplit(SEPARATOR, 1)[-1]


def path(name: str) -> str:
    """``base/conv1`` for ``base--conv1``."""
    return name.replace(SEPARATOR, PATH_SEPARATOR)


def needs_flattening(model) -> bool:
    """Whether ``model`` calls another model as a layer, or is a ``Sequential`` (which has no graph to cut)."""
    import keras

    return isinstance(model, keras.Sequential) or any(isinstance(layer, keras.Model) for layer in model.layers)


def flatten(model):
    """``model`` as one functional model of copies of its innermost layers (same numbers, inner layers by path)."""
    import keras

    sequential = isinstance(model, keras.Sequential)
    name = "pixels" if sequential else model.layers[0].name  # a Sequential lists no input layer
    inputs = keras.Input(batch_shape=model.inputs[0].shape, name=name)
    copies: dict[int, tuple[object, object]] = {}
    outputs = _call(model, inputs, "", copies)
    for original, copy in copies.values():
        if isinstance(original, keras.layers.Layer):
            copy.set_weights(original.get_weights())
    return keras.Model(inputs, outputs, name=model.name)


def _call(model, inputs, prefix: str, copies: dict):
    """The outputs of ``model`` on ``inputs``, every operation inside it called as a copy."""
    import keras

    if isinstance(model, keras.Sequential):
        x = inputs
        for layer in model.layers:
            x = _operation(layer, prefix, copies)(x)
        return x
    return model._run_through_graph(inputs, operation_fn=lambda op: _operation(op, prefix, copies))


def _operation(op, prefix: str, copies: dict):
    """What to call for ``op``: a nested model's own graph, or the copy of a layer or operation."""
    import keras

    if isinstance(op, keras.Model):
        inner = f"{prefix}{op.name}{SEPARATOR}"
        return lambda x, *args, **kwargs: _call(op, x, inner, copies)
    if id(op) not in copies:
        copy = op.__class__.from_config(op.get_config())
        copy.name = prefix + op.name
        copies[id(op)] = (op, copy)
    return copies[id(op)][1]
