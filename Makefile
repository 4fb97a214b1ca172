# One place for every developer command. `make run` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins many packages (pycep-parser among them): it gets its own venv, never the app's.
INFRA_VENV ?= .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

.PHONY: setup run demo test lint infra-check bench index-check clean

$(STAMP): requirements.txt requirements-dev.txt package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

$(INFRA_STAMP): infra/requirements-checkov.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install --quiet -r infra/requirements-checkov.txt
	touch $(INFRA_STAMP)

## setup: create the virtual environment and install the app, its tools and Azurite
setup: $(STAMP)

## run: the app on http://localhost:7071 against the bundled Azure emulator and Azurite (Ctrl-C stops)
run: $(STAMP)
	$(PY) -m devhost.stack

## demo: start everything, post the sample alerts, follow the first capture to its report, exit
demo: $(STAMP)
	$(PY) -m devhost.demo

## test: lint, type-check, infra-check and run the whole test suite
test: $(STAMP) lint infra-check
	$(PY) -m pytest -q --ignore=tests/infra

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

## infra-check: the Bicep template: every file parses, checkov passes, and it matches the app (tests/infra)
infra-check: $(STAMP) $(INFRA_STAMP)
	$(PY) -m pytest -q tests/infra
	$(INFRA_VENV)/bin/python infra/checkov_gate.py $(INFRA_VENV)/bin/checkov

## bench: webhook latency, ARM calls, storms, cold start, analysis throughput (writes bench/results.json)
bench: $(STAMP)
	$(PY) -m bench

## index-check: index the app with the real Python worker's indexer (needs pyenv's Python 3.13)
index-check:
	bash .ci/index-check

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis .run
