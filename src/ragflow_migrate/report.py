"""Operator-facing reports: ``status`` and ``plan``, as dictionaries and as text.

``status`` answers in a few closed states:

* ``empty``: no RAGFlow table yet; ``run`` installs the target release;
* ``up_to_date``: nothing pending;
* ``pending``: steps are pending and nobody is working on them;
* ``in_progress``: steps are pending and a ragflow-migrate runner holds the lock;
* ``failed``: steps are pending and the last run stopped in the middle of one;
* ``newer``: the database is at a release this tool does not know; ``run`` refuses it.
"""

from __future__ import annotations

from typing import Any

from .db.lock import describe_holder, lock_holder
from .journal import last_entries
from .steps import Plan, RunContext, StepPlan


def status_dict(ctx: RunContext, planner: Any) -> dict[str, Any]:
    plan: Plan = planner(ctx)
    holder = lock_holder(ctx.conn, ctx.settings.lock_name)
    entries = last_entries(ctx.conn)
    last_run = _last_run(entries)
    state = plan.state
    if state in ("pending", "empty"):
        if holder and holder.get("tool") == "ragflow-migrate":
            state = "in_progress"
        elif last_run and last_run["status"] in ("failed", "interrupted"):
            state = "failed"
    return {
        "state": state,
        "database": f"{ctx.settings.host}:{ctx.settings.port}/{ctx.settings.database}",
        "server": ctx.server.label if ctx.server else None,
        "release": plan.release,
        "target": plan.target,
        "pending": plan.pending,
        "lock": {"name": ctx.settings.lock_name, "holder": holder},
        "last_run": last_run,
        "notes": plan.notes,
        "details": plan.details,
    }


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
