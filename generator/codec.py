"""Typed results to storable parts and back: a JSON record plus the arrays it refers to.

:func:`encode` walks a value (dataclasses, tuples, lists, dicts with text keys, numpy arrays,
numbers, text, None) and moves every array out of it into a dict, leaving ``{"$array": name}`` in
its place; :func:`decode` rebuilds the value from its type annotation. This is the one place where
stage types meet the cache's storage.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path

import numpy as np

_ARRAY = "$array"


def encode(value: object) -> tuple[object, dict[str, np.ndarray]]:
    """(record, arrays): ``record`` is JSON-able; ``arrays`` holds the arrays it names."""
    arrays: dict[str, np.ndarray] = {}

    def walk(v: object) -> object:
        if isinstance(v, np.ndarray):
            name = f"a{len(arrays)}"
            arrays[name] = v
            return {_ARRAY: name}
        if dataclasses.is_dataclass(v):
            return {f.name: walk(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise TypeError(f"only dicts with text keys can be stored, got keys {list(v)[:3]}")
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, Path):
            return str(v)
        if v is None or isinstance(v, (str, int, float, bool)):
            return v
        raise TypeError(f"cannot store a {type(v).__name__}")

    return walk(value), arrays


def decode(kind: object, record: object, arrays: typing.Mapping[str, np.ndarray]) -> object:
    """The value of type ``kind`` that :func:`encode` turned into ``record`` and ``arrays``."""
    return _decoder(kind)(record, arrays)


Decoder = Callable[[object, typing.Mapping[str, np.ndarray]], object]
_DECODERS: dict[object, Decoder] = {}


def _decoder(kind: object) -> Decoder:
    """:func:`decode` for values of type ``kind``, worked out once a type: what each part of a type needs is decided
    here rather than at every value (a DatasetExamples holds some 70,000). Any value may be None or an array."""
    if kind not in _DECODERS:
        def node(record, arrays):
            if record is None:
                return None
            if type(record) is dict and len(record) == 1 and _ARRAY in record:
                return arrays[record[_ARRAY]]
            return typed(record, arrays)

        _DECODERS[kind] = node  # registered first: a type that holds itself finds it while its parts are worked out
        typed = _typed_decoder(kind)
    return _DECODERS[kind]


def _typed_decoder(kind: object) -> Decoder:
    """The decoder of a ``kind`` value that is neither None nor an array."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        options = [t for t in args if t is not type(None)]
        if len(options) != 1:
            def ambiguous(record, arrays):
                raise TypeError(f"cannot decode the union {kind}")
            return ambiguous
        return _decoder(options[0])
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(kind) if f.init]
        return lambda record, arrays: kind(**{name: field(record[name], arrays) for name, field in fields
                                               if name in record})
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _decoder(args[0])
        return lambda record, arrays: tuple(item(x, arrays) for x in record)
    if origin is tuple:
        items = [_decoder(t) for t in args]
        return lambda record, arrays: tuple(item(x, arrays) for item, x in zip(items, record))
    if origin is list:
        item = _decoder(args[0])
        return lambda record, arrays: [item(x, arrays) for x in record]
    if origin is dict:
        item = _decoder(args[1])
        return lambda record, arrays: {k: item(x, arrays) for k, x in record.items()}
    if kind is Path or kind is float:
        return lambda record, arrays: kind(record)
    return lambda record, arrays: record
