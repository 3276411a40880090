# The two commands of the README: `make demo` and `make test`.
# Both create .venv with the pinned dependencies first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup demo test test-fast test-slow lint format browser

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,ray]'
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

# What CI runs: lint and types, the fast tier (default markers in pyproject: not
# slow), then the slow tier (with Debian's chromium for the report-page checks).
test: lint browser
	$(VENV)/bin/pytest -q -n 2 --dist loadfile
	$(VENV)/bin/pytest -q -n 2 --dist loadfile -m slow

# The quick loop while developing: lint, types and the fast tier only.
test-fast: lint
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

test-slow: setup browser
	$(VENV)/bin/pytest -q -n 2 --dist loadfile -m slow

# Debian's chromium, for the slow tier's check of `arena report` pages in a real
# headless browser (tests/test_report.py skips, saying so, without it).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	command -v chromium >/dev/null || { $(SUDO) apt-get update && \
		$(SUDO) apt-get install -y --no-install-recommends chromium; }
	chromium --version
