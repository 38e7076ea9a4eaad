"""featflow as a module of another workflow, in another folder: `module featflow: snakefile: <checkout>/Snakefile
config: config` and `use rule * from featflow as featflow_*` run a tiny target for real (the Snakefile finds its
package, scripts and code keys from its own folder, not from the including workflow's)."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

from featflow import store
from tests.watch import run_watched
from tests.workflow.conftest import ROOT, SNAKEMAKE

TARGET = "results/data/planted.h5"


def test_featflow_runs_as_a_module_from_another_folder(tmp_path: Path) -> None:
    outer = tmp_path / "analysis"
    outer.mkdir()
    shutil.copy2(ROOT / "tests" / "workflow" / "tiny.yaml", outer / "config.yaml")
    (outer / "Snakefile").write_text(
        textwrap.dedent(
            f"""\
            configfile: "config.yaml"


            module featflow:
                snakefile:
                    "{ROOT / "Snakefile"}"
                config:
                    config


            use rule * from featflow as featflow_*
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing points at the checkout's src/
    result, hung = run_watched([SNAKEMAKE, "--cores", "2", TARGET], outer, env, 600)
    output = result.stdout + result.stderr
    assert not hung and result.returncode == 0, output[-4000:]
    assert "featflow_data" in output  # the module's rule, under its prefix
    assert store.read_attrs(outer / TARGET)["stage"] == "data"
    assert (outer / "logs" / "data" / "planted.log").is_file()
