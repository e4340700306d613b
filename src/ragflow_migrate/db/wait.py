"""Wait until MySQL answers: the shared policy (:mod:`ragflow_migrate.waiting`: tenacity, back-off
with jitter, one deadline) with MySQL's classification.

Only transient failures are retried (refused, DNS not ready, lost connection, too many
connections, server starting or shutting down). Access denied, missing privileges and a
missing database fail at once, with what to fix.
"""

from __future__ import annotations

import pymysql

from .. import events
from ..config import Settings
from ..errors import AuthError, ConfigError, UnreachableError
from ..waiting import wait_until_ready
from . import connect as db
from . import dialect, topology


def wait_for_database(settings: Settings, log, *, create_database: bool | None = None) -> dialect.ServerInfo:
    """Return the server's identity once it accepts a session on the configured database."""
    create = settings.create_database if create_database is None else create_database

    def attempt() -> dialect.ServerInfo:
        try:
            conn = db.connect(settings, database=True)
        except pymysql.err.OperationalError as exc:
            if dialect.error_code(exc) == dialect.UNKNOWN_DATABASE and create:
                return _create_database(settings, log)
            raise
        try:
            return topology.identify(conn)
        finally:
            db.close_quietly(conn)

    return wait_until_ready(settings, log, attempt, is_transient=dialect.is_transient_connect_error,
                            describe=dialect.describe_connect_error, classify=_classify,
                            driver_errors=(pymysql.err.MySQLError,))


def _classify(exc: BaseException, settings: Settings, elapsed: float, attempts: int) -> Exception:
    code, reason = dialect.describe_connect_error(exc)
    where = f"{settings.user}@{settings.host}:{settings.port}/{settings.database}"
    if code == dialect.UNKNOWN_DATABASE:
        return ConfigError(
            f"database {settings.database!r} does not exist on {settings.host}:{settings.port}",
            hint="create it (CHARACTER SET utf8mb4), check MYSQL_DBNAME, or pass --create-database",
            error_code=code,
        )
    if code in dialect.AUTH_ERRORS:
        return AuthError(
            f"MySQL refused {where}: {reason} (error {code})",
            hint=_auth_hint(code, settings),
            error_code=code,
        )
    if code == dialect.HOST_BLOCKED:
        return AuthError(
            f"MySQL blocks this host after too many failed connections (error {code})",
            hint="run FLUSH HOSTS on the server, or raise max_connect_errors",
            error_code=code,
        )
    if dialect.is_transient_connect_error(exc):
        return UnreachableError(
            f"MySQL at {settings.host}:{settings.port} did not answer within {settings.wait_timeout:g}s "
            f"({attempts} attempts; last: {reason})",
            hint="check MYSQL_HOST/MYSQL_PORT and that the server runs; raise --wait-timeout if it "
            "starts slowly",
            error_code=code,
            elapsed_s=round(elapsed, 2),
        )
    return UnreachableError(
        f"cannot connect to {settings.host}:{settings.port}: {reason}",
        hint="check MYSQL_HOST and MYSQL_PORT: does a MySQL server listen there (and not another service)?",
        error_code=code,
    )


def _auth_hint(code: int, settings: Settings) -> str:
    if code in (1045, 1698):
        return ("check MYSQL_USER and MYSQL_PASSWORD (or the password file); RAGFlow's Secret "
                "<release>-env-config holds the ones RAGFlow uses")
    if code == 1044:
        return (f"grant the migration user privileges on the database: GRANT SELECT, INSERT, UPDATE, "
                f"DELETE, CREATE, ALTER, DROP, CREATE TEMPORARY TABLES ON {dialect.quote(settings.database)}.* "
                f"TO '{settings.user}'@'%' (README: Privileges)")
    if code == 1130:
        return f"allow '{settings.user}' to connect from this host (CREATE USER ... @'%' or the pod network)"
    return "see the README's 'Privileges' section for what the tool needs"


def _create_database(settings: Settings, log) -> dialect.ServerInfo:
    conn = db.connect(settings, database=False)
    try:
        db.execute(
            conn,
            f"CREATE DATABASE IF NOT EXISTS {dialect.quote(settings.database)} "
            f"CHARACTER SET {dialect.CHARSET} COLLATE {dialect.DEFAULT_COLLATION}",
        )
        log.info(events.DB_CREATED, database=settings.database, charset=dialect.CHARSET,
                 collation=dialect.DEFAULT_COLLATION)
        return topology.identify(conn)
    finally:
        db.close_quietly(conn)
