"""Tests of the real-server harness itself (tests/servers/harness.py and the conftest fixtures)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pymysql
import pytest

try:
    from .servers import harness
except ImportError:
    from servers import harness

RELEASES = ("v0.20.0", "v0.21.0", "v0.22.0", "v0.23.0", "v0.24.0", "v0.25.0", "v0.25.6", "v0.26.0", "v0.26.4", "v0.27.0")
TABLE_COUNTS = dict(zip(RELEASES, (22, 23, 26, 31, 32, 32, 32, 37, 42, 38), strict=True))
UPGRADE_SOURCES = ("v0.20.0", "v0.24.0", "v0.25.0", "v0.26.0", "v0.26.4")
TESTS_DIR = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# No server needed


def test_split_sql_handles_quotes_and_comments() -> None:
    script = textwrap.dedent(
        """\
        -- a comment; with a semicolon
        CREATE TABLE `a;b` (x varchar(10) DEFAULT 'it''s; here', y text COMMENT "say \\"hi\\";");
        # hash comment;
        INSERT INTO t VALUES ('back\\\\slash;', 'esc\\';aped'), (1--1, 2);  -- trailing; comment
        /* block; comment */ SELECT 1;
        ;;
        SELECT 2
        """
    )
    assert harness.split_sql(script) == [
        "CREATE TABLE `a;b` (x varchar(10) DEFAULT 'it''s; here', y text COMMENT \"say \\\"hi\\\";\")",
        "INSERT INTO t VALUES ('back\\\\slash;', 'esc\\';aped'), (1--1, 2)",
        "/* block; comment */ SELECT 1",
        "SELECT 2",
    ]


def test_schema_files_are_where_the_harness_looks() -> None:
    for label in harness.LABELS.values():
        for release in RELEASES:
            assert harness.schema_path(label, release).is_file()
    upgrade = harness.schema_path("mysql-9.7", "v0.20.0", kind="upgrade")
    assert upgrade.name == "upgrade-v0.20.0-to-v0.27.0.sql" and upgrade.is_file()
    assert not harness.schema_path("mariadb-10.11", "v0.20.0", kind="upgrade").is_file()


def test_missing_provisioning_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(harness.ProvisioningError, match=r"tests/servers/provision\.sh"):
        harness.MySQLServer(chroot=tmp_path)


# ---------------------------------------------------------------------------------------------
# Both servers


def test_server_identity_and_settings(server: harness.Server) -> None:
    assert server.host == "127.0.0.1"
    assert server.label == harness.LABELS[server.flavor]
    assert server.schema_folder.name == server.label and server.schema_folder.is_dir()
    assert server.is_alive() and not server.is_frozen()
    assert server.datadir.is_dir()

    exe = os.readlink(f"/proc/{server.pid}/exe")
    assert exe.endswith("/mariadbd" if server.flavor == "mariadb" else "/mysqld"), exe
    if server.flavor == "mysql":  # the real mysqld, inside the chroot
        assert os.readlink(f"/proc/{server.pid}/root") == str(harness.MYSQL_CHROOT)
        assert server.datadir.is_relative_to(harness.MYSQL_CHROOT / "tmp")

    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION(), CURRENT_USER(), @@character_set_server, @@collation_server, "
                    "@@max_connections, @@skip_name_resolve, @@bind_address, @@port, @@performance_schema")
        version, user, charset, collation, max_conn, skip_resolve, bind, port, perf_schema = cur.fetchone()
        if server.flavor == "mariadb":
            assert re.match(r"10\.11\.\d+-MariaDB", version), version
            assert perf_schema == 0  # MariaDB's default
        else:
            assert re.match(r"9\.7\.\d+", version) and "MariaDB" not in version, version
            assert perf_schema == 1  # MySQL's default
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")  # PyMySQL chose TLS by itself
            assert cur.fetchone()[1]
        assert version == server.version
        assert user == "root@127.0.0.1"
        assert (charset, collation, max_conn, skip_resolve, bind, port) == (
            "utf8mb4", "utf8mb4_unicode_ci", 1000, 1, "127.0.0.1", server.port
        )
        cur.execute("SHOW GRANTS")
        grants = " ".join(row[0] for row in cur.fetchall())
        assert "ON *.* TO `root`@`127.0.0.1` WITH GRANT OPTION" in grants


def test_database_fixture(database, server: harness.Server) -> None:
    assert database.server is server
    assert len(database.name) <= 64
    rows = server.query(
        "SELECT default_character_set_name, default_collation_name FROM information_schema.schemata "
        "WHERE schema_name = %s", (database.name,))
    assert rows == [("utf8mb4", "utf8mb4_unicode_ci")]
    assert database.env == {
        "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(server.port), "MYSQL_USER": "root",
        "MYSQL_PASSWORD": "", "MYSQL_DBNAME": database.name,
        "RAGFLOW_MIGRATE_TERMINATION_LOG": str(database.tmp_path / "termination-log"),
    }
    with database.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone()[0] == database.name

    # The variables are enough for a subprocess (as the tool will be run) to reach the database.
    probe = (
        "import os, pymysql\n"
        "c = pymysql.connect(host=os.environ['MYSQL_HOST'], port=int(os.environ['MYSQL_PORT']),"
        " user=os.environ['MYSQL_USER'], password=os.environ['MYSQL_PASSWORD'],"
        " database=os.environ['MYSQL_DBNAME'])\n"
        "cur = c.cursor(); cur.execute('SELECT DATABASE()'); print(cur.fetchone()[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **database.env},
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == database.name


def _schema_snapshot(server: harness.Server, name: str) -> dict[str, list]:
    """The parts of fresh-*.json that a load must reproduce, read from information_schema."""
    tables = server.query(
        "SELECT table_name, engine, table_collation FROM information_schema.tables "
        "WHERE table_schema = %s ORDER BY 1", (name,))
    columns = server.query(
        "SELECT table_name, column_name, ordinal_position, column_type, is_nullable, column_default, extra, "
        "collation_name FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 3", (name,))
    stats = server.query(
        "SELECT table_name, index_name, non_unique, seq_in_index, column_name, sub_part, index_type "
        "FROM information_schema.statistics WHERE table_schema = %s ORDER BY 1, 2, 4", (name,))
    return {  # sorted in Python, as below: SQL's ORDER BY follows the collation
        "tables": sorted(list(r) for r in tables),
        "columns": sorted((list(r) for r in columns), key=lambda r: (r[0], r[2])),
        "statistics": sorted((list(r) for r in stats), key=lambda r: (r[0], r[1], r[3])),
    }


def _reference_snapshot(json_path: Path) -> dict[str, list]:
    ref = json.loads(json_path.read_text())
    return {
        "tables": sorted([t["table"], t["engine"], t["table_collation"]] for t in ref["tables"]),
        "columns": sorted(([c["table"], c["column"], c["ordinal"], c["column_type"], c["is_nullable"],
                            c["column_default"], c["extra"], c["collation"]] for c in ref["columns"]),
                          key=lambda r: (r[0], r[2])),
        "statistics": sorted(([s["table"], s["index_name"], s["non_unique"], s["seq"], s["column"],
                               s["sub_part"], s["index_type"]] for s in ref["statistics"]),
                             key=lambda r: (r[0], r[1], r[3])),
    }


@pytest.mark.parametrize("release", RELEASES)
def test_fresh_schema_loads(database, ragflow_schema, release: str) -> None:
    path = ragflow_schema(release)
    assert database.load_sql(path) == TABLE_COUNTS[release]
    assert len(database.tables()) == TABLE_COUNTS[release]
    # Loaded exactly: tables, columns and indexes equal what RAGFlow's own code made on this server.
    loaded = _schema_snapshot(database.server, database.name)
    expected = _reference_snapshot(path.with_suffix(".json"))
    for part in ("tables", "columns", "statistics"):
        assert loaded[part] == expected[part], part


@pytest.mark.parametrize("source", UPGRADE_SOURCES)
def test_upgrade_schema_loads(database, ragflow_schema, source: str) -> None:
    path = ragflow_schema(source, kind="upgrade")  # MySQL's dump on MariaDB too (no MariaDB file kept)
    header = re.search(r"; (\d+) tables\.", path.read_text().split("\n", 3)[1])
    count = int(header.group(1))
    assert database.load_sql(path) == count
    if path.parent.name == database.server.label:  # loaded exactly as RAGFlow's code made it on this server
        loaded = _schema_snapshot(database.server, database.name)
        expected = _reference_snapshot(path.with_suffix(".json"))
        for part in ("tables", "columns", "statistics"):
            assert loaded[part] == expected[part], part
        return
    # another server's dump: the same schema once rendering is normalised (int(11) ~ int, …)
    from ragflow_migrate.schema.diff import compare
    from ragflow_migrate.schema.introspect import live_snapshot
    from ragflow_migrate.schema.snapshot import from_reference_json

    conn = database.connect()
    try:
        live = live_snapshot(conn, database.name, mariadb=database.server.flavor == "mariadb")
    finally:
        conn.close()
    assert compare(from_reference_json(json.loads(path.with_suffix(".json").read_text())), live) == []


def test_load_sql_reports_the_failing_statement(database) -> None:
    script = "CREATE TABLE a (id int PRIMARY KEY);\n-- comment\nINSERT INTO a VALUES (1), (2);\nINSERT INTO nope VALUES (1);\n"
    with pytest.raises(harness.ServerError, match=r"(?s)statement 3 of 3 failed.*INSERT INTO nope"):
        database.load_sql(script)
    assert database.query("SELECT COUNT(*) FROM a") == [(2,)]


def test_kill_and_restart_keep_committed_data(server: harness.Server, database) -> None:
    database.load_sql("CREATE TABLE kept (id int PRIMARY KEY, v varchar(20)); "
                      "INSERT INTO kept VALUES (1, 'committed'), (2, 'ünïcode ✓')")
    open_tx = database.connect(autocommit=False)
    with open_tx.cursor() as cur:
        cur.execute("INSERT INTO kept VALUES (3, 'never committed')")
    port, old_pid = server.port, server.pid
    log_offset = server.error_log.stat().st_size

    server.kill()
    assert not server.is_alive()
    assert harness._proc_state(old_pid) is None  # the real server process is gone
    with pytest.raises(pymysql.err.OperationalError):
        server.connect(connect_timeout=2)
    open_tx.close()

    server.restart()  # crash recovery on the same port and datadir
    assert server.is_alive() and server.port == port and server.pid != old_pid
    assert database.query("SELECT id, v FROM kept ORDER BY id") == [(1, "committed"), (2, "ünïcode ✓")]
    assert b"crash recovery" in server.error_log.read_bytes()[log_offset:]


def test_clean_stop_and_start(server: harness.Server, database) -> None:
    database.load_sql("CREATE TABLE t (id int); INSERT INTO t VALUES (7)")
    port = server.port
    server.stop()
    assert not server.is_alive()
    server.start()
    assert server.port == port
    assert database.query("SELECT id FROM t") == [(7,)]


def test_freeze_and_thaw(server: harness.Server, database) -> None:
    conn = database.connect(read_timeout=0.5)
    try:
        server.freeze()
        assert server.is_alive() and server.is_frozen()
        with pytest.raises(pymysql.err.OperationalError):
            server.connect(connect_timeout=0.5, read_timeout=0.5)  # the kernel accepts TCP; no handshake comes
        with pytest.raises(pymysql.err.OperationalError), conn.cursor() as cur:
            cur.execute("SELECT 1")  # read_timeout
    finally:
        conn.close()
        server.thaw()
    assert not server.is_frozen()
    assert database.query("SELECT 1") == [(1,)]


def test_created_user_with_password_connects(server: harness.Server, database) -> None:
    name = f"u_{database.name[-8:]}"
    account = server.create_user(name, "S3cret pass'word", [f"ALL PRIVILEGES ON `{database.name}`.*"])
    try:
        with server.connect(database.name, user=name, password="S3cret pass'word") as conn, conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER(), DATABASE()")
            assert cur.fetchone() == (f"{name}@%", database.name)
            cur.execute("CREATE TABLE mine (id int)")
            with pytest.raises(pymysql.err.OperationalError, match="denied"):
                cur.execute("SELECT * FROM mysql.user")
        with pytest.raises(pymysql.err.OperationalError) as denied:
            server.connect(user=name, password="wrong")
        assert denied.value.args[0] == 1045
        plugin = server.query("SELECT plugin FROM mysql.user WHERE user = %s", (name,))[0][0]
        assert plugin == ("mysql_native_password" if server.flavor == "mariadb" else "caching_sha2_password")
        # The variables of env() with a user and password work too.
        env = server.env(database.name, user=name, password="S3cret pass'word")
        assert env["MYSQL_USER"] == name and env["MYSQL_PASSWORD"] == "S3cret pass'word"
    finally:
        server.query(f"DROP USER {account}")


# ---------------------------------------------------------------------------------------------
# Stray servers: a test process that dies (or just exits) takes its servers with it.

_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from servers import harness
srv = harness.start_server({flavor!r})
print(srv.pid, srv.basedir, flush=True)
sys.stdin.readline()     # "sigkill": the test kills us here; PR_SET_PDEATHSIG must kill the server
sys.exit(0)              # "exit": no stop(), the atexit hook must kill the server
"""


@pytest.mark.integration
@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_no_server_outlives_its_process(selected_servers: list[str], ending: str) -> None:
    # The mechanisms do not depend on the flavor; "sigkill" prefers MySQL (PDEATHSIG must survive
    # the exec of `chroot`), "exit" prefers MariaDB (faster).
    preferred = ["mysql", "mariadb"] if ending == "sigkill" else ["mariadb", "mysql"]
    flavor = next(f for f in preferred if f in selected_servers)
    harness.check_server_dies_with_its_process(_CHILD.format(tests=str(TESTS_DIR), flavor=flavor), ending,
                                               f"{flavor} server")
