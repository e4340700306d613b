"""Fixtures of the Galera suites: one real 3-node MariaDB Galera cluster per pytest worker.

* ``galera`` (session): this worker's :class:`galera.GaleraCluster`, started on first use and
  removed at the end of the session; a node an earlier test left killed or stopped is started
  again before each test that uses the cluster. A machine without galera-4 fails the tests (no
  skip) with a provisioning hint.
* ``galera_db``: a fresh database on the cluster (dropped after the test), with ``envs`` mapping
  each node number (1..3) to the MYSQL_* variables that point the tool at that node.

Every test under tests/cluster runs on one xdist worker (``xdist_group("galera")``; the suite
runs with ``--dist loadgroup``), so the whole session starts one cluster only. The hook below
also applies the groups itself: pytest-xdist 3.8's own hook has no effect under pytest 9.2.
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

try:  # `tests` may become a package one day
    from ..servers import galera as galera_mod
    from ..servers import harness
except ImportError:
    from servers import galera as galera_mod
    from servers import harness

HERE = Path(__file__).resolve().parent
XDIST_GROUP = "galera"


@pytest.hookimpl(trylast=True)  # after the other conftests' hooks (tests/cluster/gr tags its own items)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Conftest hooks see every collected item, not only this folder's: filter by path.
    for item in items:
        path = Path(str(getattr(item, "path", "") or item.fspath)).resolve()
        if HERE in path.parents:
            item.add_marker(pytest.mark.xdist_group(XDIST_GROUP))
            item.add_marker(pytest.mark.integration)
    if getattr(config.option, "loadgroup", False):
        for item in items:
            _apply_xdist_group(item)


def _apply_xdist_group(item: pytest.Item) -> None:
    """What xdist's own hook does for ``--dist loadgroup``: append ``@<group>`` to the node id
    (the scheduler sends all ids with the same suffix to one worker).

    pytest-xdist 3.8 sets ``item._nodeid``, which pytest 9.2 no longer reads (``nodeid`` is
    ``str(item._id)`` there), so its groups silently have no effect: do it here, for every
    grouped item of the session, unless the id already carries the suffix.
    """
    names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                    for mark in item.iter_markers("xdist_group")})
    if not names:
        return
    suffix = "@" + "_".join(names)  # xdist's format for items with several groups
    if item.nodeid.endswith(suffix):
        return
    grouped = item.nodeid + suffix
    node_id = getattr(item, "_id", None)
    if node_id is not None and not isinstance(node_id, str) and hasattr(type(node_id), "parse"):
        item._id = type(node_id).parse(grouped)  # pytest >= 9.2: a NodeId
    else:
        item._nodeid = grouped  # pytest < 9.2
    if item.nodeid != grouped:
        raise pytest.UsageError(f"cannot put {item.nodeid} into xdist group {suffix[1:]}: unknown pytest internals")


_STASH = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def galera(request: pytest.FixtureRequest):
    """The session's 3-node Galera cluster (this worker's), started on first use."""
    problem = None
    try:
        cluster = galera_mod.GaleraCluster()
    except harness.ProvisioningError as exc:
        problem = f"MariaDB Galera: {exc}"
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        cluster.start()  # on failure start() has removed the cluster already
        request.config.stash.setdefault(_STASH, {})["start_seconds"] = cluster.first_start_seconds
        yield cluster
    finally:
        cluster.cleanup()  # SIGKILL and remove: the datadirs are thrown away, a clean stop buys nothing


@pytest.fixture(autouse=True)
def _galera_whole(request: pytest.FixtureRequest) -> None:
    """Before each test that uses the cluster: start again a node an earlier test left down."""
    if "galera" in request.fixturenames:
        cluster: galera_mod.GaleraCluster = request.getfixturevalue("galera")
        if len(cluster.running()) != len(cluster.nodes):
            cluster.start()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    stash = config.stash.get(_STASH, None)
    if stash and config.getoption("verbose") >= -1:
        terminalreporter.write_line(f"galera cluster start: {stash['start_seconds']:.1f}s")


_COUNTER = itertools.count(1)


@dataclass
class GaleraDatabase:
    """A fresh database on the cluster for one test."""

    __test__ = False

    name: str
    cluster: galera_mod.GaleraCluster
    #: node number (1..n) -> MYSQL_* env (plus RAGFLOW_MIGRATE_TERMINATION_LOG) for the tool
    envs: dict[int, dict[str, str]] = field(default_factory=dict)

    def connect(self, i: int, **kw: Any):
        """A pymysql connection to node ``i`` with this database selected."""
        return self.cluster.connect(i, self.name, **kw)

    def query(self, i: int, sql: str, args: Any = None) -> list[tuple]:
        return self.cluster.query(i, sql, args, database=self.name)


@pytest.fixture
def galera_db(galera: galera_mod.GaleraCluster, request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh utf8mb4_unicode_ci database on the cluster (created on one node, replicated),
    dropped after the test; ``.envs[i]`` points the tool at node ``i``."""
    stem = re.sub(r"[^0-9a-zA-Z]+", "_", request.node.originalname or request.node.name).strip("_").lower()
    suffix = f"{os.environ.get('PYTEST_XDIST_WORKER', '')}_{next(_COUNTER)}_{secrets.token_hex(3)}".strip("_")
    name = f"g_{stem[: 60 - len(suffix) - 3]}_{suffix}"[:64]
    galera.create_database(name)
    envs = {}
    for node in galera.nodes:
        env = node.env(name)
        env["RAGFLOW_MIGRATE_TERMINATION_LOG"] = str(tmp_path / f"termination-log-node{node.index}")
        envs[node.index] = env
    yield GaleraDatabase(name=name, cluster=galera, envs=envs)
    try:
        galera.drop_database(name)
    except Exception as exc:  # noqa: BLE001 - a broken cluster must not hide the test's own result
        print(f"warning: could not drop database {name} on the Galera cluster: {exc}")
