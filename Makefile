# The README's commands. Everything else lives in scripts/nexus.py so it can be read and tested as Python.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test lint bench install screenshots drills load pages-budget

run: $(STAMP)
	$(PY) scripts/nexus.py run

# Every page, light and dark, desktop and phone, into .screenshots/<UTC time>/ (its own server, demo data).
screenshots: $(STAMP)
	$(PY) scripts/nexus.py screenshots

# The every-page browser suite with the LCP budget (< 1.5 s) enforced; prints the worst LCP per page as JSON.
pages-budget: $(STAMP)
	$(PY) scripts/nexus.py pages-budget $(ARGS)

test: $(STAMP)
	$(PY) scripts/nexus.py test $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) scripts/import_cycles.py
	DATABASE_URL=$${DATABASE_URL:-postgresql:///nexus} REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} $(VENV)/bin/mypy

drills: $(STAMP)
	$(PY) scripts/nexus.py drills $(ARGS)

load: $(STAMP)
	$(PY) bench/load/run.py $(ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Nexus needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@
