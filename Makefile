# One place for every developer command. `make run` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run demo test lint bench index-check clean

$(STAMP): requirements.txt requirements-dev.txt package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

## setup: create the virtual environment and install the app, its tools and Azurite
setup: $(STAMP)

## run: the app on http://localhost:7071 against the bundled Azure emulator and Azurite (Ctrl-C stops)
run: $(STAMP)
	$(PY) -m devhost.stack

## demo: start everything, post the sample alerts, follow the first capture to its report, exit
demo: $(STAMP)
	$(PY) -m devhost.demo

## test: lint, type-check and run the whole test suite
test: $(STAMP) lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

## bench: webhook latency, ARM calls, storms, cold start, analysis throughput (writes bench/results.json)
bench: $(STAMP)
	$(PY) -m bench

## index-check: index the app with the real Python worker's indexer (needs pyenv's Python 3.13)
index-check:
	bash .ci/index-check

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis .run
