# The two commands of the README: `make demo` and `make test`.
# Both create .venv with the pinned dependencies first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup demo test test-slow test-all lint format bench browser

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/arena demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The fast tier (default markers in pyproject: not slow), plus lint and types.
test: lint
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

test-slow: setup browser
	$(VENV)/bin/pytest -q -m slow

# Debian's chromium, for the slow tier's check of `arena report` pages in a real
# headless browser (tests/test_report.py skips, saying so, without it).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	command -v chromium >/dev/null || { $(SUDO) apt-get update && \
		$(SUDO) apt-get install -y --no-install-recommends chromium; }
	chromium --version

test-all: lint browser
	$(VENV)/bin/pytest -q -m ''
