"""The README's table of headline results is the rendering of a replication run's claims table
(tools/render_claims_table.py, docs/replication/), and it covers every registered claim."""

from __future__ import annotations

import pandas as pd

from featflow.claims.registry import CLAIMS
from tools.render_claims_table import BEGIN, COMMAND, COPY, END, README, main, render


def test_readme_table_is_the_rendered_replication_run() -> None:
    block = render(COPY, COMMAND.read_text().strip())
    readme = README.read_text()
    assert block in readme, "README's claims table is out of date: run python tools/render_claims_table.py"
    assert main(["--check"]) == 0
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1


def test_the_replication_run_judged_every_claim_over_three_seeds() -> None:
    claims = pd.read_csv(COPY, keep_default_na=False, na_values=[""])
    assert set(claims["claim"]) == {claim.id for claim in CLAIMS}
    assert "replication.yaml" in COMMAND.read_text()
    judged = claims[claims["verdict"] != "not applicable"]
    assert (judged["seeds"].astype(str).str.split().str.len() >= 3).all()


def test_a_changed_verdict_changes_the_table(tmp_path) -> None:
    claims = pd.read_csv(COPY, keep_default_na=False, na_values=[""])
    claims.loc[0, "verdict"] = "not reproduced" if claims.loc[0, "verdict"] != "not reproduced" else "reproduced"
    changed = tmp_path / "claims.csv"
    claims.to_csv(changed, index=False)
    assert render(changed, "x") != render(COPY, "x")
