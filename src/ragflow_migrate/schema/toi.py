"""DDL on Galera: Total Order Isolation (TOI), chosen up front, never by trial.

Under TOI (``wsrep_OSU_method=TOI``, the default) each DDL statement is replicated before it
runs, and every node runs it at the same point of the cluster's order, holding back the commits
that follow it on every node until it is done. Two consequences drive this module:

* **No trial of algorithms.** On a single server the executor asks for ``ALGORITHM=INSTANT`` and
  falls back to INPLACE, then COPY, when the server answers "not supported". On Galera each refused
  try is itself a replicated TOI statement (each node logs it as an ignored error and the cluster
  stalls for it). So on Galera every ALTER is sent once, without an ``ALGORITHM`` clause: each node
  picks the best algorithm it supports (INSTANT where it can), which it never refuses.
* **Blocking DDL is announced, and refused when large.** A statement that builds an index or may
  rebuild the table (``MODIFY``/``CHANGE COLUMN``, a primary key, ``CONVERT TO``) holds the whole
  cluster for its duration. Its table's size is estimated before it is sent; above
  ``--blocking-ddl-rows`` (default 1,000,000 rows) it needs ``--allow-blocking-ddl``. The preflight
  runs this check over every pending schema statement, so a refusal comes before the first write.

Why not RSU or NBO: Rolling Schema Upgrade desynchronises one node at a time and runs the DDL
locally, so the nodes hold different schemas while RAGFlow writes through all of them (column
adds and type changes are not safe in that window), and it must be run on every node by the
caller; Non-Blocking Operations exist only in Enterprise / Percona builds. TOI keeps every node's
schema identical at every point of the replication order, which is what the data stages rely on.
"""

from __future__ import annotations

import re
from typing import Any

from ..db import connect as db
from ..db import topology
from ..errors import ConfigError

#: Clauses that build an index or may rebuild the table (and so hold the cluster while they run).
_BLOCKING = re.compile(
    r"\b(MODIFY\s+COLUMN|CHANGE\s+COLUMN|ADD\s+(UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?(INDEX|KEY)|ADD\s+UNIQUE|"
    r"ADD\s+PRIMARY\s+KEY|DROP\s+PRIMARY\s+KEY|CONVERT\s+TO|FORCE|ENGINE\s*=)",
    re.IGNORECASE,
)
_ALTER_TABLE = re.compile(r"^\s*ALTER\s+TABLE\s+`((?:[^`]|``)+)`", re.IGNORECASE)

#: Below this size a blocking statement takes well under a second: not worth a warning.
ANNOUNCE_ROWS = 10_000
ALLOW_HINT = ("run it in a maintenance window with --allow-blocking-ddl (RAGFLOW_MIGRATE_ALLOW_BLOCKING_DDL=true), "
              "or raise --blocking-ddl-rows")


def on_toi(server: Any) -> bool:
    """Whether DDL on this server is replicated as Total Order Isolation (a Galera node in TOI)."""
    topo = getattr(server, "topology", None)
    return bool(topo is not None and topo.kind == topology.GALERA and (topo.osu_method or "TOI").upper() == "TOI")


def blocking_table(sql: str) -> str | None:
    """The table an ALTER that holds the cluster while it runs works on; None for metadata-only DDL."""
    match = _ALTER_TABLE.match(sql)
    if not match or not _BLOCKING.search(sql[match.end():]):
        return None
    return match.group(1).replace("``", "`")


def estimated_rows(conn: Any, table: str) -> int:
    row = db.query_one(conn, "SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES "
                       "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))
    return int(row[0]) if row else 0


def blocking_size(ctx: Any, sql: str) -> tuple[str, int] | None:
    """The table a blocking ALTER works on and its estimated rows; None for metadata-only DDL."""
    table = blocking_table(sql)
    return None if table is None else (table, estimated_rows(ctx.conn, table))


def too_large(ctx: Any, sql: str, size: tuple[str, int] | None = None) -> dict[str, Any] | None:
    """The statement's table and size when it would hold the cluster and is above the limit
    (``size``: :func:`blocking_size`, when the caller has it already)."""
    if ctx.settings.allow_blocking_ddl:
        return None
    size = size or blocking_size(ctx, sql)
    if size is None or size[1] <= ctx.settings.blocking_ddl_rows:
        return None
    return {"table": size[0], "estimated_rows": size[1], "sql": sql[:300]}


def pending_blockers(ctx: Any, steps: list[Any]) -> list[dict[str, Any]]:
    """For the preflight: the pending schema statements :func:`too_large` refuses."""
    from .steps import PLAN_SNAPSHOT

    found: list[dict[str, Any]] = []
    saved = ctx.extras.pop(PLAN_SNAPSHOT, None)
    try:
        for step in steps:
            if step.kind != "schema":
                continue
            for sql in step.plan(ctx).sql:
                big = too_large(ctx, sql)
                if big:
                    found.append({"step": step.name, **big})
    finally:
        ctx.extras.pop(PLAN_SNAPSHOT, None)
        if saved is not None:
            ctx.extras[PLAN_SNAPSHOT] = saved
    return found


def guard(ctx: Any, step: str, sql: str) -> None:
    """Right before a statement is sent on Galera: refuse it when too large (the preflight normally
    refused it already: this covers the data stages' own DDL), and announce a blocking one."""
    size = blocking_size(ctx, sql)
    if size is None:
        return
    big = too_large(ctx, sql, size)
    if big:
        raise ConfigError(
            f"{step}: {big['table']} holds about {big['estimated_rows']:,} rows; this ALTER would hold every "
            "Galera node for its whole duration (TOI)", hint=ALLOW_HINT, **big)
    table, rows = size
    if rows >= ANNOUNCE_ROWS:
        ctx.notice(step, f"Galera TOI: every node waits while this runs on {table} (about {rows:,} rows)")
