"""Opening and waiting on PostgreSQL, unhappy paths first: what fails at once (credentials, a
missing database), what is retried until the deadline (a stopped or frozen server), what the
environment cannot change (libpq's PG* variables), and how errors inside a step are classified."""

from __future__ import annotations

import dataclasses
import threading
import time

import psycopg
import pytest
from structlog.testing import capture_logs

from ragflow_migrate import events, logs
from ragflow_migrate.backends.postgres import errors as pg_errors
from ragflow_migrate.backends.postgres import privileges
from ragflow_migrate.backends.postgres.connect import connect, query_one
from ragflow_migrate.backends.postgres.server import identify, version_tuple
from ragflow_migrate.backends.postgres.wait import wait_for_database
from ragflow_migrate.config import Secret
from ragflow_migrate.errors import AuthError, ConfigError, ExitCode, StepFailedError, UnreachableError

pytestmark = [pytest.mark.integration]  # one PostgreSQL per xdist worker (conftest.py)


def _with(settings, **changes):
    if "password" in changes:
        changes["password"] = Secret(changes["password"])
    return dataclasses.replace(settings, **changes)


@pytest.fixture
def role(pg_server, pg_database):
    """A login role ``alice_<db>`` with password "right" and CONNECT on the test database."""
    name = f"alice_{pg_database}"
    pg_server.create_user(name, "right", [f'CONNECT ON DATABASE "{pg_database}" TO {{user}}'])
    yield name
    pg_server.query(f'DROP OWNED BY "{name}"', database=pg_database)
    pg_server.drop_user(name)


def _wait_events(captured):
    return [e for e in captured if e["event"] == events.DB_WAIT_ATTEMPT]


# --- fails at once -------------------------------------------------------------------------------


def test_wrong_password_is_an_auth_error_at_once(pg_settings, role):
    settings = _with(pg_settings, user=role, password="wrong", wait_timeout=30)
    started = time.monotonic()
    with capture_logs() as captured, pytest.raises(AuthError) as err:
        wait_for_database(settings, logs.get_logger())
    assert time.monotonic() - started < 5
    assert err.value.exit_code == ExitCode.AUTH
    assert "password authentication failed" in err.value.message
    assert "POSTGRES_PASSWORD" in err.value.hint
    assert not _wait_events(captured)


def test_pg_variables_do_not_supply_the_password(pg_settings, role, tmp_path, monkeypatch):
    """An empty password stays empty: neither PGPASSWORD nor a password file fills it in."""
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:*:right\n")
    passfile.chmod(0o600)
    with monkeypatch.context() as env, pytest.raises(AuthError) as err:
        env.setenv("PGPASSWORD", "right")
        env.setenv("PGPASSFILE", str(passfile))
        wait_for_database(_with(pg_settings, user=role, password="", wait_timeout=30), logs.get_logger())
    assert "asks for a password and none is set" in err.value.message


def test_pg_variables_do_not_change_the_session(pg_settings, role, monkeypatch):
    # Each would break or bend the session if libpq read it: a 1 ms statement timeout, TLS
    # required from a server without TLS, a read-only target, another application name.
    settings = _with(pg_settings, user=role, password="right", instance="pod-x")
    with monkeypatch.context() as env:  # over before the fixtures' own connections tear down
        env.setenv("PGOPTIONS", "-c statement_timeout=1")
        env.setenv("PGSSLMODE", "require")
        env.setenv("PGTARGETSESSIONATTRS", "read-only")
        env.setenv("PGAPPNAME", "not-us")
        env.setenv("PGDATABASE", "postgres")
        conn = connect(settings)
    try:
        row = query_one(conn, "SELECT current_setting('statement_timeout'), current_setting('application_name'), "
                              "current_database(), current_setting('TimeZone')")
        assert row == ("0", "ragflow-migrate/pod-x", settings.database, "UTC")
    finally:
        conn.close()


def test_missing_database_is_a_config_error_at_once(pg_settings):
    settings = _with(pg_settings, database=f"{pg_settings.database}_missing", wait_timeout=30)
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        wait_for_database(settings, logs.get_logger())
    assert time.monotonic() - started < 5
    assert err.value.exit_code == ExitCode.CONFIG
    assert "does not exist" in err.value.message and "POSTGRES_DBNAME" in err.value.hint


def test_create_database_twice_at_once(pg_server, pg_settings):
    """Two runners with --create-database: one creates it, the other finds it; both go on."""
    name = f"{pg_settings.database}_created"
    settings = _with(pg_settings, database=name)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(wait_for_database(settings, logs.get_logger(), create_database=True))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    try:
        with capture_logs() as captured:
            threads = [threading.Thread(target=run) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        assert [type(r).__name__ for r in results] == ["PgServerInfo", "PgServerInfo"]
        created = [e for e in captured if e["event"] == events.DB_CREATED]
        assert 1 <= len(created) <= 2 and created[0]["charset"] == "UTF8"
        assert pg_server.query("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = %s",
                               (name,)) == [("UTF8",)]
        wait_for_database(settings, logs.get_logger())  # now it simply exists
    finally:
        pg_server.drop_database(name)


def test_create_database_without_createdb_names_the_grant(pg_settings, role):
    settings = _with(pg_settings, user=role, password="right", database=f"{pg_settings.database}_nope")
    with pytest.raises(AuthError) as err:
        wait_for_database(settings, logs.get_logger(), create_database=True)
    assert "CREATEDB" in err.value.hint and err.value.details["error_code"] == "42501"


def test_tls_required_from_a_server_without_tls_is_a_config_error(pg_settings):
    with pytest.raises(ConfigError) as err:
        wait_for_database(_with(pg_settings, pg_sslmode="require", wait_timeout=30), logs.get_logger())
    assert "SSL" in err.value.message and "--pg-sslmode" in err.value.hint


# --- retried until the deadline ---------------------------------------------------------------------


def test_stopped_server_is_retried_then_unreachable(pg_server, pg_settings):
    pg_server.stop()
    try:
        started = time.monotonic()
        with capture_logs() as captured, pytest.raises(UnreachableError) as err:
            wait_for_database(_with(pg_settings, wait_timeout=1.5), logs.get_logger())
        assert 1.4 <= time.monotonic() - started < 5
    finally:
        pg_server.start()
    assert err.value.exit_code == ExitCode.UNREACHABLE
    assert "Connection refused" in err.value.message and "POSTGRES_HOST" in err.value.hint
    attempts = _wait_events(captured)
    assert len(attempts) >= 2 and attempts[0]["reason"] == "connection refused"


def test_a_server_that_starts_during_the_wait(pg_server, pg_settings):
    pg_server.stop()
    starter = threading.Timer(0.5, pg_server.start)
    starter.start()
    try:
        with capture_logs() as captured:
            info = wait_for_database(_with(pg_settings, wait_timeout=30), logs.get_logger())
    finally:
        starter.join()
        pg_server.ensure_running()
    assert info.flavor == "postgresql"
    ready = [e for e in captured if e["event"] == events.DB_READY]
    assert ready[0]["attempts"] >= 2 and ready[0]["topology"] == {"kind": "standalone"}
    assert _wait_events(captured)


def test_frozen_server_is_bounded_by_connect_timeout(pg_server, pg_settings):
    pg_server.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(UnreachableError) as err:
            wait_for_database(_with(pg_settings, connect_timeout=2, wait_timeout=1), logs.get_logger())
        assert time.monotonic() - started < 5
    finally:
        pg_server.thaw()
    assert "timeout" in err.value.message


def test_an_unrecognised_message_is_transient():
    """Servers localise their startup messages: what is not recognised is retried, never taken
    for a wrong password (and the message itself ends up in the final error)."""
    german = psycopg.OperationalError('connection failed: connection to server at "10.0.0.5", port 5432 '
                                      'failed: FATAL:  Passwort-Authentifizierung für Benutzer »x« fehlgeschlagen')
    assert pg_errors.classify_connect_error(german) == "transient"
    assert pg_errors.describe_connect_error(german) == (None, "Passwort-Authentifizierung für Benutzer »x« "
                                                              "fehlgeschlagen")


# --- the session and the server -----------------------------------------------------------------------


@pytest.mark.parametrize(("instance", "published"), [
    ("ragflow-migrate-7f9c-abcde", "ragflow-migrate/ragflow-migrate-7f9c-abcde"),
    ("p" * 64, "ragflow-migrate/" + "p" * 47),  # cut to 63 bytes
    ("pod-é", "ragflow-migrate/pod-?"),  # the server keeps printable ASCII only
])
def test_application_name_is_published_as_sent(pg_server, pg_settings, instance, published):
    conn = connect(_with(pg_settings, instance=instance))
    try:
        (name,), = pg_server.query("SELECT application_name FROM pg_stat_activity WHERE pid = %s",
                                   (conn.info.backend_pid,))
        assert name == published == query_one(conn, "SELECT current_setting('application_name')")[0]
    finally:
        conn.close()


def test_identify(pg_server, pg_settings):
    conn = connect(pg_settings)
    try:
        info = identify(conn)
    finally:
        conn.close()
    assert info.version[0] == 15 and info.label.startswith("PostgreSQL 15.")
    assert not info.is_mariadb and info.session_tuning_sql() is None
    assert info.topology.as_fields() == {"kind": "standalone"}
    assert version_tuple(90624) == (9, 6, 24) and version_tuple(150020) == (15, 20)

    pg_server.query(f'ALTER DATABASE "{pg_settings.database}" SET default_transaction_read_only = on')
    conn = connect(pg_settings)
    try:
        assert identify(conn).topology.as_fields() == {"kind": "standalone", "read_only": True}
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as err:
            conn.execute("CREATE TABLE t (id int)")
    finally:
        conn.close()
    failure = pg_errors.classify_error(err.value, "v1")
    assert isinstance(failure, StepFailedError) and "read-only" in failure.message


# --- errors inside a step, privileges --------------------------------------------------------------------


def test_not_owning_the_tables_is_an_auth_error_naming_ownership(pg_server, pg_settings, role):
    pg_server.query("CREATE TABLE document (id int)", database=pg_settings.database)
    pg_server.query(f'GRANT CREATE ON SCHEMA public TO "{role}"', database=pg_settings.database)
    conn = connect(_with(pg_settings, user=role, password="right"))
    try:
        assert privileges.missing(conn) == [f'GRANT "postgres" TO "{role}"  -- owner of document; or, per table: '
                                            f'ALTER TABLE public.<table> OWNER TO "{role}"']
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
            conn.execute("ALTER TABLE document ADD COLUMN x int")
        with pytest.raises(psycopg.errors.UndefinedTable) as missing_table:
            conn.execute("SELECT * FROM nothing_here")
    finally:
        conn.close()
    failure = pg_errors.classify_error(err.value, "v1")
    assert isinstance(failure, AuthError) and failure.exit_code == ExitCode.AUTH
    assert "ownership" in failure.hint
    assert pg_errors.is_missing_table(missing_table.value) and not pg_errors.is_missing_table(err.value)


def test_privileges_of_the_owner_and_of_a_bare_role(pg_settings, role):
    conn = connect(pg_settings)
    try:
        assert privileges.missing(conn) == []
    finally:
        conn.close()
    conn = connect(_with(pg_settings, user=role, password="right"))
    try:
        assert privileges.missing(conn) == [f'GRANT CREATE ON SCHEMA public TO "{role}"']
    finally:
        conn.close()


def test_a_terminated_session_is_a_lost_connection(pg_server, pg_settings):
    conn = connect(pg_settings)
    try:
        pg_server.query("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError) as err:
            conn.execute("SELECT 1")
    finally:
        conn.close()
    failure = pg_errors.classify_error(err.value, "v1")
    assert isinstance(failure, StepFailedError) and "lost the connection" in failure.message
    assert pg_errors.classify_error(ValueError("not a database error"), "v1") is None
