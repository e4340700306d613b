"""Shared fixtures: throwaway MariaDB 10.11 and MySQL 9.7 servers, and a fresh database per test.

* ``mariadb_server`` / ``mysql_server``: one server of each kind per pytest session (per xdist
  worker), started the first time a test asks for it, stopped at the end of the session.
* ``server``: parametrized over both (ids ``mariadb-10.11`` and ``mysql-9.7``); limit with
  ``--servers=mariadb`` / ``--servers=mysql`` (or ``$RAGFLOW_MIGRATE_TEST_SERVERS``).
  Every test that uses a server is marked ``integration``.
* ``database``: a fresh, uniquely named utf8mb4_unicode_ci database on ``server``, dropped after
  the test. See :class:`TestDatabase`.
* ``ragflow_schema(release, kind="fresh")``: path of the reference schema for the current server.

Servers are provisioned by ``tests/servers/provision.sh`` (``make servers``).
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
    from .servers import harness
except ImportError:
    from servers import harness

SERVER_FIXTURES = {flavor: f"{flavor}_server" for flavor in harness.FLAVORS}
_SERVER_FIXTURE_NAMES = {"server", "database", *SERVER_FIXTURES.values()}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--servers",
        default=os.environ.get("RAGFLOW_MIGRATE_TEST_SERVERS", ",".join(harness.FLAVORS)),
        help="comma-separated servers for tests using the `server` fixture: mariadb,mysql (default: both)",
    )


def pytest_configure(config: pytest.Config) -> None:
    selected_flavors(config)  # a bad --servers value stops the run here, with a plain message


def selected_flavors(config: pytest.Config) -> list[str]:
    raw = config.getoption("--servers")
    wanted = [part.strip().lower() for part in str(raw).split(",") if part.strip()]
    aliases = {label: flavor for flavor, label in harness.LABELS.items()}
    flavors = [aliases.get(name, name) for name in wanted]
    unknown = [name for name in flavors if name not in harness.FLAVORS]
    if unknown:
        raise pytest.UsageError(f"--servers: unknown server(s) {', '.join(unknown)}; known: mariadb, mysql")
    return [flavor for flavor in harness.FLAVORS if flavor in flavors]


@pytest.fixture(scope="session")
def selected_servers(pytestconfig: pytest.Config) -> list[str]:
    """The server flavors this run covers ("mariadb", "mysql"), from --servers."""
    return selected_flavors(pytestconfig)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" in metafunc.fixturenames:
        flavors = selected_flavors(metafunc.config)
        metafunc.parametrize(
            "server",
            [pytest.param(flavor, id=harness.LABELS[flavor]) for flavor in flavors],
            indirect=True,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _SERVER_FIXTURE_NAMES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


# ---------------------------------------------------------------------------------------------
# Servers


def _session_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, flavor: str):
    if flavor not in selected_flavors(request.config):
        pytest.skip(f"{harness.LABELS[flavor]} not selected (--servers)")
    # MariaDB keeps its datadir in pytest's temp folder (unless that makes the socket path too
    # long for AF_UNIX); MySQL's must lie inside its chroot (the harness picks a temp folder there).
    basedir = tmp_path_factory.mktemp(flavor) if flavor == "mariadb" else None
    if basedir is not None and len(str(basedir / "mysqld.sock")) > 100:
        basedir = None
    problem = None
    try:
        srv = harness.start_server(flavor, basedir)
    except harness.ProvisioningError as exc:
        problem = f"{harness.LABELS[flavor]}: {exc}"
    if problem:
        pytest.fail(problem, pytrace=False)
    request.config.stash.setdefault(_START_TIMES, {})[harness.LABELS[flavor]] = srv.start_seconds
    try:
        yield srv
    finally:
        srv.cleanup()  # SIGKILL and remove: the datadir is thrown away, a clean shutdown buys nothing


_START_TIMES = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def mariadb_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A MariaDB 10.11 server for the whole session (started on first use)."""
    yield from _session_server(request, tmp_path_factory, "mariadb")


@pytest.fixture(scope="session")
def mysql_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """An Oracle MySQL 9.7 server for the whole session (started on first use)."""
    yield from _session_server(request, tmp_path_factory, "mysql")


@pytest.fixture
def server(request: pytest.FixtureRequest) -> harness.Server:
    """The session's server of the parametrized flavor; revived if an earlier test killed or froze it."""
    flavor = getattr(request, "param", None)
    if flavor is None:
        raise pytest.UsageError("the `server` fixture is parametrized by conftest.py; do not request it indirectly")
    srv: harness.Server = request.getfixturevalue(SERVER_FIXTURES[flavor])
    return srv.ensure_running()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    times = config.stash.get(_START_TIMES, None)
    if times and config.getoption("verbose") >= -1:
        line = ", ".join(f"{label} {seconds:.2f}s" for label, seconds in sorted(times.items()))
        terminalreporter.write_line(f"server start times: {line}")


# ---------------------------------------------------------------------------------------------
# Databases

_COUNTER = itertools.count(1)


@dataclass
class TestDatabase:
    """A fresh database on ``server`` for one test."""

    __test__ = False  # not a test class

    name: str
    server: harness.Server
    env: dict[str, str] = field(default_factory=dict)
    tmp_path: Path | None = None

    def connect(self, **kw: Any):
        """A pymysql connection (root, autocommit) with this database selected."""
        return self.server.connect(self.name, **kw)

    def load_sql(self, path_or_text: str | os.PathLike[str]) -> int:
        """Run a SQL script (file or text) in this database; returns the statement count."""
        return self.server.load_sql(self.name, path_or_text)

    def query(self, sql: str, args: Any = None) -> list[tuple]:
        return self.server.query(sql, args, database=self.name)

    def tables(self) -> list[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
            (self.name,),
        )
        return [row[0] for row in rows]


def _database_name(request: pytest.FixtureRequest) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    stem = re.sub(r"[^0-9a-zA-Z]+", "_", request.node.originalname or request.node.name).strip("_").lower()
    suffix = f"{worker}_{next(_COUNTER)}_{secrets.token_hex(3)}".strip("_")
    return f"t_{stem[: 60 - len(suffix) - 3]}_{suffix}"[:64]


@pytest.fixture
def database(server: harness.Server, request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh database (utf8mb4_unicode_ci, unique name) on ``server``; dropped after the test.

    ``.env`` holds MYSQL_HOST/PORT/USER/PASSWORD/DBNAME for it, plus RAGFLOW_MIGRATE_TERMINATION_LOG
    pointing at a file in the test's tmp_path (merge into os.environ to run the tool).
    """
    name = _database_name(request)
    server.create_database(name)
    env = server.env(name)
    env["RAGFLOW_MIGRATE_TERMINATION_LOG"] = str(tmp_path / "termination-log")
    yield TestDatabase(name=name, server=server, env=env, tmp_path=tmp_path)
    try:
        server.ensure_running().drop_database(name)
    except Exception as exc:  # noqa: BLE001 - a broken server must not hide the test's own result
        print(f"warning: could not drop database {name} on {server.label}: {exc}")


@pytest.fixture
def ragflow_schema(server: harness.Server):
    """``ragflow_schema("v0.20.0")`` → the current server's ``fresh-v0.20.0.sql``;
    ``ragflow_schema("v0.20.0", kind="upgrade")`` → ``upgrade-v0.20.0-to-v0.27.0.sql``. The upgrade
    dumps were kept for MySQL only; RAGFlow's upgrade chains were re-run on MariaDB and end in the
    logically identical state (shared/ragflow-schema/README.md), so MariaDB loads MySQL's dump (its
    CREATE TABLEs need nothing MariaDB lacks). A missing fresh schema skips the test."""

    def resolve(release: str, kind: str = "fresh") -> Path:
        path = server.schema_file(release, kind)
        if path.is_file():
            return path
        if kind != "fresh" and harness.schema_path(harness.LABELS["mysql"], release, kind).is_file():
            return harness.schema_path(harness.LABELS["mysql"], release, kind)
        elsewhere = [
            label for label in harness.LABELS.values()
            if label != server.label and harness.schema_path(label, release, kind).is_file()
        ]
        if elsewhere:
            pytest.skip(f"{server.label} has no {kind} schema {release} (only {', '.join(elsewhere)} has)")
        available = sorted(p.name for p in server.schema_folder.glob("*.sql"))
        raise FileNotFoundError(f"no schema {path}; {server.label} has: {', '.join(available) or 'nothing'}")

    return resolve
