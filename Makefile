# bakeoff: `make demo` runs the whole pipeline, `make test` the tests. Both set up first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FMNIST_DIR := /usr/share/datasets/fashion-mnist
UV_VERSION := 0.13.9
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Keep TensorFlow's C++ start-up chatter out of the logs.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup demo test test-all test-slow lint format docs lock ui prefect-server retrain bench \
	clean stack stack-down pull

# GPU hosts: `make setup GPU=1` installs requirements-gpu.lock (tensorflow[and-cuda] instead of
# tensorflow-cpu); the venv remembers it (.venv/.gpu), so later targets keep the GPU build.
GPU ?= $(if $(wildcard $(VENV)/.gpu),1,)
DEPS_LOCK := $(if $(GPU),requirements-gpu.lock,requirements-dev.lock)
INSTALLED := $(VENV)/.installed$(if $(GPU),-gpu,)

setup: $(INSTALLED) fashion-mnist postgresql chromium

# requirements.lock: what bakeoff needs to run; requirements-dev.lock: that plus pytest and
# ruff. Both are hashed (`make lock`); the project itself installs editable, without deps.
$(INSTALLED): requirements.lock $(DEPS_LOCK) pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (bakeoff needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --compile-bytecode -p $(BIN)/python $(DEPS_LOCK)
	$(BIN)/uv pip install -q --compile-bytecode --no-deps -p $(BIN)/python -e .
	rm -f $(VENV)/.installed $(VENV)/.installed-gpu $(VENV)/.gpu
	$(if $(GPU),touch $(VENV)/.gpu)
	touch $@

# The demo data set: Debian's dataset-fashion-mnist, installed when missing and apt is there.
.PHONY: fashion-mnist
fashion-mnist:
	@if [ ! -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz ]; then \
	  if command -v apt-get >/dev/null; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	  else echo "warning: $(FMNIST_DIR) is missing and apt-get is not available"; fi; \
	fi

# PostgreSQL for `make stack` and the service tests: Debian's postgresql, when missing.
.PHONY: postgresql
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql; \
	  else echo "warning: PostgreSQL is missing and apt-get is not available"; fi; \
	fi

# Debian's chromium for the report's browser test (playwright drives it: executable_path).
.PHONY: chromium
chromium:
	@if ! command -v chromium >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; \
	  else echo "warning: chromium is missing and apt-get is not available"; fi; \
	fi

demo: setup
	dvc repro
	@echo "Done. Report: reports/comparison.html   Runs: make ui"

test: setup
	$(BIN)/pytest

test-all: setup
	$(BIN)/pytest -m ""

# The end-to-end flow tests (Prefect + MLflow + Dask, minutes): CI runs them after `make test`.
test-slow: setup
	$(BIN)/pytest -m slow

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The documentation site (mkdocs.yml, docs/) into site/; --strict: a broken link fails.
# `mkdocs serve` previews it on http://127.0.0.1:8000.
docs: setup
	$(BIN)/mkdocs build --strict

LOCK := $(BIN)/uv pip compile pyproject.toml -q --no-header --generate-hashes \
	--python-version 3.11 --python-platform x86_64-manylinux_2_28 --override overrides.txt
lock:
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock
	$(LOCK) --extra dev requirements-gpu.in --override overrides-gpu.txt -o requirements-gpu.lock

# MLflow 3.17's UI opens on its GenAI view unless the URL asks for the model-training one:
# open the link printed first (bakeoff's saved runs view: tracking.store.runs_page).
ui: setup
	@MLFLOW_TRACKING_URI=sqlite:///mlruns/mlflow.db python -c "from bakeoff import tracking; \
	from bakeoff.config.params import load_params; from bakeoff.config.layout import project_paths; \
	p = project_paths(); e = tracking.configure(load_params(p.params_file).tracking, p.root); \
	print('open the runs table:', tracking.runs_page('http://127.0.0.1:5000', e))"
	mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000

prefect-server: setup
	PREFECT_HOME=$(CURDIR)/.prefect prefect server start --host 127.0.0.1 --port 4200

retrain: setup
	PREFECT_HOME=$(CURDIR)/.prefect PREFECT_API_URL=http://127.0.0.1:4200/api python flows/retrain.py

# The scale-out stack on 127.0.0.1, state in $(STACK_DIR)/ (docs/scale-out.md).
STACK_DIR ?= .stack
stack: setup
	python -m bakeoff.stack up --dir $(STACK_DIR) $(STACK_ARGS)

stack-down:
	python -m bakeoff.stack down --dir $(STACK_DIR)

# A new clone or worker: the data and models of the last `dvc push`, then check that
# `dvc repro` has nothing to do.
pull: setup
	dvc pull
	dvc status

bench: setup
	python benchmarks/validate_speed.py
	python benchmarks/train_speed.py
	python benchmarks/tune_speed.py

clean:
	rm -rf .bakeoff .pytest_cache .ruff_cache
