"""The orchestrator: the one place that owns the order of a run.

    config → wait for MySQL → unlocked pre-check → lock → plan again → steps → release → summary

The unlocked pre-check reads only cheap metadata; when nothing is pending the run ends there,
without touching the lock (a no-op run by every replica costs a few milliseconds). What is
applied is read again once the lock is held, because another runner may have finished in
between. Before each step the run checks that it still owns the lock and was not asked to
stop; each step is recorded in the journal.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from . import backends, events, preflight
from .config import Settings
from .errors import DatabaseNewerError, MigrateError
from .journal import Journal
from .releases import KNOWN_RELEASES
from .steps import Plan, Planner, RunContext, Step, StepResult


@dataclasses.dataclass
class StepOutcome:
    step: str
    kind: str
    status: str  # "applied" | "skipped" (found nothing to do: see skip_reason) | "failed"
    duration_s: float
    rows: int = 0
    changes: int = 0
    reason: str | None = None  # why a step was skipped

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def skip_reason(step: Step, result: StepResult) -> str | None:
    """Why a completed step counts as skipped, or None when it did something.

    Skipped: it changed nothing and said why (``details["skipped"]``, e.g. a data stage whose
    tables do not exist), or it is a data stage that changed nothing and read no row.
    """
    if result.changes:
        return None
    reason = result.details.get("skipped") if result.details else None
    if reason:
        return str(reason)
    if step.kind == "data" and not result.rows:
        return "nothing to do: no row to migrate"
    return None


@dataclasses.dataclass
class RunReport:
    outcome: str  # "noop" | "migrated"
    plan: Plan | None = None
    steps: list[StepOutcome] = dataclasses.field(default_factory=list)
    server: str | None = None


def open_context(settings: Settings, log: Any, run_id: str, *, wait: bool = True) -> RunContext:
    """Wait for the database and open the work connection."""
    backend = backends.get(settings)
    server = backend.wait_for_database(settings, log) if wait else None
    conn = backend.connect(settings)
    if server is None:
        server = backend.identify(conn)
    backend.tune(conn, server, log)

    def open_session() -> Any:
        other = backend.connect(settings)
        backend.tune(other, server, log)
        return other

    return RunContext(settings=settings, log=log, run_id=run_id, server=server, conn=conn,
                      open_session=open_session)


def close_context(ctx: RunContext | None) -> None:
    if ctx is None:
        return
    if ctx.lock is not None:
        ctx.lock.release()
        ctx.lock = None
    ctx.backend.close_quietly(ctx.conn)
    ctx.conn = None


def run(ctx: RunContext, planner: Planner, report: RunReport | None = None) -> RunReport:
    """Bring the database to the target; the caller opened ``ctx`` and closes it.

    ``report`` (when given) is filled in as the run goes, so that a failure still reports
    the steps that completed before it.
    """
    report = report or RunReport(outcome="noop")
    report.server = ctx.server.label if ctx.server else None
    plan = _checked(planner(ctx))
    if not plan.steps:
        _log_plan(ctx, plan)
        report.plan = plan
        return report

    report.plan = plan
    preflight.enforce(ctx, plan.steps)  # before the lock, whose bookkeeping is already a write
    ctx.lock = ctx.backend.open_lock(ctx.settings, ctx.log, ctx.run_id, ctx.server)
    ctx.lock.acquire()
    try:
        checked = plan.pending
        plan = _checked(planner(ctx))  # under the lock: another runner may have done the work meanwhile
        report.plan = plan
        preflight.enforce_again(ctx, checked, plan.steps)
        _log_plan(ctx, plan)
        journal = Journal(ctx.conn, ctx.run_id, ctx.settings.instance, ctx.backend)
        for step in plan.steps:
            ctx.checkpoint()
            started = time.monotonic()
            try:
                report.steps.append(run_step(ctx, step, journal))
            except BaseException:
                report.steps.append(StepOutcome(step.name, step.kind, "failed",
                                                round(time.monotonic() - started, 3)))
                raise
            report.outcome = "migrated"
        ctx.checkpoint()
    finally:
        ctx.lock.release()
        ctx.lock = None
    return report


def run_step(ctx: RunContext, step: Step, journal: Journal | None) -> StepOutcome:
    ctx.log.info(events.STEP_STARTED, step=step.name, kind=step.kind, release=step.release)
    started = time.monotonic()
    entry = journal.started(step.name, step.kind, step.release) if journal and step.journaled else None
    try:
        result = step.apply(ctx)
    except BaseException as exc:
        duration = time.monotonic() - started
        error = exc if isinstance(exc, MigrateError) else ctx.backend.classify_error(exc, step.name)
        if entry is not None:
            try:
                journal.finished(entry, "failed", duration, detail=error.as_fields() if error else None)
            except (*ctx.backend.driver_errors, OSError):
                pass  # the work connection may be what failed; the journal row stays "started"
        if error is not None:
            ctx.log.error(events.STEP_FAILED, step=step.name, **error.as_fields())
            if error is not exc:
                raise error from exc
        raise
    duration = time.monotonic() - started
    reason = skip_reason(step, result)
    if reason is not None:
        result.details["skipped"] = reason  # the journal records it (status "finished", as every completed step)
    if entry is not None:
        journal.finished(entry, "finished", duration, result.rows, result.changes, result.details or None)
    if reason is not None:
        ctx.log.info(events.STEP_SKIPPED, step=step.name, reason=reason)
        return StepOutcome(step.name, step.kind, "skipped", round(duration, 3), result.rows, result.changes,
                           reason=reason)
    ctx.log.info(events.STEP_FINISHED, step=step.name, duration_s=round(duration, 3), rows=result.rows,
                 changes=result.changes)
    return StepOutcome(step.name, step.kind, "applied", round(duration, 3), result.rows, result.changes)


def classify_db_error(exc: BaseException, step: str, settings: Settings | None = None) -> MigrateError | None:
    """Map a driver error raised inside a step to a failure class; None for non-DB errors."""
    return backends.get(settings if settings is not None else "mysql").classify_error(exc, step)


def _checked(plan: Plan) -> Plan:
    if plan.state == "newer":
        if plan.release in KNOWN_RELEASES:  # a release we know, past the target: a downgrade
            raise DatabaseNewerError(
                f"the database is at {plan.release}, past the target {plan.target}; downgrades are not "
                "supported; nothing was changed",
                hint=f"target {plan.release} or later (--target-version), or restore a backup taken "
                "before the upgrade",
                release=plan.release, notes=plan.notes,
            )
        raise DatabaseNewerError(
            f"the database is at {plan.release or 'a release'}, newer than this tool knows "
            f"(it knows up to {KNOWN_RELEASES[-1]}); nothing was changed"
            + (f" ({'; '.join(plan.notes)})" if plan.notes else ""),
            hint="use the ragflow-migrate release made for that RAGFlow release",
            release=plan.release, notes=plan.notes,
        )
    return plan


def _log_plan(ctx: RunContext, plan: Plan) -> None:
    ctx.log.info(events.PLAN_READY, state=plan.state, release=plan.release, target=plan.target,
                 pending=plan.pending, count=len(plan.steps), notes=plan.notes or None)


def no_steps_planner(ctx: RunContext) -> Plan:
    """The planner with no steps registered: every database is up to date."""
    return Plan(state="up_to_date", target=ctx.settings.target_version)
