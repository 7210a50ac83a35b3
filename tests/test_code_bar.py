"""The project's own bar on generator/: no function over 60 lines, none with more than 8 parameters.

A function's lines run from its ``def`` to its last line (docstring and nested functions included);
its parameters are every name it takes (``*args``, ``**kwargs`` and keyword-only ones too), less
``self`` and ``cls``. Read with ``ast``: nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GENERATOR = Path(__file__).resolve().parent.parent / "generator"
MAX_LINES = 60
MAX_PARAMETERS = 8


def functions(folder: Path) -> list[tuple[str, int, int]]:
    """(``file:line name``, lines, parameters) of every function and method under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        nodes = ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        for node in sorted((n for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))),
                           key=lambda n: n.lineno):
            a = node.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x]
            parameters = len([n for n in names if n not in ("self", "cls")])
            where = f"{path.relative_to(folder.parent)}:{node.lineno} {node.name}"
            found.append((where, node.end_lineno - node.lineno + 1, parameters))
    return found


def test_the_measure_counts_lines_and_parameters(tmp_path):
    (tmp_path / "m.py").write_text("class C:\n    def f(self, a, /, b, *c, d, **e):\n        return 1\n\n\n"
                                   "def g():\n    def h(x):\n        pass\n    return h\n")
    assert functions(tmp_path) == [(f"{tmp_path.name}/m.py:2 f", 2, 5), (f"{tmp_path.name}/m.py:6 g", 4, 0),
                                   (f"{tmp_path.name}/m.py:7 h", 2, 1)]


@pytest.mark.parametrize("limit, column, what", [(MAX_LINES, 1, "lines"), (MAX_PARAMETERS, 2, "parameters")])
def test_no_function_is_over_the_bar(limit, column, what):
    over = [f"{f[0]}: {f[column]} {what}" for f in functions(GENERATOR) if f[column] > limit]
    assert not over, f"over {limit} {what}:\n" + "\n".join(over)
