"""The schema's steps: one per pending migration, a fresh install, and the final verification.

A migration step reads the live schema once, then for each operation runs only the statements
still needed (re-reading the touched table after each change), and records the migration in the
history at the end. Killed anywhere, it is simply run again.
"""

from __future__ import annotations

from typing import Any

from .. import events
from ..db import dialect
from ..errors import DriftError
from ..steps import RunContext, Step, StepPlan, StepResult
from . import chain, history, widenings
from .diff import compare, drift
from .executor import execute_statement
from .operations import CreateTable, Operation, simulate
from .snapshot import Snapshot

LEFT_KEY = "schema.repair_left"  # ctx.extras: what the schema repair left (set by repair.py)

PLAN_SNAPSHOT = "schema.plan_snapshot"  # ctx.extras key: the simulated live schema while planning


def _live(ctx: RunContext) -> Snapshot:
    return ctx.live_schema()


def _planning_snapshot(ctx: RunContext) -> Snapshot:
    if PLAN_SNAPSHOT not in ctx.extras:
        ctx.extras[PLAN_SNAPSHOT] = _live(ctx)
    return ctx.extras[PLAN_SNAPSHOT]


def _for_target(ctx: RunContext, operations: list[Operation]) -> list[Operation]:
    target = ctx.settings.target_version
    return [op for op in operations if not isinstance(op, CreateTable) or op.needed_for(target)]


def run_operations(ctx: RunContext, step: str, operations: list[Operation], expected: Snapshot) -> int:
    """Execute what each operation still needs; returns the number of statements run."""
    live = _live(ctx)
    count = 0
    for op in _for_target(ctx, operations):
        for notice in op.notices(live):
            ctx.notice(step, notice)
        statements = [s for s in op.statements(live, expected) if s.needed is None or s.needed(ctx)]
        count += _run_statements(ctx, step, op, live, expected, statements)
        if statements and getattr(op, "table", None):
            _refresh(ctx, live, op.table)
    return count


def _refresh(ctx: RunContext, live: Snapshot, table: str) -> None:
    fresh = ctx.live_schema(tables=[table])
    if table in fresh.tables:
        live.tables[table] = fresh.tables[table]
    else:
        live.tables.pop(table, None)


def _run_statements(ctx: RunContext, step: str, op: Operation, live: Snapshot, expected: Snapshot,
                    statements: list[Any]) -> int:
    """Run an operation's statements. One that finds its change made already (a killed runner's
    last statement, still running on the server when this run read the schema, finished since) is
    not an error: the table is read again and what the operation still needs is run instead."""
    count = 0
    for attempt in range(3):
        for statement in statements:
            ctx.checkpoint()
            try:
                execute_statement(ctx, step, statement)
            except Exception as exc:  # noqa: BLE001 - re-raised below unless it is "already done"
                table = getattr(op, "table", None)
                if dialect.error_code(exc) not in dialect.ALREADY_DONE or table is None or attempt == 2:
                    raise
                _refresh(ctx, live, table)
                again = [s for s in op.statements(live, expected) if s.needed is None or s.needed(ctx)]
                if again and again[0].sql == statement.sql:
                    raise  # still needed as it was: a real error
                ctx.log.warning(events.STEP_WAITING, step=step, reason=f"{table} changed since it was read "
                                f"({dialect.error_text(exc)}); read again, {len(again)} statement(s) left",
                                attempt=attempt + 1)
                statements = again
                break
            count += 1
        else:
            return count
    return count


def apply_migration(ctx: RunContext, step: str, operations: list[Operation], expected: Snapshot,
                    names: list[str]) -> int:
    """Run what ``operations`` still need, then record ``names`` in the history. Where DDL is
    transactional (PostgreSQL) the backend makes both one transaction; on MySQL every statement
    commits on its own and a rerun carries on where a kill stopped it."""
    backend = ctx.backend
    if getattr(backend, "transactional_ddl", False):
        def record(conn: Any) -> None:
            if ctx.lock is not None:
                ctx.lock.verify()  # a lock lost meanwhile rolls the migration back (exit 6)
            history.record(conn, ctx.settings.database, names, backend)

        return backend.apply_migration(ctx, step, _for_target(ctx, operations), ctx.declared(expected),
                                       record=record)
    count = run_operations(ctx, step, operations, expected)
    ctx.checkpoint()
    history.record(ctx.conn, ctx.settings.database, names, backend)
    return count


def plan_operations(ctx: RunContext, operations: list[Operation], expected: Snapshot) -> tuple[list[str], list[str]]:
    live = _planning_snapshot(ctx)
    if getattr(ctx.backend, "transactional_ddl", False):
        return ctx.backend.plan_migration(live, _for_target(ctx, operations), ctx.declared(expected), ctx=ctx), []
    sql: list[str] = []
    notes: list[str] = []
    for op in _for_target(ctx, operations):
        notes += op.notices(live)
        statements = [s for s in op.statements(live, expected) if s.needed is None or s.needed(ctx)]
        sql += [s.render() for s in statements]
        if statements:
            simulate(live, op, expected)
    return sql, notes


class MigrationStep(Step):
    kind = "schema"

    def __init__(self, migration: chain.Migration) -> None:
        self.migration = migration
        self.name = f"schema {migration.release}"
        self.release = migration.release

    def plan(self, ctx: RunContext) -> StepPlan:
        sql, notes = plan_operations(ctx, self.migration.operations, self.migration.expected)
        summary = f"migration {self.migration.name}: {len(self.migration.operations)} operations, " \
                  f"{len(sql)} statements still needed"
        return StepPlan(self.name, summary, sql=sql, notes=notes)

    def apply(self, ctx: RunContext) -> StepResult:
        count = apply_migration(ctx, self.name, self.migration.operations, self.migration.expected,
                                [self.migration.name])
        return StepResult(changes=count, details={"migration": self.migration.name})


class InstallStep(Step):
    """An empty database: the target release's tables directly, then the history."""

    kind = "schema"

    def __init__(self, target: str) -> None:
        self.target = target
        self.name = f"schema install {target}"
        self.release = target
        self.expected = chain.install_schema(target)
        self.operations: list[Operation] = [CreateTable(t) for _, t in sorted(self.expected.tables.items())]

    def plan(self, ctx: RunContext) -> StepPlan:
        sql, notes = plan_operations(ctx, self.operations, self.expected)
        return StepPlan(self.name, f"create the {len(self.expected.tables)} tables of RAGFlow {self.target}",
                        sql=sql, notes=notes)

    def apply(self, ctx: RunContext) -> StepResult:
        count = apply_migration(ctx, self.name, self.operations, self.expected,
                                list(chain.names_up_to(self.target)))
        return StepResult(changes=count, details={"tables": len(self.expected.tables)})


#: Columns the data stages convert; ``schema apply`` alone leaves them for ``data``.
def deferred_columns(target: str) -> frozenset[tuple[str, str]]:
    out = set()
    for migration in chain.replay():
        if migration.name > chain.migration_name(target):
            break
        for op in migration.operations:
            if getattr(op, "deferred_to", None):
                out.add((op.table, op.column.name))
    return frozenset(out)


class VerifyStep(Step):
    """The live schema must now equal the target release's (extras aside)."""

    kind = "verify"

    @staticmethod
    def name_for() -> str:
        return "verify schema"

    def __init__(self, target: str, *, skip_data_columns: bool = False) -> None:
        self.target = target
        self.name = self.name_for()
        self.release = target
        self.skip = deferred_columns(target) if skip_data_columns else frozenset()

    def plan(self, ctx: RunContext) -> StepPlan:
        return StepPlan(self.name, f"compare the live schema with RAGFlow {self.target}'s")

    def apply(self, ctx: RunContext) -> StepResult:
        differences = compare(ctx.declared(chain.expected_schema(self.target)), _live(ctx), skip_columns=self.skip,
                              widened=widenings.recorded(ctx.conn))
        found = drift(differences)
        widened = [d for d in differences if d.kind == "widened"]
        extras = [d for d in differences if not d.is_drift and d.kind != "widened"]
        if widened:
            ctx.log.info(events.STEP_NOTICE, step=self.name, message="recorded deviations: columns widened on the "
                         "operator's decision (--widen-columns), kept as they are", count=len(widened),
                         sample=[d.describe() for d in widened[:10]])
        if extras:
            ctx.log.info(events.STEP_NOTICE, step=self.name, message="the database keeps things the target "
                         "does not declare (kept on purpose; `schema diff` lists them)", count=len(extras),
                         sample=[d.describe() for d in extras[:10]])
        if found:
            ctx.log.error(events.SCHEMA_DRIFT, target=self.target, count=len(found),
                          differences=[d.as_dict() for d in found[:50]])
            raise DriftError(
                f"the schema differs from RAGFlow {self.target}'s in {len(found)} place(s): "
                + "; ".join(d.describe() for d in found[:5]) + ("; …" if len(found) > 5 else ""),
                hint="`ragflow-migrate schema diff` lists every difference"
                + ("; the schema repair left those whose repair would lose data: `ragflow-migrate schema apply "
                   "--drop` forces them" if ctx.extras.get(LEFT_KEY) else ""),
                differences=[d.as_dict() for d in found],
            )
        return StepResult(details={"extras": len(extras)})


def describe_steps(steps: list[Step]) -> list[dict[str, Any]]:
    return [{"step": s.name, "kind": s.kind, "release": s.release} for s in steps]
