"""The interface every backend implements (in the spirit of golang-migrate's driver interface
and Alembic's per-dialect implementation classes).

The orchestrator and the steps hold a DB-API connection (pymysql or psycopg 3: ``cursor()`` as a
context manager, ``%s`` parameters) and call the backend for everything whose SQL or semantics
differ: opening and waiting, identifying the server, the run lock, reading the live schema into
the shared :class:`~ragflow_migrate.schema.snapshot.Snapshot` normal form, turning schema
operations into statements and executing a migration, and mapping driver errors to the tool's
failure classes (exit codes).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..config import Settings


class Backend(Protocol):
    #: ``settings.db_type`` it serves: "mysql" (MySQL and MariaDB) or "postgres".
    name: str
    #: What operators call the server in messages ("MySQL", "PostgreSQL").
    label: str

    # --- connections ---------------------------------------------------------------------------
    def connect(self, settings: Settings, *, database: bool = True) -> Any:
        """One new autocommit session, set up the way every session of the tool is."""

    def wait_for_database(self, settings: Settings, log: Any, *, create_database: bool | None = None) -> Any:
        """Retry transient failures until the server accepts a session on the database (tenacity,
        one deadline); fatal ones (credentials, missing database) raise at once. Returns the
        ``ServerInfo``."""

    def identify(self, conn: Any) -> Any:
        """``ServerInfo`` of the server behind ``conn`` (flavor, version, topology, read-only)."""

    def tune(self, conn: Any, server: Any, log: Any) -> None:
        """Per-session speed-ups of the work connections (never required)."""

    def close_quietly(self, conn: Any) -> None: ...

    # --- the run lock --------------------------------------------------------------------------
    def open_lock(self, settings: Settings, log: Any, run_id: str, server: Any) -> Any:
        """The lock that serialises runners (and RAGFlow's own startup): ``acquire(timeout)``,
        ``verify()`` (raises LockLostError), ``holds()``, ``holder()``, ``release()``, ``close()``."""

    def lock_holder(self, conn: Any, settings: Settings, server: Any) -> dict[str, Any] | None:
        """Who holds the run lock now (for ``status``), or None."""

    # --- errors ---------------------------------------------------------------------------------
    def classify_error(self, exc: BaseException, step: str) -> Any:
        """A driver error raised inside a step as a ``MigrateError`` (its exit code), or None
        when ``exc`` is no database error."""

    def is_missing_table(self, exc: BaseException) -> bool: ...

    # --- schema ---------------------------------------------------------------------------------
    def live_snapshot(self, conn: Any, database: str, *, tables: list[str] | None = None,
                      server: Any = None) -> Any:
        """The live schema in this backend's normal form (metadata only, no data scanned)."""

    def table_names(self, conn: Any, database: str) -> set[str]: ...

    def declared(self, snapshot: Any) -> Any:
        """A declared schema (computed from the chain's models, MySQL's normal form) in this
        backend's normal form, so that it compares with :meth:`live_snapshot`."""

    # --- the tool's own records (data stage records, RAGFlow's marker) ---------------------------
    def stage_record_ddl(self) -> str:
        """``CREATE TABLE IF NOT EXISTS`` of ``ragflow_migrate_data_stage`` on this server."""

    def upsert(self, conn: Any, table: str, row: dict[str, Any], key: str, update: list[str]) -> None:
        """Insert ``row`` into ``table``; when a row with the same ``key`` exists, set its
        ``update`` columns to ``row``'s values instead."""

    def transaction(self, conn: Any) -> Any:
        """A context manager: one transaction on ``conn``, committed on success, rolled back on error."""
