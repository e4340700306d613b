"""Fixtures of the data-migration tests (real servers, from the harness's ``database`` fixture).

* ``legacy``: the test's database at RAGFlow v0.26.0's schema (where the v0.26 stages run),
  with a :class:`Legacy` helper: ``.conn`` (autocommit), ``.ctx()`` (a fresh RunContext on it),
  ``.run()`` (the pending stages of both gates), ``.snapshot()``, ``.check()`` (§6).
* ``legacy_at(release)``: the same on another reference schema (``fresh-v0.25.6``, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data_support as ds  # noqa: E402


class Legacy:
    def __init__(self, database: Any, schema: Any) -> None:
        self.database = database
        self.schema = schema
        self.env = database.env
        self.conn = database.connect(charset="utf8mb4")
        self._contexts: list[Any] = []

    def ctx(self, catalog: Path | str = ds.SMALL_CATALOG, **flags: Any):
        from ragflow_migrate import runner

        ctx = ds.open_ctx(self.env, catalog, **flags)
        self._contexts.append((runner, ctx))
        return ctx

    def run(self, **flags: Any) -> list[str]:
        return ds.run_all(self.ctx(**flags))

    def snapshot(self) -> dict[str, Any]:
        return ds.snapshot(self.conn)

    def check(self, catalog: Path | str = ds.SMALL_CATALOG) -> None:
        ds.check_acceptance(self.conn, catalog)

    def q(self, sql: str, args: Any = None) -> list[tuple]:
        return ds._q(self.conn, sql, args)

    def close(self) -> None:
        for runner, ctx in self._contexts:
            runner.close_context(ctx)
        self.conn.close()


@pytest.fixture
def legacy_at(database, ragflow_schema):
    made: list[Legacy] = []

    def make(release: str = "v0.26.0", kind: str = "fresh", collation: str | None = None) -> Legacy:
        ds.load_schema(database, ragflow_schema(release, kind), collation=collation)
        helper = Legacy(database, ragflow_schema)
        made.append(helper)
        return helper

    yield make
    for helper in made:
        helper.close()


@pytest.fixture
def legacy(legacy_at) -> Legacy:
    return legacy_at("v0.26.0")
