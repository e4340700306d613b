"""Fixtures for tests against a real MySQL 9.7 Group Replication group (tests/servers/group_replication.py).

* ``replication_group``: one 3-member single-primary group per pytest worker process, started the
  first time a test asks for it, killed at the end of the session.
* ``gr_db``: a fresh database created through the current primary (and applied on every member
  before the test starts), dropped after the test; see :class:`GroupDatabase`.

Every test under tests/cluster/gr runs on one xdist worker: the hook below marks them
``xdist_group("galera")``, the group the Galera tests use, so the two clusters never run at the
same time (the suite runs with ``-n 2 --dist loadgroup``). A machine without the MySQL chroot or
its group_replication plugin FAILS these tests with a provisioning hint: they are never skipped.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from servers import group_replication, harness

HERE = Path(__file__).resolve().parent
CLUSTER_GROUP = "galera"  # shared with the Galera tests: one worker runs both clusters, one at a time


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.xdist_group(CLUSTER_GROUP))
            item.add_marker(pytest.mark.integration)


_START_TIMES = pytest.StashKey[dict]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    timings = config.stash.get(_START_TIMES, None)
    if timings and config.getoption("verbose") >= -1:
        parts = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in timings.items())
        terminalreporter.write_line(f"replication group start: {parts}")


@pytest.fixture(scope="session")
def replication_group(pytestconfig: pytest.Config):
    """The worker's :class:`group_replication.ReplicationGroup` (3 members, all ONLINE at start)."""
    problem = None
    group = None
    try:
        # expel_timeout=0: a killed member leaves the group in ~7 s instead of ~21 s (the suite's budget)
        group = group_replication.ReplicationGroup(expel_timeout=0)
        group.start()
    except harness.ProvisioningError as exc:  # never a skip: the machine must be provisioned
        problem = f"MySQL Group Replication: {exc}"
    if problem or group is None:
        pytest.fail(problem or "no replication group", pytrace=False)
    pytestconfig.stash[_START_TIMES] = dict(group.timings)
    try:
        yield group
    finally:
        group.stop()


_COUNTER = itertools.count(1)


@dataclass
class GroupDatabase:
    """A fresh database on the group, created through ``primary``."""

    __test__ = False

    name: str
    group: group_replication.ReplicationGroup
    primary: int
    #: per member index: MYSQL_HOST/PORT/USER/PASSWORD/DBNAME (+ RAGFLOW_MIGRATE_TERMINATION_LOG)
    envs: list[dict[str, str]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The primary's env (as at the start of the test)."""
        return self.envs[self.primary]

    def connect(self, i: int | None = None, **kw: Any):
        """A root connection to member ``i`` (default: the primary) with this database selected."""
        return self.group.connect(self.primary if i is None else i, self.name, **kw)

    def query(self, sql: str, args: Any = None, i: int | None = None) -> list[tuple]:
        return self.group.query(self.primary if i is None else i, sql, args, database=self.name)


def _database_name(request: pytest.FixtureRequest) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    stem = re.sub(r"[^0-9a-zA-Z]+", "_", request.node.originalname or request.node.name).strip("_").lower()
    suffix = f"{worker}_{next(_COUNTER)}_{secrets.token_hex(3)}".strip("_")
    return f"gr_{stem[: 60 - len(suffix) - 4]}_{suffix}"[:64]


@pytest.fixture
def gr_db(replication_group: group_replication.ReplicationGroup, request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh utf8mb4_unicode_ci database made on the primary and present on every member.

    The group is first brought back to 3 ONLINE members if an earlier test left it damaged.
    """
    group = replication_group.ensure_running()
    primary = group.primary()
    name = _database_name(request)
    group.query(primary, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    group.sync(primary)
    envs = []
    for member in group.members:
        env = member.env(name)
        env["RAGFLOW_MIGRATE_TERMINATION_LOG"] = str(tmp_path / f"termination-log-{member.index}")
        envs.append(env)
    yield GroupDatabase(name=name, group=group, primary=primary, envs=envs)
    try:
        group.ensure_running()
        group.query(group.primary(), f"DROP DATABASE IF EXISTS `{name}`")
    except Exception as exc:  # noqa: BLE001 - a broken group must not hide the test's own result
        print(f"warning: could not drop database {name} on the replication group: {exc}")
