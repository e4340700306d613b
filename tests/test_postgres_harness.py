"""Tests of the throwaway PostgreSQL 15 server (tests/servers/postgres.py), of the reference
schemas it loads (../shared/ragflow-schema/postgres-15), and of RAGFlow's startup lock on
PostgreSQL, the lock the PostgreSQL backend will take (docs/postgres.md)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import psycopg.errors
import pytest

try:
    from .servers import harness, postgres
except ImportError:
    from servers import harness, postgres

from ragflow_migrate.config import load_settings

#: One worker runs this module under xdist (`make test`'s --dist loadgroup): one server start.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("postgres")]

TESTS_DIR = Path(__file__).resolve().parent
REFERENCE = harness.schema_root() / postgres.LABEL
#: RAGFlow's tags that ran on PostgreSQL (v0.21.0 cannot start there: no file exists).
FRESH = ("v0.20.0", "v0.22.0", "v0.23.0", "v0.24.0", "v0.25.0", "v0.25.6", "v0.26.0", "v0.26.4", "v0.27.0")
UPGRADES = ("v0.20.0", "v0.24.0", "v0.25.6", "v0.26.4")
#: Table / column / index counts of the fresh schemas (the reference README's, the MySQL numbers).
FRESH_COUNTS = {"v0.20.0": (22, 291, 232), "v0.22.0": (26, 369, 281), "v0.27.0": (38, 547, 404),
                "v0.24.0": (32, 444, 322), "v0.26.4": (42, 581, 426)}
#: RAGFlow's startup-lock key on PostgreSQL, as its own code computes it.
RAGFLOW_LOCK_KEY = int(hashlib.md5(b"init_database_tables").hexdigest(), 16) % (2**31 - 1)


@pytest.fixture(scope="module")
def pg():
    with postgres.running() as server:
        yield server


_counter = iter(range(1, 10**6))


@pytest.fixture
def pgdb(pg: postgres.PostgresServer):
    name = pg.create_database(f"t{os.getpid()}_{next(_counter)}")
    yield name
    pg.drop_database(name)


# ---------------------------------------------------------------------------------------------
# No server needed


def test_every_reference_file_is_known() -> None:
    """The files this module loads are all there are (a new release or chain is noticed here)."""
    assert REFERENCE.is_dir(), REFERENCE
    fresh = sorted(p.name for p in REFERENCE.glob("fresh-*.sql"))
    upgrade = sorted(p.name for p in REFERENCE.glob("upgrade-*.sql"))
    assert fresh == sorted(f"fresh-{tag}.sql" for tag in FRESH)
    assert upgrade == sorted(f"upgrade-{tag}-to-v0.27.0.sql" for tag in UPGRADES)
    assert not (REFERENCE / "fresh-v0.21.0.sql").exists()


def test_the_advisory_key_is_ragflows() -> None:
    assert postgres.advisory_key() == RAGFLOW_LOCK_KEY == 1_241_179_007
    assert postgres.advisory_key("other") != RAGFLOW_LOCK_KEY


# ---------------------------------------------------------------------------------------------
# The server


def _proc_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_server_identity_and_settings(pg: postgres.PostgresServer) -> None:
    assert pg.host == "127.0.0.1" and pg.label == "postgres-15"
    assert pg.schema_folder == REFERENCE and pg.schema_file("v0.27.0") == REFERENCE / "fresh-v0.27.0.sql"
    assert pg.schema_file("v0.20.0", "upgrade") == REFERENCE / "upgrade-v0.20.0-to-v0.27.0.sql"
    assert pg.is_alive() and not pg.is_frozen()
    assert os.readlink(f"/proc/{pg.pid}/exe").endswith("/postgresql/15/bin/postgres")
    if os.geteuid() == 0:
        uid = postgres._service_ids()[0]
        assert _proc_uid(pg.pid) == uid and pg.datadir.stat().st_uid == uid
    assert pg.socket_file.is_socket()
    assert pg.version.startswith("15.") and pg.start_seconds < 30
    with pg.connect() as conn:
        rows = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'port', 'fsync', "
            "'max_connections', 'server_encoding', 'lc_collate', 'unix_socket_directories')").fetchall())
        assert rows == {"listen_addresses": "127.0.0.1", "port": str(pg.port), "fsync": "off",
                        "max_connections": "200", "server_encoding": "UTF8", "lc_collate": "C.UTF-8",
                        "unix_socket_directories": str(pg.basedir)}
        assert conn.execute("SELECT current_user, inet_server_addr()::text").fetchone() == ("postgres", "127.0.0.1/32")


def test_database_and_env(pg: postgres.PostgresServer, pgdb: str) -> None:
    assert pg.query("SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = %s",
                    (pgdb,)) == [("UTF8", "C.UTF-8", "C.UTF-8")]
    env = pg.env(pgdb)
    assert env == {"DB_TYPE": "postgres", "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(pg.port),
                   "POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "", "POSTGRES_DBNAME": pgdb}
    # The tool's configuration reads them as RAGFlow would...
    settings = load_settings({}, env)
    assert (settings.db_type, settings.host, settings.port, settings.user, settings.database) == (
        "postgres", "127.0.0.1", pg.port, "postgres", pgdb)
    # ...and they are enough for a subprocess to reach the database.
    probe = ("import os, psycopg\n"
             "c = psycopg.connect(host=os.environ['POSTGRES_HOST'], port=os.environ['POSTGRES_PORT'],"
             " user=os.environ['POSTGRES_USER'], password=os.environ['POSTGRES_PASSWORD'],"
             " dbname=os.environ['POSTGRES_DBNAME'])\n"
             "print(c.execute('SELECT current_database()').fetchone()[0])\n")
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == pgdb
    pg.drop_database(pgdb)  # also with a session open
    assert pg.query("SELECT count(*) FROM pg_database WHERE datname = %s", (pgdb,)) == [(0,)]
    pg.create_database(pgdb)


def test_created_user_needs_its_password(pg: postgres.PostgresServer, pgdb: str) -> None:
    pg.create_user("rf_app", "app-pass-1", [f"CONNECT ON DATABASE {pgdb} TO {{user}}",
                                            f"ALTER DATABASE {pgdb} OWNER TO {{user}}"])
    try:
        with pg.connect(pgdb, "rf_app", "app-pass-1") as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("rf_app",)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            pg.connect(pgdb, "rf_app", "wrong")
    finally:
        pg.drop_database(pgdb)
        pg.drop_user("rf_app")
        pg.create_database(pgdb)


# ---------------------------------------------------------------------------------------------
# The reference schemas


def _catalog(pg: postgres.PostgresServer, database: str) -> dict[str, list]:
    """The catalog view of the reference JSON files, read from the loaded database."""
    q = lambda sql: pg.query(sql, database=database)  # noqa: E731
    columns = [
        {"table": t, "column": c, "ordinal": o, "data_type": d, "character_maximum_length": cl,
         "numeric_precision": p, "is_nullable": n, "column_default": df}
        for t, c, o, d, cl, p, n, df in q(
            "SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length, "
            "numeric_precision, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = 'public'")
    ]
    indexes = [
        {"table": t, "index_name": i, "unique": u, "primary": p, "columns": list(cols), "indexdef": d}
        for t, i, u, p, cols, d in q(
            "SELECT t.relname, c.relname, x.indisunique, x.indisprimary, "
            "  ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n) "
            "        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n), "
            "  pg_get_indexdef(c.oid) "
            "FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_namespace s ON s.oid = t.relnamespace WHERE s.nspname = 'public'")
    ]
    constraints = [
        {"table": t, "name": n, "type": ty, "definition": d}
        for t, n, ty, d in q(
            "SELECT t.relname, c.conname, c.contype::text, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace s ON s.oid = t.relnamespace "
            "WHERE s.nspname = 'public'")
    ]
    sequences = [
        {"sequence": n, "data_type": d, "owned_by_table": t, "owned_by_column": c}
        for n, d, t, c in q(
            "SELECT s.relname, format_type(q.seqtypid, NULL), t.relname, a.attname FROM pg_sequence q "
            "JOIN pg_class s ON s.oid = q.seqrelid "
            "LEFT JOIN pg_depend dep ON dep.objid = s.oid AND dep.deptype = 'a' "
            "LEFT JOIN pg_class t ON t.oid = dep.refobjid "
            "LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = dep.refobjsubid")
    ]
    tables = [{"table": t} for (t,) in q("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    return {"tables": tables, "columns": columns, "indexes": indexes, "constraints": constraints,
            "sequences": sequences}


def _canonical(items: list) -> list:
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


REFERENCE_FILES = [pytest.param(f"fresh-{tag}", id=f"fresh-{tag}") for tag in FRESH] + [
    pytest.param(f"upgrade-{tag}-to-v0.27.0", id=f"upgrade-{tag}") for tag in UPGRADES]


@pytest.mark.parametrize("stem", REFERENCE_FILES)
def test_reference_schema_loads_exactly(pg: postgres.PostgresServer, pgdb: str, stem: str) -> None:
    """Each dump loads into a database of its own and gives back its catalog view: the same
    tables, columns, indexes, constraints and sequences as the JSON beside it."""
    statements = pg.load_sql(pgdb, REFERENCE / f"{stem}.sql")
    reference_json = REFERENCE / f"{stem}.json"
    tables = pg.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database=pgdb)[0][0]
    if not reference_json.is_file():
        assert tables > 0
        return
    reference = json.loads(reference_json.read_text())
    assert tables == len(reference["tables"])
    assert reference["database_encoding"] == "UTF8" and reference["database_collate"] == "C.UTF-8"
    live = _catalog(pg, pgdb)
    for part in ("tables", "columns", "indexes", "constraints", "sequences"):
        assert _canonical(live[part]) == _canonical(reference[part]), f"{stem}: {part} differ"
    # Every table, every non-constraint index, every constraint, and the serial's three statements.
    constraint_indexes = len(reference["constraints"])
    assert statements == (len(reference["tables"]) + len(reference["indexes"]) - constraint_indexes
                          + len(reference["constraints"]) + 3 * len(reference["sequences"]))
    tag = stem.removeprefix("fresh-")
    if tag in FRESH_COUNTS:
        assert (tables, len(live["columns"]), len(live["indexes"])) == FRESH_COUNTS[tag]


def test_load_sql_is_one_transaction_and_names_the_error(pg: postgres.PostgresServer, pgdb: str) -> None:
    script = "CREATE TABLE a (x int);\nCREATE TABLE b (y int);\nCREATE TABLE a (z int);\n"
    with pytest.raises(harness.ServerError, match=r'relation "a" already exists'):
        pg.load_sql(pgdb, script)
    assert pg.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database=pgdb) == [(0,)]
    assert pg.load_sql(pgdb, "CREATE TABLE a (x int); INSERT INTO a VALUES (1), (2);") == 2


# ---------------------------------------------------------------------------------------------
# RAGFlow's startup lock on PostgreSQL: the lock the backend will take (docs/postgres.md)

HOLDER_SQL = (
    "SELECT l.pid, l.granted, a.usename, host(a.client_addr), a.application_name "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1 ORDER BY l.granted DESC, l.pid"
)


def test_ragflows_advisory_lock_blocks_a_second_session(pg: postgres.PostgresServer, pgdb: str) -> None:
    """A session-level pg_advisory_lock on RAGFlow's key: RAGFlow's own pg_try_advisory_lock
    fails while it is held, a second blocking taker waits (bounded by lock_timeout), the holder is
    named by pg_locks + pg_stat_activity, a transaction's end does not release it, closing the
    session does; the key is per database."""
    key = RAGFLOW_LOCK_KEY
    holder = pg.connect(pgdb, application_name="ragflow-migrate/runner-a")
    ragflow = pg.connect(pgdb, application_name="ragflow-server")
    waiter = pg.connect(pgdb, application_name="ragflow-migrate/runner-b")
    try:
        assert holder.execute("SELECT pg_advisory_lock(%s)", (key,)).fetchone() == ("",)  # void
        holder_pid = holder.info.backend_pid
        # A transaction that ends (here: rolls back) keeps a session-level lock.
        with pytest.raises(psycopg.errors.DivisionByZero), holder.transaction():
            holder.execute("SELECT 1 / 0")
        # RAGFlow's own startup: a try-lock, refused.
        assert ragflow.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (False,)
        # A bounded blocking wait: lock_timeout ends it with 55P03.
        waiter.execute("SET lock_timeout = '300ms'")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            waiter.execute("SELECT pg_advisory_lock(%s)", (key,))
        assert 0.25 <= time.monotonic() - started < 5
        # The holder, and a waiter while it waits, as another session sees them.
        waiter.execute("SET lock_timeout = 0")
        taken = threading.Event()

        def wait_for_it() -> None:
            with contextlib.suppress(psycopg.Error):  # closed under it when the test fails
                waiter.execute("SELECT pg_advisory_lock(%s)", (key,))
                taken.set()

        thread = threading.Thread(target=wait_for_it, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        rows: list[tuple] = []
        while time.monotonic() < deadline:
            rows = pg.query(HOLDER_SQL, (key,), database=pgdb)
            if len(rows) == 2:
                break
            time.sleep(0.02)
        assert rows == [(holder_pid, True, "postgres", "127.0.0.1", "ragflow-migrate/runner-a"),
                        (waiter.info.backend_pid, False, "postgres", "127.0.0.1", "ragflow-migrate/runner-b")]
        assert not taken.wait(0.2)
        # The key is per database: the same key in another database is another lock.
        assert pg.query("SELECT pg_try_advisory_lock(%s)", (key,), database="postgres") == [(True,)]
        # Closing the holder's session releases the lock (a killed runner leaves nothing held).
        holder.close()
        assert taken.wait(10), "the waiter did not get the lock after the holder's session ended"
        thread.join(10)
        assert [row[4] for row in pg.query(HOLDER_SQL, (key,), database=pgdb)] == ["ragflow-migrate/runner-b"]
        assert waiter.execute("SELECT pg_advisory_unlock(%s)", (key,)).fetchone() == (True,)
        assert ragflow.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (True,)
    finally:
        for conn in (holder, ragflow, waiter):
            conn.close()


# ---------------------------------------------------------------------------------------------
# Lifecycle


def test_kill_and_restart_keep_committed_data(pg: postgres.PostgresServer, pgdb: str) -> None:
    pg.query("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)", database=pgdb)
    port = pg.port
    pg.kill()
    assert not pg.is_alive()
    pg.start()
    assert pg.port == port
    assert pg.query("SELECT x FROM kept", database=pgdb) == [(7,)]
    pg.restart()  # a clean (fast) stop, then start
    assert pg.query("SELECT x FROM kept", database=pgdb) == [(7,)]


def test_stop_ends_open_sessions(pg: postgres.PostgresServer) -> None:
    conn = pg.connect()
    try:
        started = time.monotonic()
        pg.stop()
        assert time.monotonic() - started < 10 and not pg.is_alive()
    finally:
        conn.close()
        pg.start()


def test_freeze_and_thaw(pg: postgres.PostgresServer) -> None:
    conn = pg.connect()
    try:
        pg.freeze()
        assert pg.is_frozen()
        with pytest.raises(psycopg.OperationalError):
            pg.connect(connect_timeout=1)
        pg.thaw()
        assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pg.ensure_running()
        conn.close()


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from servers import postgres
srv = postgres.start_postgres()
print(srv.pid, srv.basedir, flush=True)
sys.stdin.readline()     # "sigkill": the test kills us here; the parent-death signal must kill the server
sys.exit(0)              # "exit": no stop(), the harness's atexit hook must kill the server
"""


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_no_server_outlives_its_process(ending: str) -> None:
    harness.check_server_dies_with_its_process(_CHILD.format(tests=str(TESTS_DIR)), ending, "postgres")
