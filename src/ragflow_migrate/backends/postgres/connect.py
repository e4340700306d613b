"""Opening PostgreSQL sessions (psycopg 3): one place that knows how every session is set up.

Each connection is a plain psycopg connection (never a pool, never a silent reconnect) that
announces itself as ``application_name = ragflow-migrate/<instance>``, so that other sessions
(a waiting runner, an operator in ``pg_stat_activity``) can tell who it is.

libpq fills every parameter the caller leaves out from the environment (``PGPASSWORD``,
``PGOPTIONS``, ``PGSSLMODE``, ``PGAPPNAME``, ``PGTARGETSESSIONATTRS`` …) and from ``~/.pgpass``.
The tool's settings are the whole truth about the target, so everything that matters is passed:

* the password always, even empty: psycopg then sends ``password=''``, which keeps ``PGPASSWORD``
  out (checked). libpq still reads a password *file* when the password is empty, so ``passfile``
  points at a path that cannot exist (``/dev/null/…``: a silent miss; a path that exists but is not
  a plain file would print a warning);
* ``options=''`` against ``PGOPTIONS`` (a ``-c statement_timeout=…`` there would cut DDL short);
* ``client_encoding``, ``target_session_attrs``, ``gssencmode`` (the tool authenticates with a
  password, over TLS or plain TCP; a ``PGGSSENCMODE=require`` would otherwise refuse to connect).

Not neutralised: ``PGSERVICE`` (libpq has no "no service" value: an empty one is an error; a
service file can only fill parameters that are not passed, and a missing service fails loudly),
and the client certificate (``PGSSLCERT``/``PGSSLKEY``, unused unless the server asks for one).
"""

from __future__ import annotations

from typing import Any

import psycopg

from ...config import Settings
from ...errors import ConfigError

APPLICATION_PREFIX = "ragflow-migrate/"
#: NAMEDATALEN - 1: the server truncates a longer application_name.
APPLICATION_NAME_BYTES = 63
#: A password file that cannot exist (a path below a character device).
NO_PASSFILE = "/dev/null/ragflow-migrate-reads-no-pgpass"
#: TCP keepalives: a dead peer (node lost, network partition) is noticed in about a minute, not
#: after the kernel's two hours; the lock session relies on this to learn that its lock is gone.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}

# The lock session idles for the whole run: no server default may end it or its statements.
_NO_TIMEOUTS_SQL = ("SELECT set_config('statement_timeout', '0', false), "
                    "set_config('idle_in_transaction_session_timeout', '0', false)")
_NO_IDLE_SESSION_TIMEOUT_SQL = "SELECT set_config('idle_session_timeout', '0', false)"  # PostgreSQL 14+


def default_application_name(settings: Settings) -> str:
    """``ragflow-migrate/<instance>``, as the server will show it."""
    return _fit(APPLICATION_PREFIX + settings.instance)


def _fit(name: str) -> str:
    """The server keeps only printable ASCII in ``application_name`` (anything else becomes one
    ``?`` per byte) and cuts it to 63 bytes: do both here, so that what other sessions read in
    ``pg_stat_activity`` is exactly what this process sent."""
    ascii_name = "".join(c if " " <= c <= "~" else "?" for c in name)
    return ascii_name[:APPLICATION_NAME_BYTES]


def connect_params(settings: Settings, *, database: bool = True,
                   application_name: str | None = None) -> dict[str, Any]:
    """The libpq parameters of one session (see the module's docstring for why each is passed)."""
    params: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "user": settings.user,
        "dbname": settings.database if database else "postgres",
        "password": settings.password.reveal(),
        "passfile": NO_PASSFILE,
        "sslmode": settings.pg_sslmode or "prefer",
        # libpq takes whole seconds and treats anything below 2 as 2.
        "connect_timeout": max(2, int(round(settings.connect_timeout))),
        "application_name": _fit(application_name) if application_name else default_application_name(settings),
        "options": "",
        "client_encoding": "UTF8",
        "target_session_attrs": "any",
        "gssencmode": "disable",
        **KEEPALIVES,
    }
    if settings.ssl_ca:
        params["sslrootcert"] = settings.ssl_ca
    return params


def connect(settings: Settings, *, database: bool = True, autocommit: bool = True,
            application_name: str | None = None) -> psycopg.Connection:
    """Open one session in UTC, without the server's statement or idle timeouts. ``database=False``
    connects to the ``postgres`` database (to create the target)."""
    if settings.db_type != "postgres":  # never point libpq at another backend's server
        raise ConfigError(f"a PostgreSQL connection was asked for with DB_TYPE={settings.db_type}")
    conn = psycopg.connect(autocommit=autocommit,
                           **connect_params(settings, database=database, application_name=application_name))
    try:
        execute(conn, "SET TIME ZONE 'UTC'")
        # Every session of a run may idle for minutes (the work session while the run waits for the
        # lock, a stage's second session between batches): a server, database or role default
        # idle_session_timeout would end it and fail the run once the lock is finally granted. A
        # default statement_timeout would cancel a table rewrite on every attempt (as on MySQL, a
        # migration's statements run as long as they need; the Job's deadline bounds the run).
        disable_timeouts(conn)
        if not autocommit:
            conn.commit()  # the SET opened a transaction; the caller starts with none
    except BaseException:
        close_quietly(conn)
        raise
    return conn


def disable_timeouts(conn: psycopg.Connection) -> None:
    """Turn off statement and idle timeouts for this session (the lock session: a server default
    such as ``idle_session_timeout`` would otherwise end it, and the lock with it)."""
    execute(conn, _NO_TIMEOUTS_SQL)
    if conn.info.server_version >= 140000:
        execute(conn, _NO_IDLE_SESSION_TIMEOUT_SQL)


def query(conn: psycopg.Connection, sql: str, args: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def query_one(conn: psycopg.Connection, sql: str, args: Any = None) -> tuple | None:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def execute(conn: psycopg.Connection, sql: Any, args: Any = None) -> int:
    """Run one statement; return the rows it affected (psycopg's ``execute`` returns the cursor,
    pymysql's the count: callers of the helpers get the count on both)."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.rowcount


def close_quietly(conn: psycopg.Connection | None) -> None:
    if conn is None:
        return
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a dead connection may raise anything
        pass
