"""Property-based fuzzing of the config: every build of a mutated tiny config either succeeds or
stops with exactly one ``error:`` line (exit 2, no traceback) and leaves the previous site as it was.

Configs are the tiny project's config (tests/conftest.py) with one to three mutations: wrong types,
out-of-range numbers, unknown and misspelt keys, missing sections and keys, huge lists, unicode and
markup in strings, paths that escape the project, duplicated units, a truncated file. Builds run
in-process on a copy of the built tiny project, whose cache keeps the successful builds cheap;
mutations that recompute exciters are rare. Seeded and bounded, so CI stays fast and repeatable.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import typing
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from generator import cli, config as schema

from tiny import tiny_config

EXAMPLES = 120

# Text that means something somewhere: Markdown, HTML, Jinja, YAML syntax, control and bidi characters.
NASTY_TEXT = [
    "", " ", "<script>alert(1)</script>", "{{ config }}", "{% raw %}", "]]>", "| a | b |\n|---|---|", "# heading\n---",
    "*" * 3, "`code`", "[link](javascript:alert(1))", "\u202eevil\u202c", "null", "~", "- item", "a: b", "&anchor",
    "\u00e9\u00e8 \u4e2d\u6587 \U0001F600", "\t\r\n", "\x00", "\x1b[31mred", "C:\\Windows\\system32", "%s%n", "\\", "'\"",
]
ESCAPING_PATHS = [
    "../outside", "../../../../../../../../etc/passwd", "/etc/passwd", "/dev/null", "~/no-such-file", "/nonexistent/x.md",
    "images/../../outside", "..", "../project/images", "images\x00.png", "a" * 300, "con.md", "../outside.md",
    "images/photo0.png/../photo1.png", "\x00.md", "notes.md/", "site_config.yaml", "images/photo0.png",
]
LAYERS = ["c1", "c2", "c3", "p1", "gap", "head", "pixels", "C3", "c4", "c 3", "all", ""]
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    text, st.sampled_from(NASTY_TEXT + ESCAPING_PATHS + LAYERS),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(text, inner, max_size=3)), max_leaves=6)
numbers = st.one_of(
    st.sampled_from([-1, 0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 1023, 1024, 1025, 4096, 4097, 100_000, 100_001,
                     2**31, 2**32, -(2**63), 10**30, 0.5, 1.5, float("nan"), float("inf"), -0.0]),
    st.integers(-10, 10**6),
)

# Keys whose large valid values make a build slow: they get cheap valid values or invalid ones only.
COSTLY = {"steps", "thumbnail_steps", "size", "thumbnail_size", "count", "examples_top_n"}
cheap_or_invalid = st.sampled_from([-1, 0, 1, 2, 15, 16, 17, 1025, 4097, 100_001, 10**9, 2.5, "many", None, True, [16]])


def _schema_keys(cls=schema.Config, prefix=()):
    """Every key the schema knows, as paths: ("exciters", "grid", "size"), ("units", 0, "channel"), ..."""
    for f in dataclasses.fields(cls):
        if f.name == "root":
            continue
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _schema_keys(tp, prefix + (f.name,))
        elif typing.get_origin(tp) is tuple and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            yield from _schema_keys(typing.get_args(tp)[0], prefix + (f.name, 0))
        else:
            yield prefix + (f.name,)


SCHEMA_KEYS = list(_schema_keys())


def _leaves(data, path=()):
    """Every (path, value) in the config tree, lists included."""
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _leaves(v, path + (i,))


def _settable(data, path) -> bool:
    """Whether ``path``'s parent exists, so that ``_set`` can write there."""
    node = data
    for part in path[:-1]:
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return False
    last = path[-1]
    return isinstance(node, dict) or isinstance(node, list) and isinstance(last, int) and last < len(node)


def _set(data, path, value):
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _delete(data, path):
    node = data
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]


def _misspell(draw, word: str) -> str:
    i = draw(st.integers(0, max(len(word) - 1, 0)))
    how = draw(st.sampled_from(["drop", "double", "swap", "case", "suffix"]))
    if how == "drop" and word:
        return word[:i] + word[i + 1:]
    if how == "double" and word:
        return word[:i] + word[i] * 2 + word[i + 1:]
    if how == "swap" and len(word) > 1:
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if how == "case":
        return word.upper()
    return word + "s"


FIXED_PATHS = {
    "path": [("images", "dir"), ("model", "name"), ("model", "labels"), ("browse", "examples_dir"),
             ("images", "files", 0), ("images", "composite"), ("notes", "introduction"), ("units", 0, "note")],
    "layer": [("feature_maps", "layers", 0), ("units", 0, "layer"), ("exciters", "grid", "layer"),
              ("circuits", "earlier_layer"), ("browse", "layers", 0)],
}


@st.composite
def mutation(draw, data: dict) -> str:
    """Apply one random mutation to ``data`` in place; returns its description."""
    leaves = [(p, v) for p, v in _leaves(data) if p]
    kind = draw(st.sampled_from([
        "type", "type", "number", "number", "unknown key", "misspelt key", "delete", "delete section",
        "huge list", "text", "text", "path", "layer", "duplicate unit", "nest", "known key", "known key",
    ]))
    candidates = {
        "number": [p for p, v in leaves if isinstance(v, (int, float)) and not isinstance(v, bool)],
        "text": [p for p, v in leaves if isinstance(v, str) and p[0] in ("site", "notes", "units")],
        "path": [p for p in FIXED_PATHS["path"] if _settable(data, p)],
        "layer": [p for p in FIXED_PATHS["layer"] if _settable(data, p)],
        "known key": [p for p in SCHEMA_KEYS if _settable(data, p)],
    }.get(kind, [p for p, _ in leaves])
    if not candidates:
        kind, candidates = "type", [p for p, _ in leaves]
    path = draw(st.sampled_from(candidates))
    if kind in ("type", "number", "known key") and path[-1] in COSTLY:
        _set(data, path, draw(cheap_or_invalid))
    elif kind in ("type", "number", "known key"):
        _set(data, path, draw({"type": values, "number": numbers, "known key": st.one_of(numbers, values)}[kind]))
    elif kind in ("unknown key", "misspelt key"):
        sections = [p for p, v in _leaves(data) if isinstance(v, dict)]
        where = draw(st.sampled_from(sections))
        node = data
        for part in where:
            node = node[part]
        if kind == "misspelt key" and node:
            old = draw(st.sampled_from(sorted(node, key=str)))
            node[_misspell(draw, str(old))] = node.pop(old)
        else:
            node[draw(st.one_of(text, st.integers(), st.booleans()))] = draw(values)
    elif kind == "delete":
        _delete(data, path)
    elif kind == "delete section":
        del data[path[0]]
    elif kind == "huge list":
        item = draw(st.one_of(st.sampled_from(LAYERS), scalars))
        _set(data, path, [item] * draw(st.sampled_from([100, 3000])))
    elif kind == "text":
        _set(data, path, draw(st.one_of(st.sampled_from(NASTY_TEXT), text)) * draw(st.sampled_from([1, 2, 1000])))
    elif kind == "path":
        _set(data, path, draw(st.one_of(st.sampled_from(ESCAPING_PATHS), text)))
    elif kind == "layer":
        _set(data, path, draw(st.sampled_from(LAYERS)))
    elif kind == "duplicate unit":
        units = data.get("units") if isinstance(data.get("units"), list) else []
        data["units"] = units + copy.deepcopy(units)
    else:  # a whole value replaced by a nested structure
        _set(data, path, draw(st.recursive(values, lambda inner: st.lists(inner, min_size=1, max_size=2), max_leaves=3)))
    return f"{kind} at {'.'.join(map(str, path))}"


@st.composite
def config_text(draw, base: dict) -> str:
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(data, dict) or not data:
            break
        note(draw(mutation(data)))
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if draw(st.sampled_from(range(10))) == 9:  # a file cut off mid-write (integers would favour 0: too often)
        text = text[: draw(st.integers(0, len(text)))]
        note("truncated")
    if draw(st.sampled_from(range(30))) == 29:
        text = draw(st.sampled_from(["a: &a [*a]", "42", "just text", "{", "[]", "---\n...\n---\n"]))
        note("whole file replaced")
    return text


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_mutated_config_builds_or_fails_with_one_line(built, tiny_model_file, monkeypatch):
    project, _ = built
    monkeypatch.chdir(project)
    site = project / "docs" / "generated"
    names = sorted(p.name for p in (project / "images").iterdir())
    base = tiny_config(tiny_model_file, names)
    outcomes = {"built": 0, "refused": 0}

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(config_text(base))
    def build_once(text: str) -> None:
        (project / "fuzz.yaml").write_text(text, encoding="utf-8")
        before = _snapshot(site)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["build", "--config", "fuzz.yaml"])
        stderr = err.getvalue()
        assert "Traceback" not in stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        if code == 0:
            assert errors == []
            assert (site / "index.md").is_file()
            outcomes["built"] += 1
        else:
            assert code == 2, stderr
            assert len(errors) == 1, stderr
            assert len(errors[0]) < 400, errors[0]
            assert _snapshot(site) == before, "a failed build changed the previous site"
            outcomes["refused"] += 1

    build_once()
    print(f"fuzzed configs: {sum(outcomes.values())} ({outcomes['built']} built, {outcomes['refused']} refused)")
    assert outcomes["built"] and outcomes["refused"]
