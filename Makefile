# ragflow-migrate — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -e '.[test]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## create the virtualenv with the pinned dependencies

.PHONY: lint
lint: venv ## static checks
	$(VENV)/bin/ruff check src tests

.PHONY: unit
unit: venv ## unit tests only (no server)
	$(PY) -m pytest -m 'not integration' -q
