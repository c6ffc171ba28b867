# Two entry points for a fresh machine with only Python 3.11 and pip:
#   make run   installs with poetry, then runs the dev profile on the simulated clock
#   make test  installs with poetry, then ruff, mypy --strict and pytest
PYTHON ?= python3
POETRY := $(shell command -v poetry 2>/dev/null || echo "$(PYTHON) -m poetry")

.PHONY: install run test lint typecheck bench

install:
	@$(POETRY) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "poetry>=2.0,<3"
	@$(POETRY) install --no-interaction --quiet

run: install
	$(POETRY) run perps-bot --profile dev --dev-fast

lint: install
	$(POETRY) run ruff check src tests scripts emulator
	$(POETRY) run ruff format --check src tests scripts emulator

typecheck: install
	$(POETRY) run mypy --strict src emulator/src

test: install
	$(POETRY) run ruff check src tests scripts emulator
	$(POETRY) run mypy --strict src emulator/src
	$(POETRY) run pytest -n 2

bench: install
	$(POETRY) run python scripts/bench.py
