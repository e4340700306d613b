"""The whole pipeline, in release order: which steps are pending for this database.

    schema v0.20.0 … schema v0.26.0 → data stages of v0.26.0 → schema v0.26.4 → schema v0.27.0
    → data stages of v0.27.0 → verify schema

Running data stages right after the schema release that introduced them is what makes a
direct upgrade from v0.25 (or older) to v0.27 come out the same as going through v0.26.
The planner only reads metadata (the history table, the table list, the journal); when nothing
is pending it answers in a few milliseconds.
"""

from __future__ import annotations

import pymysql

from .db import connect as db
from .db import dialect
from .journal import TABLE as JOURNAL_TABLE
from .releases import releases_up_to
from .schema.state import schema_state
from .schema.steps import InstallStep, VerifyStep
from .steps import Plan, RunContext, Step

#: Releases whose data stages run right after their schema migration.
DATA_GATES = ("v0.26.0", "v0.27.0")


def plan_pipeline(ctx: RunContext) -> Plan:
    target = ctx.settings.target_version
    schema = schema_state(ctx, target)
    if schema.state == "newer":
        return Plan(state="newer", target=target, release=schema.release, notes=schema.notes)

    by_release = {step.release: step for step in schema.pending}
    steps: list[Step] = []
    install = next((s for s in schema.pending if isinstance(s, InstallStep)), None)
    if install is not None:
        steps.append(install)
    for release in releases_up_to(target):
        if install is None and release in by_release:
            steps.append(by_release[release])
        if release in DATA_GATES:
            fresh = install is not None or release in by_release
            steps += data_steps(ctx, release, schema_pending=fresh)
    if steps or _last_verification_failed(ctx):
        steps.append(VerifyStep(target))

    if install is not None:
        state = "empty"
    elif steps:
        state = "pending"
    else:
        state = "up_to_date"
    return Plan(state=state, target=target, release=schema.release, steps=steps, notes=schema.notes,
                details={"schema": schema.state, "applied": len(schema.applied or [])})


def schema_only_plan(ctx: RunContext) -> Plan:
    """`schema apply`: the schema migrations alone, verified without the data-owned columns."""
    target = ctx.settings.target_version
    schema = schema_state(ctx, target)
    if schema.state == "newer":
        return Plan(state="newer", target=target, release=schema.release, notes=schema.notes)
    steps: list[Step] = list(schema.pending)
    if steps:
        steps.append(VerifyStep(target, skip_data_columns=True))
    state = {"empty": "empty", "up_to_date": "up_to_date"}.get(schema.state, "pending")
    return Plan(state=state, target=target, release=schema.release, steps=steps, notes=schema.notes)


def data_steps(ctx: RunContext, gate: str, *, schema_pending: bool) -> list[Step]:
    """The data stages of ``gate`` that are pending (all of them when the gate's schema step is
    about to run: their tables do not exist yet, so each stage checks when it runs)."""
    from .data.registry import data_steps as pending_stages

    return list(pending_stages(ctx, gate, schema_pending=schema_pending))


def _last_verification_failed(ctx: RunContext) -> bool:
    try:
        row = db.query_one(
            ctx.conn, f"SELECT status FROM {dialect.quote(JOURNAL_TABLE)} WHERE step = %s ORDER BY id DESC LIMIT 1",
            (VerifyStep.name_for(),))
    except pymysql.err.ProgrammingError as exc:
        if dialect.error_code(exc) == 1146:
            return False
        raise
    return bool(row) and row[0] != "finished"
