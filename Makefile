# Two commands on a fresh machine: `make demo` and `make test` (`make test-all`: every test, as CI).
# Both create (or reuse) .venv with Python 3.11 and the pinned dependencies.
# Use another interpreter with `make PYTHON=/path/to/python3.11 ...`.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-lock.stamp
BENCH ?= *

.DEFAULT_GOAL := help
.PHONY: help venv venv-analysis demo test test-all bench clean lint format

help:
	@echo "make demo   synthesize a demo corpus, run the whole pipeline on it, analyze a song (a few minutes)"
	@echo "make test   the quick tests: every test not marked slow, with one end-to-end run (~2 min on 2 AVX-512 cores)"
	@echo "make test-all  every test, the slow ones too (training runs, kill-and-resume, clusters, browsers), as CI"
	@echo "make lint   ruff check and ruff format --check (as CI); make format rewrites the files"
	@echo "make bench  run the benchmark scripts in benchmarks/ (BENCH=build_speed: only that one)"
	@echo "make venv   only create .venv, install requirements-lock.txt and the checkout (editable)"
	@echo "make clean  remove demo_output/ (nothing else)"
	@echo "make venv-analysis  only what analysis with exported models needs, in .venv-analysis (no TensorFlow)"

venv: $(STAMP)

# Re-run only when a requirements file changed since the last install.
# requirements-nodeps.txt: packages installed for their data files only (musicnn's checkpoints),
# without their declared dependencies, which cannot be installed beside ours.
# Last, the checkout itself in editable mode (pyproject.toml; the lock already holds its dependencies,
# and the venv's own setuptools builds it, offline), so genrekit and track_analyzer import from anywhere.
$(STAMP): requirements-lock.txt requirements-nodeps.txt pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "error: no python3.11 found; install Python 3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 1; fi
	@"$(PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "error: $(PYTHON) is Python $$("$(PYTHON)" -c 'import platform; print(platform.python_version())'), the pinned requirements need 3.11; run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	@if [ -x "$(VENV_PYTHON)" ] && ! "$(VENV_PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
		echo "error: $(VENV) holds another Python version; remove it (rm -rf $(VENV)) and run make again" >&2; exit 1; fi
	@[ -x "$(VENV_PYTHON)" ] || "$(PYTHON)" -m venv $(VENV) || \
		{ echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu install the python3.11-venv package" >&2; exit 1; }
	$(VENV_PYTHON) -m pip install --disable-pip-version-check --no-input -r requirements-lock.txt
	$(VENV_PYTHON) -m pip install --disable-pip-version-check --no-input --no-deps -r requirements-nodeps.txt
	$(VENV_PYTHON) -m pip install --disable-pip-version-check --no-input --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Analysis only: python -m track_analyzer with exported (LiteRT) models and the ready taggers, without
# TensorFlow, Keras or librosa (requirements-analysis.txt, the same pins as the lock).
ANALYSIS_VENV := .venv-analysis
ANALYSIS_STAMP := $(ANALYSIS_VENV)/.requirements-analysis.stamp

venv-analysis: $(ANALYSIS_STAMP)

$(ANALYSIS_STAMP): requirements-analysis.txt pyproject.toml
	@[ -x "$(ANALYSIS_VENV)/bin/python" ] || "$(PYTHON)" -m venv $(ANALYSIS_VENV)
	$(ANALYSIS_VENV)/bin/python -m pip install --disable-pip-version-check --no-input -r requirements-analysis.txt
	$(ANALYSIS_VENV)/bin/python -m pip install --disable-pip-version-check --no-input --no-deps --no-build-isolation -e .
	@touch $(ANALYSIS_STAMP)

demo: $(STAMP)
	$(VENV_PYTHON) demo/run_demo.py

# The quick suite; the slow tests (@pytest.mark.slow, pyproject.toml) run in test-all, which CI runs.
test: $(STAMP)
	$(VENV_PYTHON) -m pytest tests -q -m "not slow"

test-all: $(STAMP)
	$(VENV_PYTHON) -m pytest tests -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	@set -e; for script in benchmarks/$(BENCH).py; do \
		[ -e "$$script" ] || { echo "no benchmark benchmarks/$(BENCH).py" >&2; exit 1; }; \
		echo "== $$script"; $(VENV_PYTHON) "$$script"; \
	done

clean:
	rm -rf demo_output
