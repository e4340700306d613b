"""The MySQL / MariaDB backend (Galera and Group Replication included).

Its implementation lives in :mod:`ragflow_migrate.db` (connections, waiting, locks, topology),
:mod:`ragflow_migrate.schema.introspect` / ``executor`` / ``operations`` (the schema's SQL) and
:mod:`ragflow_migrate.data` (the data stages' SQL), where it grew; this object is the boundary
the shared code calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pymysql

from ... import events
from ...config import Settings
from ...db import cluster_lock, dialect, topology, wait
from ...db import connect as db
from ...errors import AuthError, MigrateError, StepFailedError
from ...schema import introspect

NO_SUCH_TABLE = 1146

JOURNAL_DDL = """CREATE TABLE IF NOT EXISTS `{table}` (
  `id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `run_id` VARCHAR(32) NOT NULL,
  `step` VARCHAR(128) NOT NULL,
  `kind` VARCHAR(16) NOT NULL,
  `release_tag` VARCHAR(32) NULL,
  `status` VARCHAR(16) NOT NULL,
  `started_at` DATETIME(3) NOT NULL,
  `finished_at` DATETIME(3) NULL,
  `duration_s` DOUBLE NULL,
  `row_count` BIGINT NULL,
  `changes` BIGINT NULL,
  `detail` MEDIUMTEXT NULL,
  `instance` VARCHAR(64) NOT NULL,
  `tool_version` VARCHAR(32) NOT NULL,
  KEY `{table}_step` (`step`, `id`),
  KEY `{table}_run` (`run_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""


class MySQLBackend:
    name = "mysql"
    label = "MySQL"
    #: Driver errors that mean "the database said no" (the CLI classifies them outside steps too).
    driver_errors: tuple[type[BaseException], ...] = (pymysql.err.MySQLError,)
    #: Every DDL statement commits on its own: steps resume after a kill by re-reading the schema.
    transactional_ddl = False

    # --- connections ---------------------------------------------------------------------------
    def connect(self, settings: Settings, *, database: bool = True) -> Any:
        return db.connect(settings, database=database)

    def wait_for_database(self, settings: Settings, log: Any, *, create_database: bool | None = None) -> Any:
        return wait.wait_for_database(settings, log, create_database=create_database)

    def identify(self, conn: Any) -> Any:
        return topology.identify(conn)

    def tune(self, conn: Any, server: Any, log: Any) -> None:
        tuning = server.session_tuning_sql()
        if tuning:
            try:
                db.execute(conn, tuning)
            except pymysql.err.MySQLError as exc:  # a speed-up only: the run goes on without it
                log.debug(events.STEP_NOTICE, step="connect", message=f"{tuning} refused: {exc}")

    def close_quietly(self, conn: Any) -> None:
        db.close_quietly(conn)

    def is_open(self, conn: Any) -> bool:
        return bool(getattr(conn, "open", False))

    @contextlib.contextmanager
    def read_timeout(self, conn: Any, seconds: float | None) -> Iterator[None]:
        """Bound every read on ``conn`` by ``seconds`` meanwhile (None: leave it as it is)."""
        saved = conn._read_timeout
        if seconds is not None:
            conn._read_timeout = seconds  # pymysql applies it from the next read on
        try:
            yield
        finally:
            if self.is_open(conn):
                conn._read_timeout = saved

    def quote(self, name: str) -> str:
        return dialect.quote(name)

    # --- the run lock --------------------------------------------------------------------------
    def open_lock(self, settings: Settings, log: Any, run_id: str, server: Any) -> Any:
        return cluster_lock.open_lock(settings, log, run_id, server)

    def lock_holder(self, conn: Any, settings: Settings, server: Any) -> dict[str, Any] | None:
        return cluster_lock.cluster_holder(conn, settings, server)

    # --- the preflight ----------------------------------------------------------------------------
    def check_server(self, ctx: Any, steps: list[Any], data_pending: bool, findings: Any) -> None:
        """Add what stops ``steps`` on this server to the preflight's ``findings``."""
        from ... import preflight

        preflight.mysql_checks(ctx, steps, data_pending, findings)

    # --- errors ---------------------------------------------------------------------------------
    def classify_error(self, exc: BaseException, step: str) -> MigrateError | None:
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            return None
        code = dialect.error_code(exc)
        text = dialect.error_text(exc)
        if code in dialect.AUTH_ERRORS:
            return AuthError(
                f"{step}: MySQL denied an operation: {text} (error {code})",
                hint="the migration user needs the privileges listed in the README's 'Privileges' section",
                error_code=code,
            )
        if code in dialect.READ_ONLY:
            return StepFailedError(f"{step}: the server is read-only: {text}",
                                   hint="point the tool at the primary (a replica cannot be migrated)",
                                   error_code=code)
        if dialect.is_connection_lost(exc):
            return StepFailedError(f"{step}: lost the connection to MySQL: {text}",
                                   hint="run again: every step resumes safely", error_code=code)
        if isinstance(exc, (pymysql.err.MySQLError, OSError)):
            return StepFailedError(f"{step}: {text}" + (f" (error {code})" if code else ""),
                                   hint="the database is safe to run again; the error above says what failed",
                                   error_code=code)
        return None

    def is_missing_table(self, exc: BaseException) -> bool:
        return isinstance(exc, pymysql.err.ProgrammingError) and dialect.error_code(exc) == NO_SUCH_TABLE

    # --- schema ---------------------------------------------------------------------------------
    def live_snapshot(self, conn: Any, database: str, *, tables: list[str] | None = None,
                      server: Any = None) -> Any:
        return introspect.live_snapshot(conn, database, tables=tables,
                                        mariadb=server.is_mariadb if server is not None else None)

    def table_names(self, conn: Any, database: str) -> set[str]:
        return introspect.table_names(conn, database)

    def declared(self, snapshot: Any) -> Any:
        return snapshot  # the models' normal form is MySQL's

    def operation_statements(self, operation: Any, live: Any, expected: Any) -> list[Any]:
        return operation.statements(live, expected)

    def session_database(self, conn: Any, database: str) -> Any:
        """peewee on top of ``conn`` (peewee-migrate's history model)."""
        from ...db.peewee_db import SessionDatabase

        return SessionDatabase(conn, database)

    # --- the journal ----------------------------------------------------------------------------
    def journal_ddl(self, table: str) -> str:
        return JOURNAL_DDL.format(table=table)

    def now_sql(self) -> str:
        return "UTC_TIMESTAMP(3)"

    # --- the tool's own records ---------------------------------------------------------------
    def stage_record_ddl(self) -> str:
        from ...data import state

        return state.DDL

    def upsert(self, conn: Any, table: str, row: dict[str, Any], key: str, update: list[str]) -> None:
        names = list(row)
        sql = (f"INSERT INTO `{table}` (" + ", ".join(f"`{n}`" for n in names) + ") VALUES ("
               + ", ".join(["%s"] * len(names)) + ") ON DUPLICATE KEY UPDATE "
               + ", ".join(f"`{n}` = %s" for n in update))
        with conn.cursor() as cur:
            cur.execute(sql, [row[n] for n in names] + [row[n] for n in update])

    def transaction(self, conn: Any) -> Any:
        from ...data import sqlkit

        return sqlkit.transaction(conn)

    def insert_returning_id(self, conn: Any, sql: str, args: Any) -> int:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return int(cur.lastrowid)


BACKEND = MySQLBackend()
