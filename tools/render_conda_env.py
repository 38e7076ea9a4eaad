"""Write envs/featflow.yaml from the lock: the same exact pins, no path (Snakemake copies the file elsewhere)."""

from __future__ import annotations

import sys
from pathlib import Path

HEADER = """\
# Conda environment of the rules (snakemake --sdm conda), generated from requirements.txt by `make lock`.
# It names no path: Snakemake copies this file into .snakemake/conda/. It holds featflow's dependencies, not
# featflow: the jobs import featflow from the checkout's src/ (on PYTHONPATH, which Snakemake keeps in conda jobs
# with conda-not-block-search-path-envvars, set in profiles/local and profiles/slurm).
name: featflow
channels:
  - conda-forge
  - nodefaults
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def lock_pins(lock: Path) -> list[str]:
    """The requirement lines of a pip lock file (comments and blank lines dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in lock.read_text().splitlines())
    return [line for line in lines if line]


def render(lock: Path, env: Path) -> None:
    """Write the conda environment file ``env`` carrying every pin of ``lock``."""
    pins = "".join(f'      - "{pin}"\n' for pin in lock_pins(lock))
    env.write_text(HEADER + pins)


if __name__ == "__main__":
    render(Path(sys.argv[1]), Path(sys.argv[2]))
