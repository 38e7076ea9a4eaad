# Two commands a researcher needs: `make run` (the default DAG) and `make test` (the whole suite).
# Both set up .venv first (idempotent: redone only when requirements.txt or pyproject.toml change), from the
# lock (requirements.txt: exact pins with platform markers, no path) and the package itself, editable.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.featflow-setup
CORES ?= all

.PHONY: setup run test test-presets lint report lock clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "featflow needs Python >= 3.11; run make with PYTHON=/path/to/python3.11 (or newer)"; exit 1; }
	@echo "featflow setup 1/3: creating $(VENV) with $(PYTHON)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "featflow setup 2/3: installing the lock requirements.txt (torch and its libraries: a few minutes on a first set-up)"
	$(BIN)/python -m pip install -r requirements.txt
	@echo "featflow setup 3/3: installing featflow itself, editable"
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e ".[workflow,test,lint]"
	touch $@
	@echo "featflow setup done: $(VENV) is ready"

# `make run CONFIG=config/presets/X.yaml` runs another config alone (in place of config/config.yaml), checked (YAML
# syntax, schema, paths, layer names) before Snakemake. profiles/local: the local run's settings (GPU cap, rerun of
# incomplete jobs); named on the command line, never auto-loaded (profiles/slurm would inherit it).
CONFIG ?=
run: setup
	$(if $(CONFIG),$(BIN)/python -m featflow.names $(CONFIG))
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) $(if $(CONFIG),--configfile $(CONFIG))
	@echo "featflow run done: results under results/ (results/<experiment>/<branch>/, results/summary.csv), logs under logs/,"
	@echo "job times under benchmarks/; make report writes results/report.html (every figure with its caption)"

# Two pytest-xdist workers, one test file at a time each (the SLURM tests, one file, never run side by side).
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

# Every preset end to end at its full scaled-down size (every model, shards; ~5 min on 2 cores); `make test` runs a
# smaller cut of it (one model per architecture, unsharded).
test-presets: setup
	FEATFLOW_PRESETS_RUN=full $(BIN)/python -m pytest -q tests/workflow/test_presets_run.py

report: setup
	$(BIN)/snakemake --cores 1 --report results/report.html

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint

# Regenerate the lock and the conda environment from pyproject.toml's ranges (+ constraints.in) with uv.
lock: setup
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra workflow --extra test --extra lint --universal \
		--python-version 3.11 --constraint constraints.in --output-file requirements.txt
	$(BIN)/python tools/render_conda_env.py requirements.txt envs/featflow.yaml

clean:
	rm -rf results logs benchmarks .snakemake
