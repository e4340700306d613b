"""Wait until MySQL answers: tenacity, exponential back-off with jitter, one overall deadline.

Only transient failures are retried (refused, DNS not ready, lost connection, too many
connections, server starting or shutting down). Access denied, missing privileges and a
missing database fail at once, with what to fix.
"""

from __future__ import annotations

import time

import pymysql
import tenacity

from .. import events, interrupt
from ..config import Settings
from ..errors import AuthError, ConfigError, UnreachableError
from . import connect as db
from . import dialect, topology


def wait_for_database(settings: Settings, log, *, create_database: bool | None = None) -> dialect.ServerInfo:
    """Return the server's identity once it accepts a session on the configured database."""
    create = settings.create_database if create_database is None else create_database
    started = time.monotonic()
    attempts = 0

    def attempt() -> dialect.ServerInfo:
        nonlocal attempts
        attempts += 1
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

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        code, reason = dialect.describe_connect_error(exc) if exc else (None, "unknown")
        elapsed = time.monotonic() - started
        log.warning(
            events.DB_WAIT_ATTEMPT,
            attempt=state.attempt_number,
            reason=reason,
            error_code=code,
            elapsed_s=round(elapsed, 2),
            retry_in_s=round(state.upcoming_sleep, 2),
            deadline_s=settings.wait_timeout,
            host=settings.host,
            port=settings.port,
        )

    def remaining_wait(state: tenacity.RetryCallState) -> float:
        # Never sleep past the deadline: the last attempt happens right at it.
        backoff = tenacity.wait_random_exponential(multiplier=0.25, max=10)(state)
        left = settings.wait_timeout - (time.monotonic() - started)
        return max(0.0, min(backoff, left))

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(dialect.is_transient_connect_error),
        stop=tenacity.stop_after_delay(settings.wait_timeout),
        wait=remaining_wait,
        sleep=interrupt.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        info = retrying(attempt)
    except pymysql.err.MySQLError as exc:
        raise _classify(exc, settings, time.monotonic() - started, attempts) from None
    except OSError as exc:
        raise _classify(exc, settings, time.monotonic() - started, attempts) from None
    log.info(
        events.DB_READY,
        server=info.flavor,
        server_version=info.version_text,
        topology=info.topology.as_fields(),
        attempts=attempts,
        elapsed_s=round(time.monotonic() - started, 3),
    )
    return info


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
