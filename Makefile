# diminish — the two README commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Results the paper is built from: the full study if present, else the demo's.
# (the same default as a bare `python -m diminish.analysis`: analysis/common.py DEFAULT_RESULTS)
FULL_RESULTS := results/paper/results.nc
DEMO_RESULTS := results/demo/results.nc
RESULTS ?= $(if $(wildcard $(FULL_RESULTS)),$(FULL_RESULTS),$(DEMO_RESULTS))

.PHONY: help venv test lint demo paper bench clean-paper

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the package with its test extra

test: $(STAMP)  ## run the whole test suite (installs first if needed)
	$(PY) -m pytest -q

lint: $(STAMP)  ## ruff
	$(VENV)/bin/ruff check src tests

demo: $(STAMP)  ## synthetic data -> grid -> results.nc -> analysis -> paper PDF
	$(PY) -m diminish.data synth --out data/synth
	$(PY) -m diminish.run --config experiments/demo.toml --all --jobs 2
	$(MAKE) paper RESULTS=$(DEMO_RESULTS)

bench: $(STAMP)  ## throughput benchmark on this device (installs vit-pytorch for the reference row); BENCH_ARGS="--quick" etc.
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m diminish.bench $(BENCH_ARGS)

-include paper/paper.mk
