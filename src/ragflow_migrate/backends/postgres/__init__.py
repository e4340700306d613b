"""The PostgreSQL backend (RAGFlow's ``DB_TYPE=postgres``): psycopg 3 sessions, the catalog
normal form, PostgreSQL DDL, one transaction per migration. docs/postgres.md has the design."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg

from ...config import Settings
from ...errors import MigrateError
from . import connect as pg
from . import ddl, errors, introspect, lock, migration, pgform, privileges, server, wait

JOURNAL_DDL = """CREATE TABLE IF NOT EXISTS {table} (
  id BIGSERIAL PRIMARY KEY,
  run_id VARCHAR(32) NOT NULL,
  step VARCHAR(128) NOT NULL,
  kind VARCHAR(16) NOT NULL,
  release_tag VARCHAR(32) NULL,
  status VARCHAR(16) NOT NULL,
  started_at TIMESTAMP(3) NOT NULL,
  finished_at TIMESTAMP(3) NULL,
  duration_s DOUBLE PRECISION NULL,
  row_count BIGINT NULL,
  changes BIGINT NULL,
  detail TEXT NULL,
  instance VARCHAR(64) NOT NULL,
  tool_version VARCHAR(32) NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_step ON {table} (step, id);
CREATE INDEX IF NOT EXISTS {table}_run ON {table} (run_id)"""


#: The data stages' records (``ragflow_migrate.data.state``), with PostgreSQL's types.
STAGE_RECORD_DDL = """CREATE TABLE IF NOT EXISTS ragflow_migrate_data_stage (
  stage VARCHAR(64) NOT NULL PRIMARY KEY,
  gate VARCHAR(16) NOT NULL,
  status VARCHAR(16) NOT NULL,
  run_id VARCHAR(32) NOT NULL,
  started_at TIMESTAMP(3) NOT NULL,
  finished_at TIMESTAMP(3) NULL,
  duration_s DOUBLE PRECISION NULL,
  row_count BIGINT NULL,
  changes BIGINT NULL,
  detail TEXT NULL,
  tool_version VARCHAR(32) NOT NULL
)"""


class PostgresBackend:
    name = "postgres"
    label = "PostgreSQL"
    driver_errors: tuple[type[BaseException], ...] = (psycopg.Error,)
    #: DDL commits with its transaction: a migration is applied whole or not at all (its index
    #: builds on big tables aside: ``migration.py``).
    transactional_ddl = True

    def data_stage_classes(self) -> tuple[type, ...]:
        """The PostgreSQL implementations of the seven data stages (data/registry.py picks them)."""
        from .data import STAGE_CLASSES

        return STAGE_CLASSES

    def data_overflows(self, conn: Any, pending: set[str], catalog: Any) -> list[Any]:
        """The preflight's prediction of values too long for their columns (exit 10 before any write)."""
        from .data.overflow import overflows

        return overflows(conn, pending, catalog)

    # --- connections ---------------------------------------------------------------------------
    def connect(self, settings: Settings, *, database: bool = True) -> Any:
        return pg.connect(settings, database=database)

    def wait_for_database(self, settings: Settings, log: Any, *, create_database: bool | None = None) -> Any:
        return wait.wait_for_database(settings, log, create_database=create_database)

    def identify(self, conn: Any) -> Any:
        return server.identify(conn)

    def tune(self, conn: Any, server_info: Any, log: Any) -> None:
        # A runner killed mid-statement: the server ends the statement (and rolls its transaction
        # back) within a second or two instead of finishing it for nobody (PostgreSQL 14+).
        if conn.info.server_version >= 140000:
            pg.execute(conn, "SET client_connection_check_interval = '1s'")

    def close_quietly(self, conn: Any) -> None:
        pg.close_quietly(conn)

    def is_open(self, conn: Any) -> bool:
        return not conn.closed

    @contextlib.contextmanager
    def read_timeout(self, conn: Any, seconds: float | None) -> Iterator[None]:
        """Bound each statement on ``conn`` by ``seconds`` meanwhile (statement_timeout)."""
        if seconds is None:
            yield
            return
        pg.execute(conn, "SELECT set_config('statement_timeout', %s, false)", (f"{int(seconds * 1000)}ms",))
        try:
            yield
        finally:
            if self.is_open(conn):
                with contextlib.suppress(psycopg.Error):
                    pg.execute(conn, "SELECT set_config('statement_timeout', '0', false)")

    def quote(self, name: str) -> str:
        return ddl.quote(name)

    # --- the run lock --------------------------------------------------------------------------
    def open_lock(self, settings: Settings, log: Any, run_id: str, server_info: Any) -> Any:
        return lock.PgAdvisoryLock(settings, log, run_id)

    def lock_holder(self, conn: Any, settings: Settings, server_info: Any) -> dict[str, Any] | None:
        return lock.lock_holder(conn, settings)

    # --- the preflight ----------------------------------------------------------------------------
    def check_server(self, ctx: Any, steps: list[Any], data_pending: bool, findings: Any) -> None:
        """Ownership and schema privileges (exit 4), a standby or read-only server (exit 7)."""
        from ...errors import ExitCode
        from ...preflight import Blocker

        needed = privileges.missing(ctx.conn)
        if needed:
            findings.blockers.append(Blocker(
                "privileges", int(ExitCode.AUTH),
                f"the role {ctx.settings.user} cannot change RAGFlow's tables in {ctx.settings.database} (on "
                "PostgreSQL only a table's owner may alter it)",
                "; ".join(needed) + " (README: PostgreSQL)", {"missing": needed}))
        if self.identify(ctx.conn).read_only:
            where = f"{ctx.settings.host}:{ctx.settings.port}"
            findings.blockers.append(Blocker(
                "read_only", int(ExitCode.STEP_FAILED),
                f"the server {where} is read-only (a standby in recovery, or default_transaction_read_only=on)",
                "point POSTGRES_HOST/POSTGRES_PORT at the primary; a standby cannot be migrated"))

    # --- errors ---------------------------------------------------------------------------------
    def classify_error(self, exc: BaseException, step: str) -> MigrateError | None:
        return errors.classify_error(exc, step)

    def is_missing_table(self, exc: BaseException) -> bool:
        return errors.is_missing_table(exc)

    # --- schema ---------------------------------------------------------------------------------
    def live_snapshot(self, conn: Any, database: str, *, tables: list[str] | None = None,
                      server: Any = None) -> Any:
        return introspect.live_snapshot(conn, database, tables=tables)

    def table_names(self, conn: Any, database: str) -> set[str]:
        return introspect.table_names(conn, database)

    def declared(self, snapshot: Any) -> Any:
        return pgform.to_postgres(snapshot)

    def session_database(self, conn: Any, database: str) -> Any:
        from .peewee_db import SessionDatabase

        return SessionDatabase(conn, database)

    def apply_migration(self, ctx: Any, step: str, operations: list[Any], expected: Any,
                        record: Any) -> int:
        """The migration's operations and its history row as one transaction; a kill leaves it
        applied or not at all, a lock wait rolls it back and tries again (``--ddl-lock-wait``
        per attempt, ``--ddl-deadline`` in all). Indexes on tables above ``--blocking-ddl-rows``
        are built CONCURRENTLY outside it (:mod:`.migration`)."""
        return migration.apply_migration(ctx, step, operations, expected, record)

    def operation_statements(self, operation: Any, live: Any, expected: Any) -> list[Any]:
        return ddl.statements(operation, live, expected)

    def run_statements(self, ctx: Any, step: str, statements: list[Any]) -> int:
        """``statements`` as one transaction (a schema repair); an index on a big table CONCURRENTLY."""
        return migration.run_statements(ctx, step, statements)

    def plan_migration(self, live: Any, operations: list[Any], expected: Any, ctx: Any = None) -> list[str]:
        """The statements a migration still needs; with ``ctx``, the CONCURRENTLY builds marked."""
        if ctx is None:
            return ddl.plan_migration(live, operations, expected)
        return migration.plan_migration(ctx, live, operations, expected)

    # --- the journal ----------------------------------------------------------------------------
    def journal_ddl(self, table: str) -> str:
        return JOURNAL_DDL.format(table=table)

    def now_sql(self) -> str:
        return "(now() AT TIME ZONE 'UTC')"

    # --- the tool's own records ---------------------------------------------------------------
    def stage_record_ddl(self) -> str:
        return STAGE_RECORD_DDL

    def upsert(self, conn: Any, table: str, row: dict[str, Any], key: str, update: list[str]) -> None:
        names = list(row)
        sql = (f"INSERT INTO {self.quote(table)} (" + ", ".join(self.quote(n) for n in names) + ") VALUES ("
               + ", ".join(["%s"] * len(names)) + f") ON CONFLICT ({self.quote(key)}) DO UPDATE SET "
               + ", ".join(f"{self.quote(n)} = EXCLUDED.{self.quote(n)}" for n in update))
        with conn.cursor() as cur:
            cur.execute(sql, [row[n] for n in names])

    def transaction(self, conn: Any) -> Any:
        return conn.transaction()

    def insert_returning_id(self, conn: Any, sql: str, args: Any) -> int:
        row = pg.query_one(conn, sql + " RETURNING id", args)
        return int(row[0])


BACKEND = PostgresBackend()
