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

.PHONY: setup demo test test-all lint format lock ui prefect-server retrain bench clean

setup: $(VENV)/.installed fashion-mnist

# requirements.lock: what bakeoff needs to run; requirements-dev.lock: that plus pytest and
# ruff. Both are hashed (`make lock`); the project itself installs editable, without deps.
$(VENV)/.installed: requirements.lock requirements-dev.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (bakeoff needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --compile-bytecode -p $(BIN)/python requirements-dev.lock
	$(BIN)/uv pip install -q --compile-bytecode --no-deps -p $(BIN)/python -e .
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

demo: setup
	dvc repro
	@echo "Done. Report: reports/comparison.html   Runs: make ui"

test: setup
	$(BIN)/pytest

test-all: setup
	$(BIN)/pytest -m ""

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

LOCK := $(BIN)/uv pip compile pyproject.toml -q --no-header --generate-hashes \
	--python-version 3.11 --python-platform x86_64-manylinux_2_28
lock:
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock

ui: setup
	mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000

prefect-server: setup
	PREFECT_HOME=$(CURDIR)/.prefect prefect server start --host 127.0.0.1 --port 4200

retrain: setup
	PREFECT_HOME=$(CURDIR)/.prefect PREFECT_API_URL=http://127.0.0.1:4200/api python flows/retrain.py

bench: setup
	python benchmarks/validate_speed.py
	python benchmarks/train_speed.py

clean:
	rm -rf .bakeoff .pytest_cache .ruff_cache
