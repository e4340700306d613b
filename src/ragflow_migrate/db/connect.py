"""Opening connections: one place that knows how every session is set up.

Each connection is a plain pymysql connection (never a pool, never a silent reconnect),
in the session of :func:`dialect.session_init_sql`, announcing itself to the server with the
connection attributes ``program_name=ragflow-migrate`` and ``instance=<pod name>``. Its only
difference from pymysql's own: bound strings are escaped by :func:`dialect.escape_string` (the
same text, faster; pinned pymysql 1.2.4 escapes every bound value through ``Connection.escape``),
and each statement starts with a comment naming the session's role and this process
(:func:`statement_tag`), so that the next runner sees what a killed one left running
(``information_schema.PROCESSLIST``, which shows no connection attributes on MariaDB).
"""

from __future__ import annotations

import os
import ssl as ssl_module
import uuid
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import SERVER_STATUS

from .. import __version__
from ..config import Settings
from ..errors import ConfigError
from . import dialect

PROGRAM_NAME = "ragflow-migrate"
#: This process among all runners (a container's pid is the same at every restart).
PROCESS_TOKEN = uuid.uuid4().hex[:12]


def statement_tag(role: str, token: str = PROCESS_TOKEN) -> str:
    """The comment every statement of a ``role`` ("work" or "lock") session starts with; with
    ``token=""``, what every such session's statements start with, whichever process sent them."""
    return f"/* {PROGRAM_NAME} {role} {token} */ " if token else f"/* {PROGRAM_NAME} {role} "


def untagged(statement: Any) -> str:
    """A statement as it was written: without the comment :func:`statement_tag` put before it."""
    text = statement.decode("utf-8", "replace") if isinstance(statement, bytes) else str(statement or "")
    if text.startswith(f"/* {PROGRAM_NAME} ") and " */ " in text:
        text = text.split(" */ ", 1)[1]
    return text


class Connection(pymysql.connections.Connection):
    """pymysql's connection, escaping bound strings with :func:`dialect.escape_string` (pymysql's
    cursors escape every bound value with :meth:`escape`; anything but a ``str`` keeps its own)."""

    tag = ""

    def query(self, sql: Any, unbuffered: bool = False) -> int:
        if self.tag and isinstance(sql, str):
            sql = self.tag + sql
        return super().query(sql, unbuffered)

    def escape(self, obj: Any, mapping: Any = None) -> str:
        if type(obj) is str and not self.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
            return "'" + dialect.escape_string(obj) + "'"
        return super().escape(obj, mapping)


def connect(
    settings: Settings,
    *,
    database: bool = True,
    autocommit: bool = True,
    lock_wait_timeout: float | None = None,
    read_timeout: float | None = None,
    role: str = "work",
) -> pymysql.connections.Connection:
    """Open one connection. ``database=False`` connects without selecting the database; ``role``
    is "work" (statements that change the database, or read it) or "lock" (a run lock's session)."""
    if settings.db_type != "mysql":  # pymysql never talks to another backend's server
        raise ConfigError(f"internal: a MySQL connection was asked for a {settings.db_type} database")
    params: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "user": settings.user,
        # As bytes: pymysql would encode a str as latin-1, so a non-ASCII password set from any
        # UTF-8 client fails (or, beyond latin-1, crashes the attempt with UnicodeEncodeError).
        "password": settings.password.reveal().encode("utf-8"),
        "charset": dialect.CHARSET,
        "autocommit": autocommit,
        "connect_timeout": max(1, int(round(settings.connect_timeout))),
        "init_command": dialect.session_init_sql(
            settings.ddl_lock_wait if lock_wait_timeout is None else lock_wait_timeout
        ),
        "program_name": PROGRAM_NAME,
        "defer_connect": True,
        "local_infile": False,
        "client_flag": 0,
    }
    # pymysql's connect_timeout bounds only the TCP connect; the greeting, authentication and
    # init_command are read with read_timeout. A server that accepts the connection but never
    # answers (frozen, or a dead backend behind a proxy or Service) would block the attempt, and
    # with it the wait deadline, forever: bound the handshake too, then set the session's own.
    params["read_timeout"] = params["connect_timeout"]
    if database:
        params["database"] = settings.database
    if settings.ssl_ca:
        context = ssl_module.create_default_context(cafile=settings.ssl_ca)
        params["ssl"] = context
    conn = Connection(**params)
    conn.tag = statement_tag(role)
    # Published to other sessions (performance_schema.session_connect_attrs on MySQL).
    conn._connect_attrs.update(
        {"instance": settings.instance, "tool_version": __version__, "_pid": str(os.getpid())}
    )
    conn.connect()
    conn._read_timeout = read_timeout  # pymysql applies it from the next read on
    return conn


def query(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def query_one(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> tuple | None:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def execute(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> int:
    with conn.cursor() as cur:
        return cur.execute(sql, args)


def server_info(conn: pymysql.connections.Connection) -> dialect.ServerInfo:
    row = query_one(conn, "SELECT VERSION()")
    return dialect.ServerInfo.from_version(str(row[0]) if row else "")


def close_quietly(conn: pymysql.connections.Connection | None) -> None:
    if conn is None:
        return
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a dead connection may raise anything
        pass
