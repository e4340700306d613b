"""The whole pipeline, in release order: which steps are pending for this database.

    schema v0.20.0 … schema v0.26.0 → data stages of v0.26.0 → schema v0.26.4 → schema v0.27.0
    → data stages of v0.27.0 → verify schema

Running data stages right after the schema release that introduced them is what makes a
direct upgrade from v0.25 (or older) to v0.27 come out the same as going through v0.26.
The planner only reads metadata (the history table, the table list, the journal); when nothing
is pending it answers in a few milliseconds, after one look at the live schema (information_schema,
~10 ms): a schema changed by hand since (a table, column or index dropped, a column narrowed or
converted) is ``drifted``, and the schema repair step runs before the verification.
"""

from __future__ import annotations

from . import backends
from .db import connect as db
from .journal import TABLE as JOURNAL_TABLE
from .releases import releases_up_to
from .schema.diff import Difference
from .schema.repair import RepairStep
from .schema.state import schema_drift, schema_state
from .schema.steps import InstallStep, VerifyStep, deferred_columns
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
    drifted: list[Difference] = []
    if not steps and schema.state == "up_to_date":
        # Every migration applied, no data stage pending: nothing the repair could fight.
        drifted = schema_drift(ctx, target)
        if drifted:
            steps.append(RepairStep(target))
    if steps or _last_verification_failed(ctx):
        steps.append(VerifyStep(target))

    if install is not None:
        state = "empty"
    elif drifted:
        state = "drifted"
    elif steps:
        state = "pending"
    else:
        state = "up_to_date"
    details = {"schema": schema.state, "applied": len(schema.applied or [])}
    return Plan(state=state, target=target, release=schema.release, steps=steps,
                notes=schema.notes + _drift_notes(drifted, target), details=_with_drift(details, drifted))


def schema_only_plan(ctx: RunContext, *, drop: bool = False) -> Plan:
    """`schema apply`: the schema migrations alone (or the repair of a drifted schema: ``drop``
    forces the lossy repairs), verified without the data-owned columns."""
    target = ctx.settings.target_version
    schema = schema_state(ctx, target)
    if schema.state == "newer":
        return Plan(state="newer", target=target, release=schema.release, notes=schema.notes)
    steps: list[Step] = list(schema.pending)
    drifted: list[Difference] = []
    if not steps and schema.state == "up_to_date":
        # Data stages may be pending here: the columns they convert are theirs, not drift.
        drifted = schema_drift(ctx, target, skip_columns=deferred_columns(target))
        if drifted:
            steps.append(RepairStep(target, drop=drop))
    if steps:
        steps.append(VerifyStep(target, skip_data_columns=True))
    state = "drifted" if drifted else {"empty": "empty", "up_to_date": "up_to_date"}.get(schema.state, "pending")
    return Plan(state=state, target=target, release=schema.release, steps=steps,
                notes=schema.notes + _drift_notes(drifted, target), details=_with_drift({}, drifted))


def _drift_notes(drifted: list[Difference], target: str) -> list[str]:
    if not drifted:
        return []
    listed = "; ".join(d.describe() for d in drifted[:3]) + ("; …" if len(drifted) > 3 else "")
    return [f"the live schema differs from RAGFlow {target}'s in {len(drifted)} place(s) ({listed}); "
            "the schema repair restores what it can without losing data"]


def _with_drift(details: dict, drifted: list[Difference]) -> dict:
    if drifted:
        details["drift"] = [d.as_dict() for d in drifted]
    return details


def data_steps(ctx: RunContext, gate: str, *, schema_pending: bool) -> list[Step]:
    """The data stages of ``gate`` that are pending (all of them when the gate's schema step is
    about to run: their tables do not exist yet, so each stage checks when it runs)."""
    from .data.registry import data_steps as pending_stages

    return list(pending_stages(ctx, gate, schema_pending=schema_pending))


def _last_verification_failed(ctx: RunContext) -> bool:
    try:
        row = db.query_one(
            ctx.conn, f"SELECT status FROM {JOURNAL_TABLE} WHERE step = %s ORDER BY id DESC LIMIT 1",
            (VerifyStep.name_for(),))
    except Exception as exc:
        if backends.is_missing_table(exc):
            return False
        raise
    return bool(row) and row[0] != "finished"
