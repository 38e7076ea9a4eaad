"""The Snakemake workflow catalog's conventions: .snakemake-workflow-catalog.yml with its usage keys, and what it
claims backed by files and tests (config/README.md, the conda environment on every rule, report.zip)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_catalog_settings() -> None:
    usage = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert usage["mandatory-flags"]["desc"] and "flags" in usage["mandatory-flags"]
    assert usage["software-stack-deployment"] == {"conda": True, "apptainer": False, "apptainer+conda": False}
    assert usage["report"] is True  # tests/workflow/test_report.py builds report.zip
    assert (ROOT / "config" / "README.md").is_file() and (ROOT / "config" / "config.yaml").is_file()


def test_conda_true_means_every_rule_names_the_environment() -> None:
    for path in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", path.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            assert re.search(r"^    conda:\n        ENV$", block, flags=re.M), (
                f"rule {name} ({path.name}) has no conda: ENV"
            )
