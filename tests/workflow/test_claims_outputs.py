"""The claims table of the tiny run (rule claims, featflow.claims): one row per registered claim and experiment of
its kind, every verdict one of the four words with its reason, the landing page headed by one row per claim; and
the job reads the files of every replicate (training seed) of the experiments its claims apply to."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from featflow.claims.registry import CLAIMS, COLUMNS, inputs, plan
from featflow.claims.verdict import VERDICTS
from featflow.config import validate_config
from tests.workflow.conftest import ROOT, planned_jobs, snakemake

TINY = validate_config(yaml.safe_load((ROOT / "tests/workflow/tiny.yaml").read_text()), check_paths=False)


def _claims(dag_run: Path) -> pd.DataFrame:
    return pd.read_csv(dag_run / "results/claims.csv", keep_default_na=False, na_values=[""])


def test_every_registered_claim_has_a_verdict_per_experiment(dag_run: Path) -> None:
    table = _claims(dag_run)
    assert list(table.columns) == COLUMNS
    assert list(dict.fromkeys(table["claim"])) == [claim.id for claim in CLAIMS]
    assert set(table["verdict"]) <= set(VERDICTS) and table["reason"].str.len().min() > 10
    rows = table.set_index(["claim", "experiment"])
    # one row per configured experiment of the claim's kind: planted and planted-res analyzed, planted-res followed
    # through its skips, planted over training, three FV experiments, two mask models, the theory run
    assert {e for c, e in rows.index if c == "complexity_importance"} == {"planted", "planted-res"}
    assert {e for c, e in rows.index if c == "flow_retention"} == {"planted-res"}
    assert {e for c, e in rows.index if c == "critical_space_ones"} == set(TINY["fv"])
    assert {e for c, e in rows.index if c == "masked_accuracy"} == {"cnn", "cnn-pgd"}
    # preconditions read from the files: a block3.1 FV is not at the logits, the network trained on every class
    # has no excluded class, the reference is not compared with itself
    assert rows.loc[("critical_space_ones", "tiny"), "verdict"] == "not applicable"
    assert "not at the" in rows.loc[("critical_space_ones", "tiny"), "reason"]
    assert rows.loc[("critical_space_excluded_class", "digits_logits"), "verdict"] == "not applicable"
    assert rows.loc[("robust_masks_low_frequency", "cnn"), "verdict"] == "not applicable"
    # the theory run's initializations are its seeds; the planted factors' order is a point statistic
    theory = rows.loc[("network_beats_fixed_features", TINY["theory"]["structured"])]
    assert theory.seeds == " ".join(str(s) for s in range(TINY["theory"]["seeds"]))
    assert rows.loc[("planted_factor_order", "planted"), "verdict"] != "not applicable"
    assert "1 seed" in rows.loc[("complexity_importance", "planted"), "reason"]
    for row in table[table.verdict != "not applicable"].itertuples():
        assert row.spread_low <= row.value <= row.spread_high, row
        assert (dag_run / row.figure).is_file(), row.figure


def test_the_landing_page_starts_with_one_row_per_claim(dag_run: Path) -> None:
    page = (dag_run / "results/summary.rst").read_text()
    assert page.startswith("Claims of the papers")
    head, _, numbers = page.partition("Headline numbers\n=====")
    claims, _, quality = head.partition("Dictionary quality\n=====")  # then one row per analyzed experiment
    assert len([line for line in claims.splitlines() if line.startswith("   * - ")]) == len(CLAIMS) + 1
    assert len([line for line in quality.splitlines() if line.startswith("   * - ")]) == 1 + 2
    assert "planted ranking" in numbers  # the full table of numbers follows


def test_the_job_reads_every_replicates_files_and_a_new_seed_replans_it(dag_run: Path, tmp_path: Path) -> None:
    """Adding a training seed to the model behind planted plans that replicate's jobs and this one aggregation."""
    config = yaml.safe_load((dag_run / "config/config.yaml").read_text())
    files = inputs(plan(validate_config(config, check_paths=False)))
    assert "results/planted/complexity/features.parquet" in files and all((dag_run / f).is_file() for f in files)
    config["models"]["cnn"]["train"]["seeds"] = [0, 1]
    more = inputs(plan(validate_config(config, check_paths=False)))
    assert set(files) < set(more) and all("@s1" in f for f in set(more) - set(files))
    path = dag_run / "rows" / "claims_seed.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    result = snakemake(dag_run, "-n", "--configfile", str(path.relative_to(dag_run)))
    assert result.returncode == 0, result.stderr[-3000:]
    planned = planned_jobs(result)
    assert planned["claims"] == 1 and planned["train"] >= 1
    assert planned.get("data", 0) == 0  # nothing of the first seed reruns
