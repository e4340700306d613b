"""DB_TYPE and the PostgreSQL settings, read the RAGFlow way (POSTGRES_*, the `postgres:` section),
with the precedence, validation and secrecy of the MySQL ones; and the refusal, before any
connection, of a database type this release does not migrate."""

from __future__ import annotations

import json
import os
import select
import socket
from pathlib import Path

import pytest

from ragflow_migrate import cli
from ragflow_migrate.config import BACKENDS, SPECS, load_settings
from ragflow_migrate.errors import ConfigError, ExitCode

PG = {"DB_TYPE": "postgres", "POSTGRES_HOST": "pg.example"}


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_mysql_stays_the_default_and_says_so():
    s = load_settings({}, {"MYSQL_HOST": "h"})
    assert (s.db_type, s.sources["db_type"], s.pg_sslmode) == ("mysql", "default", None)
    assert s.describe()["db_type"] == "mysql" and s.describe()["tls"] == "off"


def test_postgres_defaults_follow_ragflow():
    s = load_settings({}, PG)
    assert (s.db_type, s.host, s.port, s.user, s.database) == ("postgres", "pg.example", 5432, "rag_flow", "rag_flow")
    assert s.password.reveal() == "" and s.pg_sslmode == "prefer"
    assert s.sources["host"] == "env POSTGRES_HOST" and s.sources["port"] == "default"
    assert s.sources["db_type"] == "env DB_TYPE"
    assert s.backend.label == "PostgreSQL"


def test_postgres_reads_only_its_own_variables():
    env = {**PG, "MYSQL_HOST": "mysql-host", "MYSQL_PORT": "3307", "MYSQL_USER": "root", "MYSQL_PASSWORD": "my-pw",
           "MYSQL_DBNAME": "mysql_db", "POSTGRES_PORT": "6432", "POSTGRES_USER": "ragflow",
           "POSTGRES_PASSWORD": "pg-pw", "POSTGRES_DBNAME": "ragflow_pg"}
    s = load_settings({}, env)
    assert (s.host, s.port, s.user, s.database) == ("pg.example", 6432, "ragflow", "ragflow_pg")
    assert s.password.reveal() == "pg-pw"
    assert {s.sources[k] for k in ("host", "port", "user", "password", "database")} == {
        "env POSTGRES_HOST", "env POSTGRES_PORT", "env POSTGRES_USER", "env POSTGRES_PASSWORD", "env POSTGRES_DBNAME"}
    # ...and MySQL only its own.
    m = load_settings({}, {**env, "DB_TYPE": "mysql"})
    assert (m.host, m.port, m.user, m.database, m.password.reveal()) == ("mysql-host", 3307, "root", "mysql_db", "my-pw")


def test_a_postgres_setting_with_mysql_needs_the_database_type():
    with pytest.raises(ConfigError) as err:
        load_settings({}, {"POSTGRES_HOST": "pg.example"})
    assert "no MySQL host configured" in err.value.message
    with pytest.raises(ConfigError) as err:
        load_settings({}, {"DB_TYPE": "postgres", "MYSQL_HOST": "h"})
    assert "no PostgreSQL host configured" in err.value.message
    assert "POSTGRES_HOST" in err.value.hint and "`postgres:`" in err.value.hint


@pytest.mark.parametrize(("flags", "env", "want", "source"), [
    ({}, {"DB_TYPE": "POSTGRES"}, "postgres", "env DB_TYPE"),
    ({}, {"DB_TYPE": "mysql", "RAGFLOW_MIGRATE_DB_TYPE": "postgres"}, "postgres", "env RAGFLOW_MIGRATE_DB_TYPE"),
    ({"db_type": "mysql"}, {"DB_TYPE": "postgres", "RAGFLOW_MIGRATE_DB_TYPE": "postgres"}, "mysql", "flag --db-type"),
    ({"db_type": "postgres"}, {}, "postgres", "flag --db-type"),
])
def test_database_type_precedence(flags, env, want, source):
    s = load_settings(flags, {"MYSQL_HOST": "h", "POSTGRES_HOST": "p", **env})
    assert (s.db_type, s.sources["db_type"]) == (want, source)


def test_database_type_from_the_tool_section(tmp_path):
    conf = write(tmp_path / "service_conf.yaml", "ragflow_migrate:\n  db_type: postgres\npostgres:\n  host: yaml-pg\n")
    s = load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf)})
    assert (s.db_type, s.host) == ("postgres", "yaml-pg")
    assert s.sources["db_type"] == f"{conf}:ragflow_migrate.db_type"
    # The variable beats the file, as everywhere.
    assert load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf), "DB_TYPE": "mysql", "MYSQL_HOST": "m"}).db_type == "mysql"


@pytest.mark.parametrize(("value", "words"), [
    ("gaussdb", "'gaussdb' is one of RAGFlow's database types that ragflow-migrate does not support; "
                "supported: mysql (MySQL, MariaDB) or postgres (PostgreSQL)"),
    ("oceanbase", "'oceanbase' is one of RAGFlow's database types"),
    ("postgresql", "'postgresql' is not a database type; supported: mysql (MySQL, MariaDB) or postgres"),
    ("", "'' is not a database type"),
])
def test_unsupported_database_types_are_named(value, words):
    with pytest.raises(ConfigError) as err:
        load_settings({}, {"MYSQL_HOST": "h", "DB_TYPE": value})
    assert err.value.message.startswith("env DB_TYPE: ") and words in err.value.message
    assert err.value.exit_code == ExitCode.CONFIG
    with pytest.raises(ConfigError) as err:
        load_settings({"db_type": value}, {"MYSQL_HOST": "h"})
    assert err.value.message.startswith("flag --db-type: ")


def test_precedence_flag_over_env_over_yaml_over_default(tmp_path):
    conf = write(tmp_path / "service_conf.yaml",
                 "postgres:\n  host: yaml-host\n  port: 5433\n  user: yaml-user\n  name: yaml_db\n"
                 "  password: yaml-pw\n  max_connections: 100\n  stale_timeout: 30\n")
    s = load_settings({"port": "5434"}, {"RAGFLOW_MIGRATE_CONFIG": str(conf), "DB_TYPE": "postgres",
                                         "POSTGRES_USER": "env-user"})
    assert s.host == "yaml-host" and s.sources["host"] == f"{conf}:postgres.host"
    assert s.port == 5434 and s.sources["port"] == "flag --port"
    assert s.user == "env-user" and s.sources["user"] == "env POSTGRES_USER"
    assert s.database == "yaml_db" and s.sources["database"] == f"{conf}:postgres.name"
    assert s.password.reveal() == "yaml-pw"


def test_local_service_conf_replaces_the_postgres_section(tmp_path):
    conf = write(tmp_path / "service_conf.yaml", "postgres:\n  host: base\n  port: 5499\n")
    write(tmp_path / "local.service_conf.yaml", "postgres:\n  host: local\n")
    s = load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf), "DB_TYPE": "postgres"})
    assert (s.host, s.port) == ("local", 5432)


def test_the_other_backends_section_is_not_read(tmp_path):
    """RAGFlow reads only the section DB_TYPE names; a stale or template section of the other
    backend (placeholders, unknown keys) is no error."""
    conf = write(tmp_path / "service_conf.yaml",
                 "mysql:\n  host: ${MYSQL_HOST:-mysql}\n  bogus: 1\npostgres:\n  host: pg\n")
    s = load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf), "DB_TYPE": "postgres"})
    assert s.host == "pg"
    conf = write(tmp_path / "service_conf.yaml", "mysql:\n  host: m\npostgres:\n  host: ${POSTGRES_HOST}\n  x: 1\n")
    assert load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf)}).host == "m"


@pytest.mark.parametrize(("yaml_text", "words"), [
    ("postgres:\n  port: abc\n", "postgres.port: 'abc' is not a port number"),
    ("postgres:\n  passwrd: x\n", "postgres.passwrd: unknown key (known keys: host, max_connections, name, "
                                  "password, port, stale_timeout, user)"),
    ("postgres:\n  max_allowed_packet: 1\n", "postgres.max_allowed_packet: unknown key"),
    ("postgres: 5\n", "postgres: expected a mapping"),
    ("postgres:\n  host: ${POSTGRES_HOST:-postgres}\n", "unexpanded placeholder '${POSTGRES_HOST:-postgres}'"),
    ("postgres:\n  name: ''\n", "postgres.name: the database name must not be empty"),
    ("postgres:\n  host: [a, b]\n", "postgres.host: expected a string"),
])
def test_bad_postgres_yaml_values_name_file_and_key(tmp_path, yaml_text, words):
    conf = write(tmp_path / "service_conf.yaml", yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf), "DB_TYPE": "postgres", "POSTGRES_HOST": "h"})
    assert words in err.value.message and str(conf) in err.value.message


def test_a_placeholder_hint_names_the_backends_variables(tmp_path):
    conf = write(tmp_path / "service_conf.yaml", "postgres:\n  password: '${POSTGRES_PASSWORD:-secret-default}'\n")
    with pytest.raises(ConfigError) as err:
        load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf), "DB_TYPE": "postgres", "POSTGRES_HOST": "h"})
    assert "secret-default" not in err.value.message  # never a part of a password
    assert "POSTGRES_*" in err.value.hint


@pytest.mark.parametrize(("env", "words"), [
    ({"POSTGRES_PORT": "54x2"}, "env POSTGRES_PORT: '54x2' is not a port number"),
    ({"POSTGRES_PORT": "0"}, "env POSTGRES_PORT: 0 is out of range"),
    ({"POSTGRES_HOST": ""}, "env POSTGRES_HOST: must not be empty"),
    ({"POSTGRES_HOST": "a b"}, "not a host name"),
    ({"POSTGRES_USER": " "}, "env POSTGRES_USER: must not be empty"),
    ({"POSTGRES_DBNAME": ""}, "env POSTGRES_DBNAME: the database name must not be empty"),
    ({"POSTGRES_DBNAME": "x" * 64}, "the database name is 64 bytes long; PostgreSQL allows 63"),
    ({"POSTGRES_DBNAME": "é" * 32}, "is 64 bytes long"),
    ({"POSTGRES_DBNAME": "a\x00b"}, "contains a NUL character"),
])
def test_bad_postgres_variables_name_the_variable(env, words):
    with pytest.raises(ConfigError) as err:
        load_settings({}, {**PG, **env})
    assert words in err.value.message


def test_postgres_database_names_follow_postgres_rules():
    """What MySQL refuses in a name, PostgreSQL takes (quoted); 63 bytes is the limit."""
    assert load_settings({}, {**PG, "POSTGRES_DBNAME": "rag.flow/prod"}).database == "rag.flow/prod"
    assert load_settings({}, {**PG, "POSTGRES_DBNAME": "x" * 63}).database == "x" * 63
    with pytest.raises(ConfigError, match="characters MySQL refuses"):
        load_settings({}, {"MYSQL_HOST": "h", "MYSQL_DBNAME": "rag.flow"})


def test_the_postgres_password_never_shows(tmp_path):
    s = load_settings({}, {**PG, "POSTGRES_PASSWORD": "hunter2-pg-long"})
    assert "hunter2-pg-long" not in repr(s) and "hunter2-pg-long" not in str(s.describe())
    assert s.describe()["password_set"] is True
    secret = write(tmp_path / "pw", "from-file-pg\n")
    s = load_settings({}, {**PG, "POSTGRES_PASSWORD": "env-pw", "RAGFLOW_MIGRATE_PASSWORD_FILE": str(secret)})
    assert s.password.reveal() == "from-file-pg" and s.sources["password"] == f"file {secret}"


# --- TLS ----------------------------------------------------------------------------------------


SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture
def ca_file():
    """Any PEM bundle will do for the configuration checks: the system's."""
    if not SYSTEM_BUNDLE.is_file():
        pytest.skip(f"no {SYSTEM_BUNDLE}")
    return str(SYSTEM_BUNDLE)


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require"])
def test_sslmodes_without_a_ca_bundle(mode):
    s = load_settings({}, {**PG, "RAGFLOW_MIGRATE_PG_SSLMODE": mode.upper()})
    assert (s.pg_sslmode, s.sources["pg_sslmode"]) == (mode, "env RAGFLOW_MIGRATE_PG_SSLMODE")
    assert s.describe()["tls"] == f"sslmode={mode}"


def test_a_ca_bundle_means_verify_full(ca_file):
    s = load_settings({}, {**PG, "RAGFLOW_MIGRATE_SSL_CA": ca_file})
    assert (s.pg_sslmode, s.ssl_ca) == ("verify-full", ca_file)
    for mode in ("verify-ca", "verify-full", "require"):
        assert load_settings({"pg_sslmode": mode, "ssl_ca": ca_file}, PG).pg_sslmode == mode


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_a_ca_bundle_with_an_unverified_mode_is_refused(ca_file, mode):
    with pytest.raises(ConfigError) as err:
        load_settings({"pg_sslmode": mode}, {**PG, "RAGFLOW_MIGRATE_SSL_CA": ca_file})
    assert err.value.message.startswith(f"flag --pg-sslmode: sslmode {mode} does not verify the server")
    assert "env RAGFLOW_MIGRATE_SSL_CA" in err.value.message


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_a_verifying_mode_needs_a_ca_bundle(mode):
    with pytest.raises(ConfigError) as err:
        load_settings({}, {**PG, "RAGFLOW_MIGRATE_PG_SSLMODE": mode})
    assert "needs the CA bundle" in err.value.message and "--ssl-ca" in err.value.hint


def test_bad_and_misplaced_sslmodes():
    with pytest.raises(ConfigError, match="'verify' is not one of disable, allow, prefer, require, verify-ca, "
                                          "verify-full"):
        load_settings({"pg_sslmode": "verify"}, PG)
    with pytest.raises(ConfigError) as err:
        load_settings({}, {"MYSQL_HOST": "h", "RAGFLOW_MIGRATE_PG_SSLMODE": "require"})
    assert "sslmode applies to PostgreSQL only; the database type is mysql (default)" in err.value.message


# --- the table ----------------------------------------------------------------------------------


def test_every_backend_names_every_connection_setting():
    connection = {name for name, spec in SPECS.items() if spec.connection}
    assert connection == {"host", "port", "user", "password", "database"}
    for backend in BACKENDS.values():
        assert set(backend.env) == connection
        assert set(backend.yaml.values()) == connection
    assert SPECS["host"].variables == ("MYSQL_HOST", "POSTGRES_HOST")
    assert SPECS["db_type"].variables == ("DB_TYPE", "RAGFLOW_MIGRATE_DB_TYPE")
    assert SPECS["pg_sslmode"].variables == ("RAGFLOW_MIGRATE_PG_SSLMODE",)


def test_connection_settings_are_not_tool_variables(tmp_path):
    """RAGFLOW_MIGRATE_HOST is nothing (as before); the tool section takes no connection key."""
    assert load_settings({}, {"MYSQL_HOST": "h", "RAGFLOW_MIGRATE_HOST": "x"}).host == "h"
    conf = write(tmp_path / "service_conf.yaml", "ragflow_migrate:\n  host: x\n")
    with pytest.raises(ConfigError, match="ragflow_migrate.host: unknown key"):
        load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf), "MYSQL_HOST": "h"})


# --- the refusal --------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["run"], ["wait"], ["status"], ["plan"], ["schema", "diff"]])
def test_postgres_verbs_go_to_the_postgres_server_only(argv, tmp_path, monkeypatch, capsys):
    """With DB_TYPE=postgres every verb talks to POSTGRES_HOST:POSTGRES_PORT (here: nothing listens,
    so it waits, then exits 3 naming PostgreSQL), never to the MYSQL_* server, and never prints the
    password."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    mysql_port = str(listener.getsockname()[1])
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    pg_port = str(closed.getsockname()[1])  # bound, never listening: connections are refused
    term = tmp_path / "termination-log"
    for name in [n for n in list(os.environ) if n.startswith(("MYSQL_", "POSTGRES_", "RAGFLOW_", "PG"))]:
        monkeypatch.delenv(name)
    for name, value in {"DB_TYPE": "postgres", "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": pg_port,
                        "POSTGRES_PASSWORD": "pg-secret-9", "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": mysql_port,
                        "RAGFLOW_MIGRATE_TERMINATION_LOG": str(term), "RAGFLOW_MIGRATE_LOG_FORMAT": "json",
                        "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "1"}.items():
        monkeypatch.setenv(name, value)
    try:
        code = cli.main(argv)
        readable, _, _ = select.select([listener], [], [], 0.2)
    finally:
        listener.close()
        closed.close()
    assert code == ExitCode.UNREACHABLE == 3
    assert not readable, "something connected to the MySQL server"
    out = capsys.readouterr()
    summary = json.loads(term.read_text())
    assert summary["outcome"] == "unreachable" and summary["exit_code"] == 3
    assert "PostgreSQL" in summary["error"] and pg_port in summary["error"]
    assert "pg-secret-9" not in out.out + out.err + term.read_text()
