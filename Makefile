# Two entry points for a fresh machine with only Python 3.11 (Debian's python3 will do):
#   make run   installs with poetry, then runs the dev profile on the simulated clock
#   make test  installs with poetry, then ruff, mypy --strict and pytest
#
# Poetry itself goes into a private venv under .tools/ (git-ignored), never into the
# system interpreter: Debian's python3 refuses pip installs there (PEP 668), and a
# private copy pins the poetry every machine uses. The venv is made by $(PYTHON) -m
# venv; where ensurepip is missing (Debian without python3-venv) it is made without
# pip and poetry goes in through the system pip's --python option.
PYTHON ?= python3
POETRY_VENV := .tools/poetry
POETRY := $(POETRY_VENV)/bin/poetry
POETRY_SPEC := poetry>=2.0,<3
# The project's .venv uses the interpreter poetry runs on, i.e. $(PYTHON).
export POETRY_VIRTUALENVS_USE_POETRY_PYTHON := true
CHECKED := src tests scripts emulator
# The compiled hot path (mypyc, perps_bot.compiled): auto builds it where a C compiler and
# the Python headers exist and runs pure Python where not; required fails without it
# (CI); off never builds (and a build already there stays unused: PERPS_BOT_PURE=1).
COMPILE ?= auto

.PHONY: install run test lint typecheck bench

$(POETRY):
	@echo "installing $(POETRY_SPEC) into $(POETRY_VENV) with $(PYTHON)"
	@rm -rf $(POETRY_VENV)
	@if $(PYTHON) -m venv $(POETRY_VENV) >/dev/null 2>&1; then \
		$(POETRY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
			"$(POETRY_SPEC)"; \
	else \
		echo "  no ensurepip: venv without pip, poetry installed by pip --python"; \
		rm -rf $(POETRY_VENV) && $(PYTHON) -m venv --without-pip $(POETRY_VENV) && \
		$(PYTHON) -m pip --python $(POETRY_VENV)/bin/python install --quiet \
			--disable-pip-version-check "$(POETRY_SPEC)"; \
	fi
	@$(POETRY) --version

install: $(POETRY)
	@$(POETRY) install --no-interaction --quiet --all-extras
	@$(POETRY) run python scripts/compile_hot_path.py --mode $(COMPILE)

run: install
	$(POETRY) run perps-bot --profile dev --dev-fast

lint: install
	$(POETRY) run ruff check $(CHECKED)
	$(POETRY) run ruff format --check $(CHECKED)

typecheck: install
	$(POETRY) run mypy --strict src emulator/src

test: install
	$(POETRY) run ruff check $(CHECKED)
	$(POETRY) run mypy --strict src emulator/src
	$(POETRY) run pytest -n 2
	@# compiled, the first pass skipped the tests that patch the engine: run them as plain Python
	@if $(POETRY) run python -c "import sys; from perps_bot import compiled; \
		sys.exit(not compiled.availability().startswith('compiled'))"; then \
		echo "PERPS_BOT_PURE=1 pytest -n 2 -m pure_python"; \
		PERPS_BOT_PURE=1 $(POETRY) run pytest -n 2 -m pure_python; fi

bench: install
	$(POETRY) run python scripts/bench.py
