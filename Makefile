# ragflow-migrate — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TOOLS ?= $(CURDIR)/.tools
export TOOLS
# pytest arguments for `make test` (e.g. PYTEST_ARGS="-x -k lock")
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements/runtime.lock requirements/test.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q --require-hashes -r requirements/runtime.lock -r requirements/test.lock
	$(PIP) install -q --no-deps -e .
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## virtualenv with the locked dependencies and the package (editable)

UV_VERSION ?= 0.13.8

.PHONY: lock
lock: venv ## re-resolve requirements/*.lock (with hashes) from requirements/*.in
	[ "$$($(VENV)/bin/uv --version 2>/dev/null | cut -d' ' -f2)" = "$(UV_VERSION)" ] || $(PIP) install -q uv==$(UV_VERSION)
	cd requirements && ../$(VENV)/bin/uv pip compile runtime.in --generate-hashes --python-version 3.11 -o runtime.lock -q
	cd requirements && ../$(VENV)/bin/uv pip compile test.in --generate-hashes --python-version 3.11 -o test.lock -q

.PHONY: servers
servers: ## provision MariaDB 10.11 and Oracle MySQL 9.7 (chroot) for the tests (root; first time: minutes)
	bash tests/servers/provision.sh

.PHONY: servers-mariadb
servers-mariadb: ## provision MariaDB 10.11 alone (what the demo uses; no MySQL chroot)
	PROVISION_ONLY=mariadb bash tests/servers/provision.sh

PG_BINDIR := $(or $(RAGFLOW_MIGRATE_PG_BINDIR),/usr/lib/postgresql/15/bin)

.PHONY: servers-postgres
servers-postgres: ## check PostgreSQL 15 for `make demo DB=postgres` (missing: provision.sh installs it, with the rest)
	@if [ -x $(PG_BINDIR)/postgres ] && [ -x $(PG_BINDIR)/initdb ] && [ -x $(PG_BINDIR)/psql ] \
	    && id postgres >/dev/null 2>&1; then \
	    echo "postgresql: present ($$($(PG_BINDIR)/postgres --version | awk '{print $$3}'))"; \
	else \
	    echo "postgresql: missing; tests/servers/provision.sh installs postgresql-15 (and MariaDB, Galera, the MySQL chroot)"; \
	    PROVISION_SKIP_TEMPLATE=1 bash tests/servers/provision.sh; \
	fi

.PHONY: tools
tools: ## install chart/image test tools (helm, kubectl, kubernetes-validate, hadolint, checkov; buildah, podman)
	bash tests/tools/install.sh all

.PHONY: test
test: venv servers tools ## the whole suite on both servers (what CI runs)
	$(PY) -m pytest -n 2 --dist loadgroup -q --durations=25 $(PYTEST_ARGS)

.PHONY: unit
unit: venv ## pure tests only (no server, no tools)
	$(PY) -m pytest tests/unit -q

.PHONY: lint
lint: venv ## static checks
	$(VENV)/bin/ruff check src tests

# `make demo DB=postgres`: the demo's server (mariadb or postgres)
DB ?= mariadb
DEMO_DBS := mariadb postgres

.PHONY: demo
# An unknown DB fails first (demo-unknown-db), before the venv is touched.
DEMO_DB_OK := $(if $(filter 1,$(words $(DB))),$(filter $(DB),$(DEMO_DBS)))
demo: $(if $(DEMO_DB_OK),venv servers-$(DB),demo-unknown-db)
demo: ## a throwaway MariaDB with an old RAGFlow database, upgraded before your eyes (DB=postgres: PostgreSQL 15)
	$(PY) tests/demo/demo.py$(if $(filter-out mariadb,$(DB)), --db $(DB))$(if $(DEMO_KEEP), --keep)

.PHONY: demo-unknown-db
demo-unknown-db:
	@echo "make demo: DB must be one of: $(DEMO_DBS) (default mariadb), not '$(DB)'" >&2; exit 2

.PHONY: bench
bench: venv servers ## upgrade generated S and M databases on both servers, timed per step (BENCH_SCALES=S,M,L adds L)
	$(PY) tests/bench/run.py

.PHONY: image
image: ## build the image with buildah: localhost/ragflow-migrate:<version>
	bash image/build.sh

.PHONY: chart-test
chart-test: venv tools ## helm lint, render matrix, kubernetes-validate 1.27-1.34, checkov, hadolint
	$(PY) -m pytest tests/chart -q

.PHONY: image-test
image-test: venv tools servers ## build the image, run it with podman, pod simulation
	$(PY) -m pytest tests/image -q

.PHONY: clean
clean: ## remove the virtualenv, caches and local tools
	rm -rf $(VENV) .pytest_cache .ruff_cache $(TOOLS) build dist src/*.egg-info
