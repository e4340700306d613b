"""Wait until PostgreSQL answers: the shared policy (:mod:`ragflow_migrate.waiting`: tenacity,
back-off with jitter, one deadline) with PostgreSQL's classification.

Only transient failures are retried: refused, DNS not ready, the server starting up, shutting
down or recovering, too many connections, and any message not recognised (:mod:`.errors` says
why). A wrong password, a missing pg_hba.conf entry, a missing database or a TLS mismatch fail at
once, with what to fix named in RAGFlow's own variables (``POSTGRES_*``).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from ... import events
from ...config import Settings
from ...errors import AuthError, ConfigError, UnreachableError
from ...waiting import wait_until_ready
from . import errors
from .connect import close_quietly, connect, execute, query
from .server import PgServerInfo, identify

ENCODING = "UTF8"


def wait_for_database(settings: Settings, log, *, create_database: bool | None = None) -> PgServerInfo:
    """Return the server's identity once it accepts a session on the configured database."""
    create = settings.create_database if create_database is None else create_database

    def attempt() -> PgServerInfo:
        try:
            conn = connect(settings, database=True)
        except psycopg.OperationalError as exc:
            if create and errors.classify_connect_error(exc) == "no_database":
                return _create_database(settings, log)
            raise
        try:
            return identify(conn)
        finally:
            close_quietly(conn)

    return wait_until_ready(settings, log, attempt, is_transient=errors.is_transient_connect_error,
                            describe=errors.describe_connect_error, classify=_classify,
                            driver_errors=(psycopg.Error,))


def _classify(exc: BaseException, settings: Settings, elapsed: float, attempts: int) -> Exception:
    kind = errors.classify_connect_error(exc)
    code, reason = errors.describe_connect_error(exc)
    server = f"{settings.host}:{settings.port}"
    if kind == "no_database":
        return ConfigError(
            f"database {settings.database!r} does not exist on {server}",
            hint="create it (ENCODING 'UTF8'), check POSTGRES_DBNAME, or pass --create-database",
            error_code=code,
        )
    if kind == "auth":
        return AuthError(
            f"PostgreSQL refused {settings.user}@{server}/{settings.database}: {reason}"
            + (f" (SQLSTATE {code})" if code else ""),
            hint=_auth_hint(exc, settings),
            error_code=code,
        )
    if kind == "config":
        return ConfigError(
            f"cannot connect to PostgreSQL at {server}: {errors.error_text(exc)}",
            hint="check --ssl-ca and --pg-sslmode: the CA bundle must have signed the server's certificate "
            "(verify-full also checks the host name against POSTGRES_HOST); unset PGSERVICE",
            error_code=code,
        )
    if kind == "transient":
        return UnreachableError(
            f"PostgreSQL at {server} did not answer within {settings.wait_timeout:g}s "
            f"({attempts} attempts; last: {errors.error_text(exc)})",
            hint="check POSTGRES_HOST/POSTGRES_PORT and that the server runs; raise --wait-timeout if it "
            "starts slowly. A server whose messages are not in English hides a wrong password or "
            "database behind this: read the last message",
            error_code=code,
            elapsed_s=round(elapsed, 2),
        )
    return UnreachableError(
        f"cannot connect to {server}: {reason}",
        hint="check POSTGRES_HOST and POSTGRES_PORT: does a PostgreSQL server listen there (and not "
        "another service)?",
        error_code=code,
    )


def _auth_hint(exc: BaseException, settings: Settings) -> str:
    text = str(exc)
    if errors.sqlstate(exc) == errors.INSUFFICIENT_PRIVILEGE and "create database" in text.lower():
        return (f'create the database as an administrator, or allow this role to: ALTER ROLE "{settings.user}" '
                "CREATEDB")
    if "pg_hba.conf" in text:
        return (f"allow this client in the server's pg_hba.conf (host {settings.database} {settings.user} "
                "<pod network> scram-sha-256), then reload PostgreSQL")
    if "permission denied for database" in text:
        return f'GRANT CONNECT ON DATABASE "{settings.database}" TO "{settings.user}"'
    return ("check POSTGRES_USER and POSTGRES_PASSWORD (or the password file); RAGFlow's Secret "
            "<release>-env-config holds the ones RAGFlow uses")


def _create_database(settings: Settings, log) -> PgServerInfo:
    """CREATE DATABASE from the ``postgres`` database. Another runner creating it at the same
    moment is no failure: either statement may lose (42P04, or 23505 on pg_database's unique
    index when both are in flight)."""
    conn = connect(settings, database=False)
    try:
        try:
            execute(conn, sql.SQL("CREATE DATABASE {} ENCODING {} TEMPLATE template0").format(
                sql.Identifier(settings.database), sql.Literal(ENCODING)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            pass
        else:
            collation = query(conn, "SELECT datcollate FROM pg_database WHERE datname = %s", (settings.database,))
            log.info(events.DB_CREATED, database=settings.database, charset=ENCODING,
                     collation=collation[0][0] if collation else None)
        return identify(conn)
    finally:
        close_quietly(conn)
