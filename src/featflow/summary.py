"""The report's landing page: the verdict per claim of the papers, then every figure's headline numbers: each
relation of complexity K side by side for every experiment, and one table per branch (SPEC 5.4, 6).

Reads the claims table (``results/claims.csv``, :mod:`featflow.claims`) and the numbers
:func:`featflow.store.save_figure` stored in each PNG, writes them as reStructuredText (the Snakemake report's
landing page) and the numbers as CSV.
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


def experiment_of(path: str | Path) -> str:
    """The experiment a results path belongs to (``results/<experiment>/<branch>/...``), else ''."""
    parts = Path(path).parts[1:] if Path(path).parts[:1] == ("results",) else Path(path).parts
    return parts[0] if len(parts) > 1 and parts[0] not in BRANCHES and parts[1] in BRANCHES else ""


def summary_table(figures: Sequence[str | Path]) -> pd.DataFrame:
    """One row per (figure, headline number): branch, experiment ('' for a figure of no one experiment), figure
    path, name, value."""
    rows = [
        {
            "branch": branch_of(path),
            "experiment": experiment_of(path),
            "figure": str(path),
            "number": name,
            "value": str(value),
        }
        for path in figures
        for name, value in store.figure_numbers(path).items()
    ]
    return pd.DataFrame(rows, columns=["branch", "experiment", "figure", "number", "value"]).sort_values(
        ["branch", "figure"], kind="stable"
    )


RELATION = "rho(K"  # the headline numbers that relate complexity K to another per-feature quantity


def _without_paper(value: str) -> tuple[str, str]:
    """A headline value split into this run's number and the paper's finding (its trailing "(paper: ...)")."""
    number, _, paper = value.partition(" (paper: ")
    return number, paper.removesuffix(")") if paper else ""


def relation_table(table: pd.DataFrame, figures: Sequence[str | Path]) -> pd.DataFrame:
    """Every relation of K (a headline number named ``rho(K, ...)``) of every experiment side by side: one row
    per relation, the paper's finding, then one column per experiment, both in the order of ``figures`` ('' where
    an experiment does not have it, e.g. feature flow on a network without skips), so that a relation whose
    sign differs between networks shows."""
    rows = table[(table["experiment"] != "") & table["number"].astype(str).str.startswith(RELATION)]
    if rows.empty:
        return pd.DataFrame(columns=["relation", "paper"])
    rank = {str(path): i for i, path in enumerate(figures)}
    rows = rows.sort_values("figure", key=lambda column: column.map(rank), kind="stable")
    experiments = list(dict.fromkeys(rows["experiment"]))
    split = rows["value"].map(_without_paper)
    rows = rows.assign(value=split.str[0], paper=split.str[1]).drop_duplicates(["number", "experiment"])
    papers = rows[rows["paper"] != ""].drop_duplicates("number").set_index("number")["paper"]
    wide = rows.pivot(index="number", columns="experiment", values="value")
    order = list(dict.fromkeys(rows["number"]))
    out = wide.reindex(index=order, columns=experiments).fillna("")
    out.insert(0, "paper", papers.reindex(order).fillna("").to_numpy())
    return out.rename_axis(index="relation", columns=None).reset_index()


def relation_lines(relations: pd.DataFrame) -> list[str]:
    """The landing page's table of :func:`relation_table` (empty without any relation)."""
    if relations.empty:
        return []
    experiments = list(relations.columns[2:])
    lines = [
        ".. list-table:: Relations of complexity K per experiment (Spearman rho [95% CI] over the features)",
        "   :header-rows: 1",
        "",
        "   * - relation",
        "     - paper",
        *(f"     - {_rst(name)}" for name in experiments),
    ]
    for row in relations.itertuples(index=False):
        lines += [f"   * - {_rst(row[0])}", *(f"     - {_rst(str(cell))}" for cell in row[1:])]
    return [*lines, ""]


def _rst(text: str) -> str:
    """Text safe inside an RST table cell (inline markup characters escaped)."""
    return re.sub(r"([*_`|\\])", r"\\\1", text)


VERDICT_MARK = {"reproduced": "✓", "not reproduced": "✗", "inconclusive": "?", "not applicable": "–"}


def _value(x: float) -> str:
    return f"{x:+.3g}" if pd.notna(x) else ""


def seed_count(row: Any) -> int:
    """The training seeds a claims-table row rests on."""
    return len(str(row.seeds).split()) if pd.notna(row.seeds) else 0


def value_text(row: Any) -> str:
    """A claims-table row's value: the mean over seeds, with their [min, max] when there are several."""
    if pd.isna(row.value):
        return ""
    spread = f" [{_value(row.spread_low)}, {_value(row.spread_high)}]" if seed_count(row) > 1 else ""
    return f"{_value(row.value)}{spread}"


def expectation(statistic: str) -> str:
    """The paper's value or direction, from a claims-table statistic ("...; paper: <it>; null: ...")."""
    return statistic.partition("; paper: ")[2].partition("; null: ")[0]


def verdict_lines(claims_csv: str | Path) -> list[str]:
    """The landing page's head: one row per claim (its verdict on each experiment, value as the mean over seeds
    with their min-max), from the claims table (:mod:`featflow.claims`)."""
    claims = store.read_table(claims_csv, keep_default_na=False, na_values=[""])
    counts = claims["verdict"].value_counts()
    lines = [
        "Claims of the papers",
        "====================",
        "",
        "One verdict per claim and experiment over its training seeds: reproduced (every seed agrees with the paper "
        "and its CI excludes the null), inconclusive, not reproduced (significantly the other way on every seed), "
        "not applicable (precondition fails). Value: mean over seeds [min, max]; reasons, per-seed CIs and figures "
        "in ``results/claims.csv``; every number of the run under *Headline numbers* below.",
        "",
        f"{claims['claim'].nunique()} claims, {len(claims)} verdicts (claim x experiment): "
        + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICT_MARK)
        + ".",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 30 12 58",
        "",
        "   * - claim",
        "     - paper",
        "     - verdict per experiment",
    ]
    for claim, rows in claims.groupby("claim", sort=False):
        cells = []
        for row in rows.itertuples():
            seeds = seed_count(row)
            shown = seeds and pd.notna(row.value)
            number = f" {value_text(row)}, {seeds} seed{'s' if seeds != 1 else ''}" if shown else ""
            where = f"{row.experiment}: " if pd.notna(row.experiment) else ""
            cells.append(f"{where}{VERDICT_MARK.get(row.verdict, '')} {row.verdict}{number}")
        expected = expectation(str(rows["statistic"].iloc[0]))
        lines += [
            f"   * - {_rst(str(claim))}: {_rst(expected)}",
            f"     - {_rst(str(rows['paper'].iloc[0]))}",
            f"     - {_rst('; '.join(cells))}",
        ]
    return [*lines, "", ""]


def paper_labels(claims_csv: str | Path, figure: str | Path) -> dict[str, str]:
    """The report label of a figure that shows registered claims: each claim's verdict on it, so that a figure
    whose numbers disagree with the paper says so beside its caption (empty when no claim names the figure or
    the claims table is not there yet)."""
    if not Path(claims_csv).is_file():
        return {}
    claims = store.read_table(claims_csv, keep_default_na=False, na_values=[""])
    rows = claims[claims["figure"] == str(figure)]
    if rows.empty:
        return {}
    verdicts = [f"{row.claim} {VERDICT_MARK.get(row.verdict, '')} {row.verdict}" for row in rows.itertuples()]
    return {"vs paper": "; ".join(verdicts)}


QUALITY_COLUMNS = {
    "experiment": "experiment",
    "method": "method",
    "layer": "layer",
    "r2": "R^2",
    "l0_mean": "mean L0",
    "dead": "dead features",
    "accuracy_recovered": "accuracy recovered",
    "seed_cosine_median": "two seeds: median matched cosine",
}


def quality_lines(paths: Sequence[str | Path]) -> list[str]:
    """The dictionary quality table (featflow.complexity.quality), one row per analyzed experiment."""
    if not paths:
        return []
    rows = pd.concat([store.read_table(path) for path in paths], ignore_index=True)
    lines = [
        "Dictionary quality",
        "==================",
        "",
        "Each experiment's dictionary on the analyzed split (Fel et al. 2024 keep > 99% of the accuracy with the "
        "reconstruction).",
        "",
        ".. list-table:: dictionaries",
        "   :header-rows: 1",
        "",
    ]
    lines += [("   * - " if i == 0 else "     - ") + name for i, name in enumerate(QUALITY_COLUMNS.values())]
    for row in rows.itertuples():
        values = [getattr(row, key) for key in QUALITY_COLUMNS]
        cells = [f"{v:.4g}" if isinstance(v, float) else _rst(str(v)) for v in values]
        lines += [("   * - " if i == 0 else "     - ") + cell for i, cell in enumerate(cells)]
    return [*lines, ""]


def write_summary(
    figures: Sequence[str | Path],
    rst: str | Path,
    csv: str | Path,
    claims: str | Path | None = None,
    quality: Sequence[str | Path] = (),
) -> pd.DataFrame:
    """Write the landing page (the verdict per claim from ``claims``, the claims table, when given; the dictionary
    quality table; then the relations of K per experiment and one list-table of headline numbers per branch) and the
    numbers as CSV (a row per number, with its experiment)."""
    table = summary_table(figures)
    head = (verdict_lines(claims) if claims else []) + quality_lines(quality)
    if head:
        head += ["Headline numbers", "================", ""]
    lines = [
        *head,
        "This run's headline numbers, read from each figure (the paper's finding in parentheses where it has one).",
        f"{len(table)} numbers from {table['figure'].nunique()} of {len(figures)} figures.",
        "",
        *relation_lines(relation_table(table, figures)),
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
    claims = getattr(inputs, "claims", None)
    quality = list(getattr(inputs, "quality", []))
    write_summary(list(getattr(inputs, "figures", inputs)), outputs.rst, outputs.csv, claims, quality)
