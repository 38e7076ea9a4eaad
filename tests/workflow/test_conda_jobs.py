"""`--sdm conda`: envs/featflow.yaml installs featflow's dependencies, not featflow (no path in an environment file);
the jobs import it from the checkout's src/. Snakemake removes PYTHONPATH from conda jobs unless
--conda-not-block-search-path-envvars is given, which both profiles set (src/ then comes first on the job's path);
without it a script job still finds src/, at the end of its path: Snakemake's script preamble appends the Snakemake
process's sys.path (snakemake.script.PythonScript in 9.27), where the Snakefile put src/. A real job runs in a conda
environment that lacks featflow, both ways (conda itself faked: conda-forge is out of reach here; the fake builds a
venv that sees every dependency of this one but not its editable featflow install).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.watch import run_watched
from tests.workflow.conftest import ROOT, SNAKEMAKE, copy_workflow

TARGET = "results/data/planted.h5"
FLAG = "conda-not-block-search-path-envvars"

FAKE_CONDA = """\
#!{python}
# A stand-in for the conda commands Snakemake runs (snakemake/deployment/conda.py); anything else fails loudly.
import json, subprocess, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("conda 25.1.1")
elif args[:2] == ["info", "--json"]:
    print(json.dumps({{"conda_prefix": {base!r}, "platform": "linux-64"}}))
elif args[:2] == ["config", "--get"]:
    print(json.dumps({{"get": {{"channel_priority": "strict"}}}}))
elif args[:2] == ["env", "create"]:
    prefix = args[args.index("--prefix") + 1]
    subprocess.run([{base_python!r}, "-m", "venv", "--without-pip", prefix], check=True)
    purelib = subprocess.run(
        [prefix + "/bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # the dependencies only: a path line adds the folder, its own .pth files (featflow's editable install) stay unread
    with open(purelib + "/deps.pth", "w") as pth:
        pth.write({deps!r} + "\\n")
elif args[:1] == ["clean"]:
    pass
else:
    sys.exit("fake conda: unexpected command " + " ".join(args))
"""

# `source <base>/bin/activate <env>` in the job's shell: records the PYTHONPATH that Snakemake left the job
ACTIVATE = 'echo "PYTHONPATH=$PYTHONPATH" >> {log}; export PATH="$1/bin:$PATH"\n'


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_both_profiles_keep_pythonpath_in_conda_jobs(profile: str) -> None:
    settings = yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())
    assert settings.get(FLAG) is True


def _fake_conda(root: Path) -> dict[str, str]:
    """A conda on PATH whose environments see this venv's packages but not featflow; the job's environment."""
    base, bin_dir = root / "base", root / "path"
    (base / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    (base / "bin" / "activate").write_text(ACTIVATE.format(log=shlex.quote(str(base / "jobs.txt"))))
    conda = bin_dir / "conda"
    deps = sysconfig.get_paths()["purelib"]
    conda.write_text(
        textwrap.dedent(FAKE_CONDA).format(
            python=sys.executable, base=str(base), base_python=sys._base_executable, deps=deps
        )
    )
    conda.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.parametrize("profile", [True, False], ids=["local_profile", "no_profile"])
def test_a_conda_job_imports_featflow_from_the_checkout(tmp_path: Path, profile: bool) -> None:
    workdir = copy_workflow(tmp_path / "wf", ROOT / "tests" / "workflow" / "tiny.yaml")
    env = {**os.environ, **_fake_conda(tmp_path / "conda"), "PYTHONPATH": str(workdir / "src")}
    options = ["--profile", "profiles/local"] if profile else []
    result, hung = run_watched([SNAKEMAKE, TARGET, *options, "--cores", "2", "--sdm", "conda"], workdir, env, 600)
    output = result.stdout + result.stderr
    assert not hung and result.returncode == 0, output[-4000:]
    assert "Activating conda environment" in output
    assert (workdir / TARGET).stat().st_size > 0
    seen = set((tmp_path / "conda" / "base" / "jobs.txt").read_text().splitlines())
    assert seen == {f"PYTHONPATH={workdir / 'src'}" if profile else "PYTHONPATH="}
    # the environment lacks featflow: the job found it in the checkout's src/
    (python,) = (workdir / ".snakemake" / "conda").glob("*/bin/python")
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import numpy, torch, h5py\ntry:\n    import featflow\nexcept ImportError:\n    print('absent')"
    missing = subprocess.run([str(python), "-c", probe], env=bare, capture_output=True, text=True, cwd=tmp_path)
    assert missing.stdout.strip() == "absent", missing.stderr
