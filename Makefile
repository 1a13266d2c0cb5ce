# The two commands of the README: `make demo` (the main job) and `make test` (lint, types, tests).
# Both create .venv when it is missing and install the project editable with its dev extra;
# the install re-runs only when pyproject.toml or constraints.txt changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ucc-tune-installed

.PHONY: demo test install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 \
		| grep -v "is ignored: it is neither a file nor a directory" || true
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

clean-venv:
	rm -rf $(VENV)
