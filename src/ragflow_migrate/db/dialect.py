"""Everything that depends on the MySQL dialect, and on MySQL vs MariaDB, lives here.

* server identification (:class:`ServerInfo`);
* the session every connection runs in (strict SQL mode, utf8mb4, UTC, short DDL lock wait);
* which errors are transient, which mean "fix your credentials", which mean "blocked by a
  metadata lock" (error numbers: https://dev.mysql.com/doc/mysql-errors/9.0/en/);
* identifier quoting;
* ALTER TABLE algorithms: INSTANT where the server can, else INPLACE, else COPY
  (https://dev.mysql.com/doc/refman/9.0/en/innodb-online-ddl-operations.html,
  https://mariadb.com/kb/en/innodb-online-ddl-overview/).

MySQL DDL commits implicitly (https://dev.mysql.com/doc/refman/9.0/en/implicit-commit.html):
no DDL statement can be rolled back with the data around it, so every caller must be able to
resume after any statement.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

#: Bytes each TEXT type holds (a VARCHAR's limit is in characters, a TEXT's in bytes).
TEXT_BYTES = {"tinytext": 255, "text": 65_535, "mediumtext": 16_777_215, "longtext": 4_294_967_295}

# The session of every connection. STRICT_ALL_TABLES: a value that does not fit is an error,
# never a silent truncation (RAGFlow's own sessions are not strict). Both servers accept this list.
SQL_MODE = ",".join(
    (
        "STRICT_TRANS_TABLES",
        "STRICT_ALL_TABLES",
        "NO_ZERO_IN_DATE",
        "NO_ZERO_DATE",
        "ERROR_FOR_DIVISION_BY_ZERO",
        "NO_ENGINE_SUBSTITUTION",
    )
)
CHARSET = "utf8mb4"

# What pymysql's escape_string does (a per-character table lookup, ~17 ns a character), as one C
# ``str.replace`` per special character that occurs: the same text, 16x faster on a 700-character
# JSON config (the data stages bind hundreds of thousands of those). Backslash escapes.
_STRING_ESCAPES = (("\\", "\\\\"), ("\0", "\\0"), ("\n", "\\n"), ("\r", "\\r"), ("\x1a", "\\Z"), ('"', '\\"'),
                   ("'", "\\'"))


def escape_string(text: str) -> str:
    """``text`` escaped for a quoted string literal with backslash escapes, character for character
    what ``pymysql.converters.escape_string`` returns."""
    for char, escaped in _STRING_ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    return text
DEFAULT_COLLATION = "utf8mb4_unicode_ci"  # RAGFlow's docker-compose database collation


def session_init_sql(lock_wait_timeout: float) -> str:
    """One statement that sets up a session (pymysql's ``init_command``)."""
    seconds = max(1, int(round(lock_wait_timeout)))
    return (
        f"SET SESSION sql_mode='{SQL_MODE}', time_zone='+00:00', "
        f"lock_wait_timeout={seconds}, group_concat_max_len=1048576"
    )


# --- errors -----------------------------------------------------------------------------------

# Worth another attempt while waiting for the server.
TRANSIENT_CONNECT_ERRORS = {
    1040: "too many connections",
    1053: "server shutting down",
    1077: "server shutting down",
    1203: "too many connections for this user",
    1927: "connection killed",
    2002: "cannot connect through the socket",
    2003: "cannot connect",
    2005: "unknown host (DNS not ready?)",
    2006: "server has gone away",
    2013: "lost connection during the query",
    3032: "server is in offline mode",
    4031: "disconnected by the server",
}
# Credentials or privileges: waiting does not help; the message says what to fix.
AUTH_ERRORS = {
    1044: "access denied to the database",
    1045: "access denied (wrong user or password)",
    1130: "this host is not allowed to connect",
    1142: "a command was denied (missing privilege)",
    1143: "a column privilege is missing",
    1227: "a privilege is missing",
    1251: "the client cannot use the server's authentication method",
    1370: "a routine privilege is missing",
    1698: "access denied for this user",
    3118: "the account is locked",
    1862: "the password has expired",
    1820: "the password must be changed before anything else",
}
UNKNOWN_DATABASE = 1049
HOST_BLOCKED = 1129
LOCK_WAIT_TIMEOUT = 1205  # includes metadata locks when lock_wait_timeout is reached
DEADLOCK = 1213
READ_ONLY = {1290, 1836}  # --read-only / super_read_only; read-only transaction
ALGORITHM_NOT_SUPPORTED = {1845, 1846, 4092}  # 4092: MySQL's 64-row-version limit for INSTANT
DUPLICATE_KEY = 1062
#: A DDL statement found its change made already (table exists, duplicate column or index name, a
#: column or index or table to drop that is gone): another session did it after we read the schema.
ALREADY_DONE = {1050, 1051, 1060, 1061, 1091}
DATA_TOO_LONG = 1406


def error_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def error_text(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    if len(args) >= 2:
        return str(args[1])
    return str(exc)


_ERRNO_REASONS = (
    (re.compile(r"Errno (-2|-3|-5)\]|Name or service not known|Temporary failure in name resolution|"
                r"nodename nor servname", re.I), "unknown host (DNS not ready?)"),
    (re.compile(r"Errno 111\]|Connection refused", re.I), "connection refused"),
    (re.compile(r"timed out", re.I), "connection timed out"),
    (re.compile(r"Errno 113\]|No route to host", re.I), "no route to host"),
    (re.compile(r"Errno 104\]|Connection reset", re.I), "connection reset"),
)


def describe_connect_error(exc: BaseException) -> tuple[int | None, str]:
    """(error number, short human reason) of a failed connection attempt."""
    code = error_code(exc)
    text = error_text(exc)
    for pattern, reason in _ERRNO_REASONS:
        if pattern.search(text):
            return code, reason
    if code in TRANSIENT_CONNECT_ERRORS:
        return code, TRANSIENT_CONNECT_ERRORS[code]
    if code in AUTH_ERRORS:
        return code, AUTH_ERRORS[code]
    return code, text.splitlines()[0][:200] if text else type(exc).__name__


def is_transient_connect_error(exc: BaseException) -> bool:
    code = error_code(exc)
    if code in TRANSIENT_CONNECT_ERRORS:
        return True
    # Socket errors before the MySQL handshake (pymysql wraps most of them as 2003).
    return isinstance(exc, (ConnectionError, TimeoutError)) or (
        isinstance(exc, OSError) and code is None and not isinstance(exc, PermissionError)
    )


def is_connection_lost(exc: BaseException) -> bool:
    return error_code(exc) in (2006, 2013, 1927, 4031, 1053, 2055) or isinstance(exc, (ConnectionError, BrokenPipeError))


# --- identifiers and literals -----------------------------------------------------------------


def quote(identifier: str) -> str:
    """Quote an identifier (table, column, index, database) with backticks."""
    if "\x00" in identifier:
        raise ValueError("identifiers cannot contain NUL")
    return "`" + identifier.replace("`", "``") + "`"


# --- servers ----------------------------------------------------------------------------------


#: The sort memory of one index build on MySQL (session scope; freed when the ALTER ends). Building
#: tenant_model's six indexes over 2.33M rows (L) on MySQL 9.7 took 28.0 s at the default 1 MB,
#: 21.9 s at 16 MB, 21.7 s at 64 MB, 19.3 s at 256 MB: 16 MB takes most of the gain for little memory.
DDL_BUFFER_BYTES = 16 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    """What kind of server we talk to. ``flavor`` is ``mysql`` or ``mariadb``."""

    flavor: str
    version: tuple[int, int, int]
    version_text: str
    #: :class:`.topology.Topology` of the server reached (stand-alone when unknown); set at connect.
    topology: Any = dataclasses.field(default=None, compare=False)

    @classmethod
    def from_version(cls, text: str) -> ServerInfo:
        match = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
        version = tuple(int(x) for x in match.groups()) if match else (0, 0, 0)
        flavor = "mariadb" if "mariadb" in text.lower() else "mysql"
        return cls(flavor, version, text)  # type: ignore[arg-type]

    @property
    def is_mariadb(self) -> bool:
        return self.flavor == "mariadb"

    @property
    def label(self) -> str:
        return f"{'MariaDB' if self.is_mariadb else 'MySQL'} {'.'.join(map(str, self.version))}"

    def algorithms(self, operation: str) -> tuple[str, ...]:
        """ALTER TABLE algorithms to try, best first, for one kind of operation.

        A server answers "not supported" (1845/1846) when it cannot use one, and the next is
        tried; the log says which one ran.
        """
        instant_ok = (not self.is_mariadb and self.version >= (8, 0, 12)) or (
            self.is_mariadb and self.version >= (10, 3, 2)
        )
        if operation in ("add_column", "drop_column", "rename_column", "set_default", "drop_default",
                         "rename_index", "modify_column"):
            return ("INSTANT", "INPLACE", "COPY") if instant_ok else ("INPLACE", "COPY")
        if operation in ("add_index", "drop_index"):
            return ("INPLACE", "COPY")
        return ("DEFAULT",)

    def session_tuning_sql(self) -> str | None:
        """A ``SET SESSION`` for the work connection, or None: on MySQL 8.0.27+ the sort memory of
        an index build (``innodb_ddl_buffer_size``, 1 MB by default) is raised for this session."""
        if not self.is_mariadb and self.version >= (8, 0, 27):
            return f"SET SESSION innodb_ddl_buffer_size = {DDL_BUFFER_BYTES}"
        return None

    @property
    def supports_rename_index(self) -> bool:
        return not self.is_mariadb or self.version >= (10, 5, 2)


# --- who blocks a DDL statement -----------------------------------------------------------------

# Sessions with an open transaction, oldest first: one of them holds the metadata lock a waiting
# ALTER needs (works on both servers; without the PROCESS privilege only our own sessions show).
OPEN_TRANSACTIONS_SQL = (
    "SELECT t.trx_mysql_thread_id, p.USER, p.HOST, "
    "TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), LEFT(COALESCE(t.trx_query, p.INFO, ''), 200) "
    "FROM information_schema.INNODB_TRX t "
    "LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
    "WHERE t.trx_mysql_thread_id <> CONNECTION_ID() ORDER BY t.trx_started LIMIT 5"
)

# MySQL's precise answer, when performance_schema is on: who holds a lock on the table.
MDL_HOLDERS_SQL = (
    "SELECT th.PROCESSLIST_ID, th.PROCESSLIST_USER, th.PROCESSLIST_HOST, th.PROCESSLIST_TIME, ml.LOCK_TYPE "
    "FROM performance_schema.metadata_locks ml "
    "JOIN performance_schema.threads th ON th.THREAD_ID = ml.OWNER_THREAD_ID "
    "WHERE ml.OBJECT_SCHEMA = %s AND ml.OBJECT_NAME = %s AND ml.LOCK_STATUS = 'GRANTED' "
    "AND th.PROCESSLIST_ID <> CONNECTION_ID() LIMIT 5"
)


def metadata_lock_blockers(query, schema: str, table: str) -> list[dict]:
    """Best effort: the sessions that hold up a DDL statement on ``schema.table``.

    ``query(sql, args)`` runs a query and returns its rows. Returns [] when nothing is visible.
    """
    try:
        rows = query(MDL_HOLDERS_SQL, (schema, table))
        if rows:
            return [{"connection_id": r[0], "user": r[1], "host": r[2], "seconds": r[3], "lock": r[4]} for r in rows]
    except Exception:  # noqa: BLE001 - performance_schema off, or no privilege: fall back
        pass
    try:
        rows = query(OPEN_TRANSACTIONS_SQL, None)
    except Exception:  # noqa: BLE001 - no privilege on information_schema.INNODB_TRX
        return []
    return [{"connection_id": r[0], "user": r[1], "host": r[2], "transaction_age_s": r[3], "query": r[4]}
            for r in rows]
