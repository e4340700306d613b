"""Which PostgreSQL errors are transient, which mean "fix your credentials or configuration", and
which failure class (exit code) an error inside a step maps to.

Two worlds:

* **A failed connect has no SQLSTATE.** libpq hands psycopg only the message
  (``psycopg.OperationalError`` with ``sqlstate=None``), so it is classified by its text: libpq's
  own (English) and the server's startup FATAL, which the server writes in its ``lc_messages``
  (a client cannot choose that before it is authenticated). A message that is not recognised is
  therefore **transient**: a wrong password on a server with German messages ends as "unreachable"
  after the wait deadline, with the server's last message in the error, rather than a server
  that is still starting being taken for a fatal failure.
* **After connect**, errors carry SQLSTATEs
  (https://www.postgresql.org/docs/15/errcodes-appendix.html) and psycopg raises one class per
  SQLSTATE.
"""

from __future__ import annotations

import re
from typing import Literal

import psycopg

from ...errors import AuthError, ConfigError, MigrateError, StepFailedError

Kind = Literal["transient", "auth", "no_database", "config", "fatal"]

INSUFFICIENT_PRIVILEGE = "42501"
READ_ONLY_TRANSACTION = "25006"
LOCK_NOT_AVAILABLE = "55P03"
INVALID_CATALOG_NAME = "3D000"  # database does not exist
UNDEFINED_TABLE = "42P01"
DUPLICATE_DATABASE = "42P04"

#: SQLSTATEs after which another attempt (a new session) may succeed.
TRANSIENT_SQLSTATES = {
    "57P01": "terminated by an administrator",
    "57P02": "server crashed",
    "57P03": "the server cannot accept connections now",
    "57P05": "the session was ended by idle_session_timeout",
    "53300": "too many connections",
}
#: Class 08: connection exceptions.
CONNECTION_CLASS = "08"
#: Class 28: invalid authorization specification (28P01 wrong password, 28000 pg_hba).
AUTH_CLASS = "28"
#: Class 23: integrity constraint violation (23505: a unique index over duplicate values).
INTEGRITY_CLASS = "23"

# Connect-time messages, first match wins: (pattern, kind, reason). Auth, database and TLS come
# before the transient ones because libpq concatenates one message per address it tried
# (``localhost``: ::1 refused, then 127.0.0.1 wrong password).
_CONNECT_MESSAGES: tuple[tuple[re.Pattern[str], Kind, str], ...] = tuple(
    (re.compile(pattern, re.I), kind, reason) for pattern, kind, reason in (
        (r"password authentication failed", "auth", "password authentication failed"),
        (r"no password supplied", "auth", "the server asks for a password and none is set"),
        (r"no pg_hba\.conf entry", "auth", "no pg_hba.conf entry allows this client"),
        (r"role \".*\" does not exist", "auth", "the role does not exist"),
        (r"is not permitted to log in", "auth", "the role may not log in"),
        (r"permission denied for database", "auth", "no CONNECT privilege on the database"),
        (r"(ident|peer|ldap|radius|cert) authentication failed", "auth", "authentication failed"),
        (r"database \".*\" does not exist", "no_database", "the database does not exist"),
        (r"certificate verify failed|does not match host name|root certificate file|"
         r"certificate present, but not private key|server does not support SSL", "config",
         "TLS: the server's certificate or TLS support does not match --ssl-ca / --pg-sslmode"),
        (r"definition of service", "config", "PGSERVICE names a service that is not defined"),
        (r"the database system is starting up", "transient", "the server is starting up"),
        (r"the database system is shutting down", "transient", "the server is shutting down"),
        (r"the database system is in recovery mode", "transient", "the server is recovering"),
        (r"the database system is not (yet )?accepting connections", "transient",
         "the server does not accept connections yet"),
        (r"too many (connections|clients)|remaining connection slots are reserved", "transient",
         "too many connections"),
        (r"connection refused", "transient", "connection refused"),
        (r"could not translate host name|failed to resolve host|name or service not known|"
         r"temporary failure in name resolution", "transient", "unknown host (DNS not ready?)"),
        (r"timeout expired|timed out", "transient", "connection timed out"),
        (r"server closed the connection unexpectedly|connection reset|SSL SYSCALL error|EOF detected",
         "transient", "the server closed the connection"),
        (r"no route to host|network is unreachable", "transient", "no route to host"),
    )
)

_ATTEMPT = re.compile(r"connection to server (?:at|on) [^\n]*? failed: ")


def sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) if isinstance(exc, psycopg.Error) else None


def error_text(exc: BaseException) -> str:
    """The server's or libpq's message, without psycopg's "connection to server … failed:" and
    the severity; for a multi-address attempt, the last address's message."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return primary
    text = str(exc)
    text = _ATTEMPT.split(text)[-1].strip()
    text = re.sub(r"^(FATAL|ERROR):\s+", "", text)
    return text.splitlines()[0][:200] if text else type(exc).__name__


def classify_connect_error(exc: BaseException) -> Kind:
    """What a failed attempt to open a session means for the wait loop."""
    code = sqlstate(exc)
    if code:
        if code in TRANSIENT_SQLSTATES or code.startswith(CONNECTION_CLASS):
            return "transient"
        if code.startswith(AUTH_CLASS) or code == INSUFFICIENT_PRIVILEGE:
            return "auth"
        if code == INVALID_CATALOG_NAME:
            return "no_database"
        return "fatal"
    if isinstance(exc, psycopg.OperationalError):
        text = str(exc)
        for pattern, kind, _reason in _CONNECT_MESSAGES:
            if pattern.search(text):
                return kind
        return "transient"  # localised or new text: see the module's docstring
    # Socket errors outside libpq (psycopg's own name resolution among them).
    if isinstance(exc, OSError) and not isinstance(exc, PermissionError):
        return "transient"
    return "fatal"


def is_transient_connect_error(exc: BaseException) -> bool:
    return classify_connect_error(exc) == "transient"


def describe_connect_error(exc: BaseException) -> tuple[str | None, str]:
    """(SQLSTATE or None, short human reason) of a failed attempt to open a session."""
    code = sqlstate(exc)
    if code in TRANSIENT_SQLSTATES:
        return code, TRANSIENT_SQLSTATES[code]
    if code is None and isinstance(exc, psycopg.OperationalError):
        text = str(exc)
        for pattern, _kind, reason in _CONNECT_MESSAGES:
            if pattern.search(text):
                return None, reason
    return code, error_text(exc)


def is_connection_lost(exc: BaseException) -> bool:
    """The session is gone (ended by the server, the network or a restart)."""
    code = sqlstate(exc)
    if code:
        return code in TRANSIENT_SQLSTATES or code.startswith(CONNECTION_CLASS)
    if isinstance(exc, psycopg.OperationalError):
        return True  # no SQLSTATE after connect: libpq lost the socket
    return isinstance(exc, (ConnectionError, BrokenPipeError))


def is_missing_table(exc: BaseException) -> bool:
    return sqlstate(exc) == UNDEFINED_TABLE


def classify_error(exc: BaseException, step: str) -> MigrateError | None:
    """Map a driver error raised inside a step to a failure class; None for non-DB errors."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        return None
    if not isinstance(exc, (psycopg.Error, OSError)):
        return None
    code = sqlstate(exc)
    text = error_text(exc)
    if code == INSUFFICIENT_PRIVILEGE:
        return AuthError(
            f"{step}: PostgreSQL denied an operation: {text} (SQLSTATE {code})",
            hint="ALTER TABLE, CREATE INDEX and DROP INDEX need ownership of the table, which no GRANT "
            "gives: run as the role that owns RAGFlow's tables (normally POSTGRES_USER), or GRANT "
            "<owner> TO <this user> (docs/postgres.md: Privileges)",
            error_code=code,
        )
    if code and code.startswith(AUTH_CLASS):
        return AuthError(f"{step}: PostgreSQL refused the session: {text} (SQLSTATE {code})",
                         hint="check POSTGRES_USER and POSTGRES_PASSWORD", error_code=code)
    if code == READ_ONLY_TRANSACTION:
        return StepFailedError(f"{step}: the server is read-only (a standby, or default_transaction_read_only "
                               f"is on): {text}",
                               hint="point the tool at the primary (a standby cannot be migrated)",
                               error_code=code)
    if code == INVALID_CATALOG_NAME:
        return ConfigError(f"{step}: {text}", hint="check POSTGRES_DBNAME", error_code=code)
    if code == LOCK_NOT_AVAILABLE:
        return StepFailedError(f"{step}: gave up waiting for a table lock: {text}",
                               hint="another session holds a lock on the table (RAGFlow, a long query); "
                               "run again when it is done, or raise --ddl-lock-wait",
                               error_code=code)
    if is_connection_lost(exc):
        return StepFailedError(f"{step}: lost the connection to PostgreSQL: {text}",
                               hint="run again: every step resumes safely", error_code=code)
    if code and code.startswith(INTEGRITY_CLASS):
        detail = getattr(getattr(exc, "diag", None), "message_detail", None)
        return StepFailedError(f"{step}: {text}" + (f": {detail}" if detail else "") + f" (SQLSTATE {code})",
                               hint="the values named above break the constraint (the change that met them was not "
                               "kept); correct them, then run again", error_code=code)
    return StepFailedError(f"{step}: {text}" + (f" (SQLSTATE {code})" if code else ""),
                           hint="the database is safe to run again; the error above says what failed",
                           error_code=code)
