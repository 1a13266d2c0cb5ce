# The two commands of the README: `make demo` (the main job) and `make test` (lint, types, tests).
# Both create .venv when it is missing and install the project editable with its dev extra,
# every package at the version of requirements.lock (the environment the tests passed in);
# the install re-runs only when pyproject.toml, constraints.txt or the lock changed.
#
# `make lock` re-resolves the lock from pyproject.toml's ranges in a throw-away environment
# (then run `make test` before committing it); `make test-latest` runs the fast tests against the
# newest releases those ranges allow, to see a new release break us before a user does.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c  # a failed pip install fails the target, through the filter below
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ucc-tune-installed
LOCK := requirements.lock
PIP := -m pip install --quiet --disable-pip-version-check
# pip's noise about the [dev] extra's own editable path
QUIET := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: demo test install lock test-latest clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP) -c constraints.txt -c $(LOCK) -e '.[dev]' 2>&1 | $(QUIET)
	@$(BIN)/python -c "import ucc_tune, torch, ray, optuna" || (echo "install failed"; exit 1)
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m ucc_tune.search --space alpha_sweep

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python $(PIP) -c constraints.txt -e '.[dev]' 2>&1 | $(QUIET)
	@echo "# Every package of the tested environment (pip freeze of a fresh install of '.[dev]'" > $(LOCK).tmp
	@echo "# under constraints.txt, on Linux x86_64, Python 3.11). Refresh: make lock" >> $(LOCK).tmp
	.venv-lock/bin/python -m pip freeze --exclude-editable --disable-pip-version-check >> $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf .venv-lock
	@echo "$(LOCK) rewritten: run make test, then commit it"

test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python $(PIP) --upgrade -e '.[dev]' 2>&1 | $(QUIET)
	@changes=$$({ diff <(grep -v '^#' $(LOCK)) \
		<(.venv-latest/bin/python -m pip freeze --exclude-editable --disable-pip-version-check) || true; } \
		| { grep '^[<>]' || true; } | sed 's/^</lock:  /; s/^>/latest:/'); \
		echo "$${changes:-latest = the lock}"
	.venv-latest/bin/pytest -m "not slow" -p no:cacheprovider

clean-venv:
	rm -rf $(VENV)
