# Two commands matter: `make run` and `make test`. Both set up everything they need.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# CPU torch: constraints.txt pins the +cpu build, found on the PyTorch CPU wheel index. The index is added
# only when it answers, so a machine that already has that wheel locally does not wait on it.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_INDEX_OPTION = $(shell $(PYTHON) -c "import urllib.request as u; u.urlopen('$(TORCH_INDEX)/torch/', timeout=5)" \
	>/dev/null 2>&1 && echo --extra-index-url $(TORCH_INDEX))
PIP_INSTALL = $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt $(TORCH_INDEX_OPTION)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install install-dev chromium services docker-engine run test test-fast lint bench clean

help:                                ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:[^#]*## /\t/' | expand -t 16

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml constraints.txt
	$(PIP_INSTALL) -e ".[dev]"
	touch $@

install: $(VENV)/.installed          ## runtime dependencies (idempotent)

install-dev: $(VENV)/.installed-dev  ## plus test tools

chromium:                            ## Debian's Chromium for the browser tests (never a downloaded one)
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }

services:                            ## Debian's redis-server and nginx for the scale-out tests (tests/app/test_redis_scale.py)
	@command -v redis-server >/dev/null && { command -v nginx || test -x /usr/sbin/nginx; } >/dev/null || { \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server nginx; }

docker-engine:                       ## Debian's docker.io and debootstrap for tests/test_docker_engine.py (the test starts dockerd)
	@command -v dockerd >/dev/null && command -v debootstrap >/dev/null || { \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io debootstrap; }

run: install                         ## serve the app (HOST=..., PORT=...)
	$(BIN)/python -m app --host $(HOST) --port $(PORT)

lint: install-dev                    ## ruff (lint and format), mypy, hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

test: install-dev chromium services docker-engine lint  ## everything: lint, then every test (browser, scale-out, a real docker build)
	$(BIN)/python -m pytest -q

test-fast: install-dev               ## every test but the browser and slow ones (markers); no sudo, no Chromium needed
	$(BIN)/python -m pytest -q -m "not browser and not slow"

bench: install                       ## the benchmarks (bench/*.py), each printing one JSON line
	$(BIN)/python bench/stream.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/batching.py
	$(BIN)/python bench/race.py
	$(BIN)/python bench/steps.py
	$(BIN)/python bench/grid.py
	$(BIN)/python bench/decided.py

clean:                               ## remove the venv and caches
	rm -rf $(VENV) test-artifacts .pytest_cache .ruff_cache
