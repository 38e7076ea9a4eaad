"""No call in src/featflow passes more than 6 positional arguments (issue 29): beyond a few, arguments go by
keyword, so that a swap of two paths or of device / seed fails loudly instead of silently. Read from the source;
``*args`` does not count."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "featflow"
MOST = 6


def long_calls(source: str) -> list[tuple[int, int]]:
    """(line, positional arguments) of every call in ``source`` passing more than :data:`MOST` of them."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            count = sum(not isinstance(arg, ast.Starred) for arg in node.args)
            if count > MOST:
                found.append((node.lineno, count))
    return sorted(found)


def test_counter_counts_positional_arguments_only() -> None:
    source = "f(1, 2, 3, 4, 5, 6, 7)\ng(1, 2, 3, 4, 5, 6, x=7)\nh(1, 2, 3, 4, 5, 6, *rest)\nk(*a, *b)\n"
    assert long_calls(source) == [(1, 7)]
    assert long_calls("f(g(1, 2, 3, 4, 5, 6, 7, 8))") == [(1, 8)]


def test_no_call_passes_more_than_six_positional_arguments() -> None:
    offenders = [
        f"{path.relative_to(SRC.parents[1])}:{line} passes {count} positional arguments"
        for path in sorted(SRC.rglob("*.py"))
        for line, count in long_calls(path.read_text())
    ]
    assert not offenders, f"pass arguments beyond {MOST} by keyword:\n" + "\n".join(offenders)
