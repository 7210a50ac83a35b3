"""A JSON Schema of ``site_config.yaml``, derived from the config dataclasses, for editors.

Types come from the field annotations, ranges and allowed values from :data:`generator.config.RULES`
(the same ones the loader checks), defaults from the dataclasses, and descriptions from the
comments above each field in ``config.py``. ``python -m generator schema`` prints it; the
default config names the committed copy in a ``yaml-language-server`` comment, so an editor
with the YAML language server completes and checks keys as you type.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing

from generator import config as config_module
from generator.config import RULES, Config, rule_key

SCHEMA_FILE = "site_config.schema.json"


def field_comments() -> dict[tuple[str, str], str]:
    """(class name, field name) -> the comment lines right above the field in ``config.py``."""
    source = inspect.getsource(config_module)
    lines = source.splitlines()
    comments = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                above, row = [], item.lineno - 2
                while row >= 0 and lines[row].strip().startswith("#"):
                    above.insert(0, lines[row].strip().lstrip("#").strip())
                    row -= 1
                if above:
                    comments[(node.name, item.target.id)] = " ".join(above)
    return comments


def config_schema() -> dict:
    comments = field_comments()

    def of_type(tp: object, key: str) -> dict:
        origin = typing.get_origin(tp)
        if dataclasses.is_dataclass(tp):
            return section(tp, key)
        if origin is tuple:
            item = of_type(typing.get_args(tp)[0], key)
            if dataclasses.is_dataclass(typing.get_args(tp)[0]):
                return {"type": "array", "items": item}
            return {"anyOf": [{"type": "array", "items": item}, item]}  # one value may stand for a list of one
        schema = {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"},
                  str: {"type": ["string", "number"]}}[tp]
        rule = RULES.get(rule_key(key))
        return {**schema, **rule.schema()} if rule else schema

    def section(cls: type, prefix: str) -> dict:
        hints = typing.get_type_hints(cls)
        properties, required = {}, []
        for f in dataclasses.fields(cls):
            if f.name == "root":
                continue
            key = f"{prefix}.{f.name}" if prefix else f.name
            prop = of_type(hints[f.name], key)
            inherited = (comments.get((klass.__name__, f.name)) for klass in cls.__mro__)
            description = next((c for c in inherited if c), "") or _own_doc(hints[f.name])
            if description:
                prop["description"] = description
            if f.default is not dataclasses.MISSING:
                prop["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
            elif f.default_factory is dataclasses.MISSING:
                required.append(f.name)
            properties[f.name] = prop
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        doc = _own_doc(cls)
        return {"description": doc, **schema} if doc else schema

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "site_config.yaml of the CNN report-site generator",
        **section(Config, ""),
    }


def _own_doc(tp: object) -> str:
    """A dataclass's own docstring (not the generated signature), on one line."""
    doc = tp.__dict__.get("__doc__") if dataclasses.is_dataclass(tp) else None
    if not doc or doc.startswith(f"{tp.__name__}("):
        return ""
    return " ".join(doc.split())
