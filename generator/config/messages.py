"""pydantic's validation errors as the config's one-line messages.

``config key 'units[0].channel': got -1, expected an integer 0 or above``: the key path as the
file spells it, the value as written, and what the key allows, described from the key's part of
the JSON Schema (so a message and the schema never disagree). Unknown keys get the closest
known one suggested and the keys allowed beside them.
"""

from __future__ import annotations

import datetime
import difflib

from pydantic import ValidationError

from generator.config.schema import key_schemas
from generator.config.sections import WEB_ADDRESS
from generator.errors import GeneratorError, shown

_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument", "invalid_key")  # invalid_key: a key that is no text
_CONSTRAINTS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error",
                "string_pattern_mismatch")
_PATTERNS = {WEB_ADDRESS: "an http:// or https:// address, or nothing"}
_TYPES = {"integer": "an integer", "number": "a number", "boolean": "true or false", "string": "text"}


def config_error(error: ValidationError) -> GeneratorError:
    """The first of pydantic's errors as one line; an unknown key first (a misspelt key is no missing one)."""
    errors = error.errors()
    first = next((e for e in errors if e["type"] in _UNKNOWN), errors[0])
    loc, value = first["loc"], first["input"]
    if first["type"] in _UNKNOWN:
        return _unknown(_key_path(loc[:-1]), str(loc[-1]))
    key = _key_path(loc)
    if first["type"] == "missing":
        return GeneratorError(f"config key {key!r} is required")
    schema = key_schemas()[_schema_key(key)]
    if loc and isinstance(loc[-1], int):  # an item of a list
        schema = _array(schema)["items"]
    if first["type"] in _CONSTRAINTS:
        return GeneratorError(f"config key {key!r}: got {shown(value)}, expected {allowed(schema)}")
    kind = _expected_type(schema)
    # YAML reads yes/no/on/off as booleans and 2024-01-31 as a date: quoting keeps them text.
    quoted = kind == "text" and isinstance(value, (bool, datetime.date))
    quote = "; put it in quotes to keep it as text" if quoted else ""
    return GeneratorError(f"config key {key!r}: got {shown(value)}, expected {kind}{quote}")


def _key_path(loc: tuple) -> str:
    """pydantic's ``("units", 0, "channel")`` -> ``units[0].channel``; an item of a list of names: the list's key."""
    key = ""
    for part in loc:
        if not isinstance(part, int):
            key = f"{key}.{part}" if key else str(part)
        elif _array(key_schemas()[_schema_key(key)])["items"].get("type") == "object":
            key += f"[{part}]"
    return key


def _schema_key(key: str) -> str:
    """``units[2].channel`` -> ``units.channel``."""
    return ".".join(part.split("[")[0] for part in key.split("."))


def _unknown(parent: str, name: str) -> GeneratorError:
    schema = key_schemas()[_schema_key(parent)]
    allowed_here = list(schema.get("items", schema)["properties"])  # a unit's keys, for units[0]
    key = f"{parent}.{name}" if parent else name
    close = difflib.get_close_matches(name, allowed_here, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return GeneratorError(f"config key {shown(key)} is not known{hint}; allowed here: {', '.join(allowed_here)}")


def _array(schema: dict) -> dict:
    """A list's schema, also where one value may stand for it (``anyOf``)."""
    return schema["anyOf"][0] if "anyOf" in schema else schema


def _expected_type(schema: dict) -> str:
    """``an integer``, ``a list of texts``, ``a mapping with layer and channel``, ..."""
    schema = _array(schema)
    kind = schema.get("type")
    if kind == "array":
        items = schema["items"]
        return "a list of mappings" if items.get("type") == "object" else f"a list of {_expected_type(items)}s"
    if kind == "object":
        return "a mapping" + (f" with {' and '.join(schema['required'])}" if "required" in schema else "")
    return _TYPES[kind[0] if isinstance(kind, list) else kind]


def allowed(schema: dict) -> str:
    """What a key with a constraint allows: ``one of png, jpeg, webp``, ``an integer from 1 to 100``, ..."""
    if "enum" in schema:
        return "one of " + ", ".join(v for v in schema["enum"] if v != "")  # empty: take the section's
    if "pattern" in schema:
        return _PATTERNS[schema["pattern"]]
    kind, high = _expected_type(schema), schema.get("maximum")
    if "exclusiveMinimum" in schema:
        at_most = "" if high is None else f" and at most {_number(high)}"
        return f"{kind} above {_number(schema['exclusiveMinimum'])}{at_most}"
    if high is None:
        return f"{kind} {_number(schema['minimum'])} or above"
    return f"{kind} from {_number(schema['minimum'])} to {_number(high)}"


def _number(value: float) -> str:
    """A bound as people write it: 4294967295, 0.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
