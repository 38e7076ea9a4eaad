# Two commands a researcher needs: `make run` (the default DAG) and `make test` (the whole suite).
# Both set up .venv first (idempotent: redone only when requirements.txt or pyproject.toml change).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.featflow-setup
CORES ?= all

.PHONY: setup run test lint report clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

run: setup
	$(BIN)/snakemake --profile profiles/default --cores $(CORES)

test: setup
	$(BIN)/python -m pytest -q tests

report: setup
	$(BIN)/snakemake --cores 1 --report results/report.html

lint: setup
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs benchmarks .snakemake
