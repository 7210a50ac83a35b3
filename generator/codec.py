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
from functools import cache
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
    if isinstance(record, dict) and set(record) == {_ARRAY}:
        return arrays[record[_ARRAY]]
    if record is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [t for t in typing.get_args(kind) if t is not type(None)]
        if len(options) != 1:
            raise TypeError(f"cannot decode the union {kind}")
        return decode(options[0], record, arrays)
    if dataclasses.is_dataclass(kind):
        hints = _type_hints(kind)
        fields = [f.name for f in dataclasses.fields(kind) if f.init]
        return kind(**{name: decode(hints[name], record[name], arrays) for name in fields if name in record})
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], x, arrays) for x in record)
        return tuple(decode(t, x, arrays) for t, x in zip(args, record))
    if origin is list:
        (item,) = typing.get_args(kind)
        return [decode(item, x, arrays) for x in record]
    if origin is dict:
        _, item = typing.get_args(kind)
        return {k: decode(item, x, arrays) for k, x in record.items()}
    if kind is Path:
        return Path(record)
    if kind is float:
        return float(record)
    return record


@cache
def _type_hints(kind: type) -> dict[str, object]:
    """``kind``'s field types, worked out once a type (a DatasetExamples holds hundreds of distributions)."""
    return typing.get_type_hints(kind)
