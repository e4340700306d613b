"""Shared fixtures of the PostgreSQL suites: one throwaway PostgreSQL 15 per xdist worker
(tests/servers/postgres.py), a fresh database per test, and the reference schemas.

The modules spread over the xdist workers; each worker starts its server once (about a second)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from servers import harness, postgres

REFERENCE = harness.schema_root() / postgres.LABEL
#: RAGFlow's tags whose startup ran on PostgreSQL (v0.21.0 cannot start there).
FRESH = ("v0.20.0", "v0.22.0", "v0.23.0", "v0.24.0", "v0.25.0", "v0.25.6", "v0.26.0", "v0.26.4", "v0.27.0")
UPGRADES = ("v0.20.0", "v0.24.0", "v0.25.6", "v0.26.4")


def reference(stem: str, suffix: str = ".sql") -> Path:
    """``fresh-v0.27.0`` or ``upgrade-v0.20.0-to-v0.27.0`` → its file in the shared folder."""
    return REFERENCE / f"{stem}{suffix}"


@pytest.fixture(scope="session")
def pg_server():
    with postgres.running() as server:
        yield server


_counter = itertools.count(1)


@pytest.fixture
def pg_database(pg_server: postgres.PostgresServer):
    """A new empty database (UTF8, C.UTF-8, as the reference databases were made); dropped after."""
    name = pg_server.create_database(f"t{os.getpid()}_{next(_counter)}")
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def pg_settings(pg_server: postgres.PostgresServer, pg_database: str, monkeypatch: pytest.MonkeyPatch):
    """Settings of the tool for ``pg_database`` the way RAGFlow's pods give them: DB_TYPE=postgres
    and the POSTGRES_* variables (user postgres, no password: the harness trusts it over TCP)."""
    from ragflow_migrate.config import load_settings

    for key in list(os.environ):
        if key.startswith(("MYSQL_", "POSTGRES_", "RAGFLOW_MIGRATE_", "PG")) or key == "DB_TYPE":
            monkeypatch.delenv(key, raising=False)
    env = pg_server.env(pg_database)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings({}, dict(os.environ))
