"""The report's landing page: every figure's headline numbers in one table, grouped by branch (SPEC 5.4).

Reads the numbers :func:`featflow.store.save_figure` stored in each PNG, writes them as reStructuredText (the
Snakemake report's landing page) and CSV.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from featflow import store
from featflow.smk import Files, Job

BRANCHES = {
    "complexity": "Complexity",
    "temporal": "Complexity over training",
    "theory": "Theory",
    "fv": "FV / IFV",
    "frequency": "Frequency",
}


def branch_of(path: str | Path) -> str:
    """The branch a results path belongs to (its first folder named after a branch), else its first folder."""
    parts = Path(path).parts[1:] if Path(path).parts[:1] == ("results",) else Path(path).parts
    return next((BRANCHES[p] for p in parts if p in BRANCHES), parts[0] if parts else "other")


def summary_table(figures: Sequence[str | Path]) -> pd.DataFrame:
    """One row per (figure, headline number): branch, figure path, name, value."""
    rows = [
        {"branch": branch_of(path), "figure": str(path), "number": name, "value": str(value)}
        for path in figures
        for name, value in store.figure_numbers(path).items()
    ]
    return pd.DataFrame(rows, columns=["branch", "figure", "number", "value"]).sort_values(
        ["branch", "figure"], kind="stable"
    )


def _rst(text: str) -> str:
    """Text safe inside an RST table cell (inline markup characters escaped)."""
    return re.sub(r"([*_`|\\])", r"\\\1", text)


def write_summary(figures: Sequence[str | Path], rst: str | Path, csv: str | Path) -> pd.DataFrame:
    """Write the landing page (one list-table per branch) and the same table as CSV."""
    table = summary_table(figures)
    lines = [
        "This run's headline numbers, read from each figure (the paper's finding in parentheses where it has one).",
        f"{len(table)} numbers from {table['figure'].nunique()} of {len(figures)} figures.",
        "",
    ]
    for branch, rows in table.groupby("branch", sort=True):
        lines += [
            f".. list-table:: {branch}",
            "   :header-rows: 1",
            "",
            "   * - figure",
            "     - number",
            "     - value",
        ]
        for row in rows.itertuples():
            parts = Path(row.figure).parts
            name = "/".join(parts[1:] if parts[:1] == ("results",) else parts)  # e.g. planted/complexity/...
            lines += [f"   * - {_rst(name)}", f"     - {_rst(row.number)}", f"     - {_rst(row.value)}"]
        lines.append("")
    with store.atomic_path(rst) as tmp:
        Path(tmp).write_text("\n".join(lines))
    store.write_table(table, csv)
    return table


def summary(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The report's landing page from every figure of the run (``stage(spec, inputs, outputs, ctx)``)."""
    write_summary(list(inputs), outputs.rst, outputs.csv)
