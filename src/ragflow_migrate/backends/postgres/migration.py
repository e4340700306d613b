"""A migration on PostgreSQL: one transaction with its history row, and the index builds on big
tables around it.

A migration runs as one transaction (:func:`.executor.apply_migration`), except the indexes it
creates on tables above ``--blocking-ddl-rows`` (:class:`.indexes.Sizes`), which are built
``CONCURRENTLY`` (:mod:`.indexes`) where RAGFlow's writes can go on:

1. INVALID indexes the migration declares (left by an interrupted build) are dropped;
2. **before** the transaction, each build that depends on nothing the migration does first
   (:func:`early_builds`: its columns exist, no earlier operation touches its table, no other
   operation names the index); the transaction then finds the index present and skips it;
3. the transaction, with the history row, as on a small table; an index it would build on a big
   table that needs the transaction's work first (a column the migration adds) is held back,
   unless another operation of the migration names it (then it is built in the transaction);
4. **after** the commit, those held-back builds, then the history row in a transaction of its own.

A kill anywhere leaves every committed change in place and the migration unrecorded (or recorded
with everything done): the next run re-reads the live schema, drops an INVALID leftover and builds
what is still missing. A migration without such indexes (every small table, a fresh install) is
all-or-nothing as before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from ...errors import StepFailedError
from ...schema.operations import (
    AddIndex,
    CreateTable,
    DropIndex,
    Operation,
    RenameIndex,
    Statement,
    SurrogatePrimaryKey,
)
from ...schema.snapshot import Snapshot
from . import ddl, executor, indexes
from .ddl import IndexBuild, quote
from .introspect import invalid_indexes, live_snapshot

#: ctx.extras: the INVALID indexes a plan already shows as dropped (once for the whole plan).
PLANNED_DROPS = "postgres.planned_drops"


def _index_names(op: Operation) -> list[str]:
    """Every index name ``op`` creates, renames, drops or adopts (names are schema-wide)."""
    if isinstance(op, (AddIndex, RenameIndex)):
        return [op.index.name] + ([op.old] if isinstance(op, RenameIndex) else [])
    if isinstance(op, DropIndex):
        return [op.name]
    if isinstance(op, SurrogatePrimaryKey):
        return [op.unique.name]
    if isinstance(op, CreateTable):
        return list(op.definition.indexes)
    return []


def _name_counts(operations: list[Operation]) -> Counter[str]:
    return Counter(name for op in operations for name in _index_names(op))


def early_builds(conn: Any, operations: list[Operation], live: Snapshot, expected: Snapshot,
                 sizes: indexes.Sizes) -> list[IndexBuild]:
    """The index builds of ``operations`` that may run before the migration's transaction: on a big
    table, the whole of their operation's work, their columns present in ``live``, no earlier
    operation with work on their table (nor one of no single table), no other operation naming
    the index."""
    names = _name_counts(operations)
    touched: set[str] = set()
    out: list[IndexBuild] = []
    for op in operations:
        table = getattr(op, "table", None)
        try:
            found: list[Statement] | None = ddl.pending(ddl.statements(op, live, expected), conn)
        except StepFailedError:
            found = None  # decided in the transaction, after the earlier operations
        build = found[0] if found and len(found) == 1 and isinstance(found[0], IndexBuild) else None
        if build is not None and table not in touched and names[build.name] == 1 and _has_columns(live, build) \
                and sizes.big(table):
            out.append(build)
        elif found is None or found:
            if table is None:
                break
            touched.add(table)
    return out


def _any_big(operations: list[Operation], sizes: indexes.Sizes) -> bool:
    """Whether an index of ``operations`` may be built on a big table (each table estimated now,
    not inside the transaction)."""
    tables = {op.table for op in operations if isinstance(op, (AddIndex, RenameIndex))}
    big = [table for table in sorted(tables) if sizes.big(table)]
    return bool(big)


def _has_columns(live: Snapshot, build: IndexBuild) -> bool:
    table = live.table(build.table or "")
    return table is not None and build.index is not None and all(c in table.columns for c in build.index.column_names)


def _declared(expected: Snapshot, table: str) -> set[str]:
    return set(expected.tables[table].indexes) if table in expected.tables else set()


def _invalid_declared(conn: Any, expected: Snapshot) -> list[tuple[str, str]]:
    return [(t, name) for t, name in invalid_indexes(conn) if name in _declared(expected, t)]


def _build_note(sizes: indexes.Sizes, table: str, when: str) -> str:
    return f"built CONCURRENTLY {when} the migration's transaction: {sizes.why(table)}; RAGFlow's writes go on"


def apply_migration(ctx: Any, step: str, operations: list[Operation], expected: Snapshot,
                    record: Callable[[Any], Any] | None) -> int:
    """Apply ``operations`` (``expected``: the migration's declared schema, PostgreSQL form) and
    ``record`` the history row; returns the number of statements run (see the module docstring)."""
    sizes = indexes.sizes(ctx)
    for table, name in _invalid_declared(ctx.conn, expected):
        indexes.drop_invalid(ctx, step, table, name, why="an earlier build that failed or was interrupted")
    early = []
    if _any_big(operations, sizes):
        early = early_builds(ctx.conn, operations, live_snapshot(ctx.conn), expected, sizes)
    for build in early:
        indexes.build(ctx, step, build, _build_note(sizes, build.table or "", "before"))
    names = _name_counts(operations)
    held: list[IndexBuild] = []
    statements = ddl.migration_statements(operations, expected, log=ctx.log, step=step, held=held,
                                          hold=lambda s: names[s.name] == 1 and sizes.big(s.table))

    def record_unless_held(conn: Any) -> None:
        if record is not None and not held:
            record(conn)

    count = _transaction(ctx, step, statements, record_unless_held)
    for build in held:
        indexes.build(ctx, step, build, _build_note(sizes, build.table or "", "after"))
    if held and record is not None:
        _transaction(ctx, step, [], record)  # the history row, once every index is there
    return len(early) + count + len(held)


def run_statements(ctx: Any, step: str, statements: list[Statement]) -> int:
    """``statements`` (a schema repair) as one transaction; an index build on a big table
    concurrently, before it. An INVALID index of a name about to be built is dropped first."""
    sizes = indexes.sizes(ctx)
    builds = [s for s in statements if isinstance(s, IndexBuild)]
    for build in builds:
        assert build.table is not None
        indexes.drop_invalid(ctx, step, build.table, build.name, why="an earlier build that failed or was interrupted")
    early = [b for b in builds if sizes.big(b.table)]
    for build in early:
        indexes.build(ctx, step, build, f"built CONCURRENTLY: {sizes.why(build.table or '')}; RAGFlow's writes go on")
    rest = [s for s in statements if not any(s is b for b in early)]
    return len(early) + (_transaction(ctx, step, rest, None) if rest else 0)


def _transaction(ctx: Any, step: str, statements: list[Statement], record: Callable[[Any], Any] | None) -> int:
    return executor.apply_migration(ctx.conn, statements, record=record, log=ctx.log, step=step,
                                    lock_wait=ctx.settings.ddl_lock_wait, deadline=ctx.settings.ddl_deadline,
                                    checkpoint=ctx.checkpoint)


def plan_migration(ctx: Any, live: Snapshot, operations: list[Operation], expected: Snapshot) -> list[str]:
    """:func:`.ddl.plan_migration`, with the builds :func:`apply_migration` makes ``CONCURRENTLY``
    shown as such: first the INVALID leftovers dropped and the builds before the transaction,
    then the transaction's statements, then the builds after it."""
    sizes = indexes.sizes(ctx)
    shown = ctx.extras.setdefault(PLANNED_DROPS, set())
    sql = []
    for table, name in _invalid_declared(ctx.conn, expected):
        if (table, name) not in shown:
            shown.add((table, name))
            sql.append(f"-- {name} is INVALID (left by an interrupted build)\n"
                       f"DROP INDEX CONCURRENTLY IF EXISTS {quote(name)}")
    early = early_builds(ctx.conn, operations, live, expected, sizes) if _any_big(operations, sizes) else []
    for build in early:
        sql.append(f"-- {_build_note(sizes, build.table or '', 'before')}\n{build.concurrent_sql()}")
        if build.table in live.tables and build.index is not None:
            live.tables[build.table].indexes[build.name] = build.index
    names = _name_counts(operations)
    after = []
    for op in operations:
        found = ddl.statements(op, live, expected)
        for s in found:
            if isinstance(s, IndexBuild) and names[s.name] == 1 and sizes.big(s.table):
                after.append(f"-- {_build_note(sizes, s.table or '', 'after')}\n{s.concurrent_sql()}")
            else:
                sql.append(s.render())
        if found:
            ddl.simulate(live, op, expected)
    return sql + after
