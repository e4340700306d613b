"""Operator-facing reports: ``status`` and ``plan``, as dictionaries and as text.

``status`` answers in a few closed states:

* ``empty``: no RAGFlow table yet; ``run`` installs the target release;
* ``up_to_date``: nothing pending;
* ``pending``: steps are pending and nobody is working on them;
* ``in_progress``: steps are pending and a ragflow-migrate runner holds the lock;
* ``failed``: steps are pending and the last run stopped in the middle of one;
* ``drifted``: every migration and data stage is applied, but the live schema differs from the
  target's (a table, column or index dropped, a column narrowed, converted or made NOT NULL by
  hand); ``run`` repairs what it can without losing data (``drift`` lists each difference);
* ``newer``: the database is at a release this tool does not know; ``run`` refuses it.

Columns widened on the operator's decision (``--widen-columns``) are not drift: ``deviations``
lists them.
"""

from __future__ import annotations

from typing import Any

from .db.lock import describe_holder
from .journal import last_entries
from .schema.diff import Difference
from .schema.state import recorded_deviations
from .steps import Plan, RunContext, StepPlan


def status_dict(ctx: RunContext, planner: Any) -> dict[str, Any]:
    plan: Plan = planner(ctx)
    holder = ctx.backend.lock_holder(ctx.conn, ctx.settings, ctx.server)
    entries = last_entries(ctx.conn)
    last_run = _last_run(entries)
    state = plan.state
    ours = bool(holder and holder.get("tool") == "ragflow-migrate" and not holder.get("stale"))
    if state in ("pending", "empty"):
        if ours:
            state = "in_progress"
        elif last_run and last_run["status"] in ("failed", "interrupted"):
            state = "failed"
    elif state == "drifted" and ours:
        state = "in_progress"
    details = dict(plan.details)
    return {
        "state": state,
        "database": f"{ctx.settings.host}:{ctx.settings.port}/{ctx.settings.database}",
        "server": ctx.server.label if ctx.server else None,
        "topology": ctx.server.topology.as_fields() if ctx.server and ctx.server.topology else None,
        "release": plan.release,
        "target": plan.target,
        "pending": plan.pending,
        "lock": {"name": ctx.settings.lock_name, "holder": holder},
        "last_run": last_run,
        "notes": plan.notes,
        "drift": details.pop("drift", []),
        "deviations": [{"table": w.table, "column": w.column, "before": w.before, "after": w.after,
                        "reason": w.reason, "run_id": w.run_id, "widened_at": w.widened_at}
                       for w in recorded_deviations(ctx)],
        "details": details,
    }


_DIFFERENCE_FIELDS = ("kind", "table", "name", "expected", "actual")


def _last_run(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not entries:
        return None
    run_id = entries[0]["run_id"]
    steps = [e for e in reversed(entries) if e["run_id"] == run_id]
    statuses = {e["status"] for e in steps}
    if "failed" in statuses:
        status = "failed"
    elif "started" in statuses:
        status = "interrupted"
    else:
        status = "finished"
    return {
        "run_id": run_id,
        "status": status,
        "instance": steps[-1]["instance"],
        "started_at": steps[0]["started_at"],
        "finished_at": steps[-1]["finished_at"],
        "steps": [{k: e[k] for k in ("step", "status", "duration_s", "rows")} for e in steps],
    }


def render_status(data: dict[str, Any]) -> str:
    lines = [
        f"database:  {data['database']} ({data['server']})",
        f"state:     {data['state']}",
        f"release:   {data['release'] or 'unknown'} (target {data['target']})",
    ]
    pending = data["pending"]
    lines.append(f"pending:   {len(pending)} step(s)" + (":" if pending else ""))
    lines += [f"  - {name}" for name in pending]
    drift = data.get("drift") or []
    if drift:
        lines.append(f"drift:     {len(drift)} difference(s) from the target's schema:")
        lines += [f"  - {Difference(**{k: d[k] for k in _DIFFERENCE_FIELDS}).describe()}" for d in drift]
    lines += [f"deviation: {d['table']}.{d['column']} widened from {d['before']} to {d['after']} "
              f"(--widen-columns, run {d['run_id']})" for d in data.get("deviations") or []]
    holder = data["lock"]["holder"]
    lines.append(f"lock:      {data['lock']['name']}: " + (f"held by {describe_holder(holder)}" if holder else "free"))
    run = data["last_run"]
    if run:
        lines.append(f"last run:  {run['run_id']} on {run['instance']}: {run['status']} "
                     f"({len(run['steps'])} steps, started {run['started_at']})")
        lines += [f"  - {s['step']}: {s['status']}" for s in run["steps"] if s["status"] != "finished"]
    lines += [f"note:      {note}" for note in data["notes"]]
    return "\n".join(lines) + "\n"


def plan_dict(ctx: RunContext, plan: Plan, step_plans: list[StepPlan]) -> dict[str, Any]:
    return {
        "state": plan.state,
        "database": f"{ctx.settings.host}:{ctx.settings.port}/{ctx.settings.database}",
        "release": plan.release,
        "target": plan.target,
        "notes": plan.notes,
        "steps": [p.as_dict() for p in step_plans],
    }


def render_plan(data: dict[str, Any]) -> str:
    lines = [f"-- database {data['database']}: {data['state']}, at {data['release'] or 'unknown'}, "
             f"target {data['target']}"]
    lines += [f"-- note: {note}" for note in data["notes"]]
    if not data["steps"]:
        lines.append("-- nothing to do")
    for step in data["steps"]:
        lines.append("")
        lines.append(f"-- step {step['step']}: {step['summary']}")
        for key, value in step["counts"].items():
            lines.append(f"--   {key}: {value}")
        lines += [f"--   note: {note}" for note in step["notes"]]
        lines += [sql.rstrip(";") + ";" for sql in step["sql"]]
    return "\n".join(lines) + "\n"


def render_blockers(data: dict[str, Any], prefix: str = "") -> str:
    """The preflight's findings (``blockers``, ``widenings``), as lines for ``status`` and ``plan``."""
    lines = []
    for b in data.get("blockers") or []:
        lines.append(f"{prefix}BLOCKER (exit {b['exit_code']}): {b['message']}")
        lines.append(f"{prefix}  remedy: {b['remedy']}")
    for w in data.get("widenings") or []:
        lines.append(f"{prefix}WIDEN (--widen-columns): {w['table']}.{w['column']} ({w['column_type']}) for {w['count']} "
                     f"value(s) of up to {w['longest_chars']} characters from {w['source']}")
    return "\n".join(lines) + ("\n" if lines else "")
