"""Fixtures of the reliability suites (real servers from ``tests/conftest.py``).

* ``forkrun``: a :class:`relkit.ForkRunner` for this worker: the real CLI in forked processes.
* ``old_db(release)``: the test's ``database`` rebuilt at an old RAGFlow release, with legacy rows.
* ``reference(release)``: the end state one uninterrupted ``run`` gives that same database
  (computed once per server and release per worker, in a database of its own).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import relkit  # noqa: E402
from relkit import BEFORE_MODELS  # noqa: E402

_REFERENCES: dict[tuple[str, str], dict] = {}


@pytest.fixture(scope="session")
def forkrun(tmp_path_factory):
    runner = relkit.ForkRunner(tmp_path_factory.mktemp("forkrun"))
    yield runner
    runner.close()


@pytest.fixture
def old_db(database):
    """``old_db("v0.25.6")`` → the test's database at that release, seeded; returns it."""

    def build(release: str = BEFORE_MODELS, **seed) -> object:
        relkit.build_old_database(database.server, database.name, release, **seed)
        return database

    return build


@pytest.fixture
def reference(server, forkrun):
    """``reference("v0.25.6")`` → end state of one uninterrupted run on the seeded database, plus
    ``statements`` (SQL statements that run sent) and ``duration_s``."""

    def get(release: str = BEFORE_MODELS) -> dict:
        key = (server.label, release)
        if key not in _REFERENCES:
            name = f"ref_{release.replace('.', '_')}_{os.getpid()}"
            relkit.build_old_database(server, name, release)
            try:
                child = forkrun.spawn(server.env(name), "run", count=True)
                result = child.wait()
                assert result.code == 0, result.explain()
                assert forkrun.run(server.env(name), "run").summary["outcome"] == "noop"
                state = relkit.end_state(server, name)
                state["statements"] = child.statements()
                state["duration_s"] = result.summary["duration_s"]
                _REFERENCES[key] = state
            finally:
                server.ensure_running().drop_database(name)
        return _REFERENCES[key]

    return get
