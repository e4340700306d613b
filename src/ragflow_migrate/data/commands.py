"""The ``data`` verb: RAGFlow's data-migration modes, as its users know them.

    ragflow-migrate data                      # = --dry-run: what would change, counts and sample rows
    ragflow-migrate data --execute            # run the pending stages (under the advisory lock)
    ragflow-migrate data --execute --stages tenant_model_seeding,model_type_merge
    ragflow-migrate data --create-table-only  # create missing provider/instance/model tables
    ragflow-migrate data --list-stages

``--stages`` is checked before anything else: an unknown name is a configuration error (exit 2,
FIX D19), never a silently withheld marker. Without ``--stages`` the pending stages of every gate
up to ``--target-version`` run (the same decision ``run`` makes); with it, exactly those stages
run, in pipeline order, whatever their record says (every stage is idempotent). A dry run
changes nothing at all, not even DDL.

``cli.py`` wires it like the schema verbs: ``register``, ``HANDLERS`` and ``REPORTS`` (the default
mode prints a report on stdout, so the logs go to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import ConfigError, ExitCode
from ..releases import parse_release
from . import ddl, registry
from .sqlkit import Meta
from .stages.base import DataStage


def register(subparsers: Any, add: Any) -> None:
    """Add the ``data`` verb; ``add(subparsers, name, help)`` makes a sub-parser with the common options."""
    parser = add(subparsers, "data", "RAGFlow's model-data migration (tenant_llm → tenant_model_*): a dry run "
                 "unless --execute or --create-table-only")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true",
                      help="(the default) show what would change, with counts and sample rows; changes nothing")
    mode.add_argument("--create-table-only", action="store_true",
                      help="create the missing tenant_model_provider/instance/model tables, move no data")
    mode.add_argument("--execute", action="store_true", help="run the stages (takes the advisory lock)")
    mode.add_argument("--list-stages", action="store_true", help="list the stages in order, with their gates")
    parser.add_argument("--stages", help="comma-separated stage names (default: the pending ones); "
                        f"known: {', '.join(registry.STAGE_NAMES)}")
    parser.add_argument("--cross-provider-fallback", action="store_true",
                        help="stage 7: when a legacy provider is gone, bind to the one other provider holding that "
                        "model (only when exactly one does; each case is logged). Off by default (D13).")
    parser.add_argument("--json", action="store_true", help="machine-readable dry-run output")


def wanted_stages(args: argparse.Namespace) -> list[DataStage] | None:
    """The stages named by ``--stages`` (validated), or None for "the pending ones"."""
    if not getattr(args, "stages", None):
        return None
    names = [n.strip() for n in str(args.stages).split(",") if n.strip()]
    return registry.select(names)


def gates_for(target: str) -> tuple[str, ...]:
    return tuple(g for g in registry.GATES if parse_release(g) <= parse_release(target))


def cmd_data(args: argparse.Namespace, settings: Any, log: Any, run_id: str, summary: dict) -> int:
    chosen = wanted_stages(args)  # before connecting: a typo fails fast (D19)
    if args.list_stages:
        _print(_stage_list())
        summary.update(outcome="listed")
        return int(ExitCode.OK)
    from .. import runner

    ctx = runner.open_context(settings, log, run_id)
    ctx.extras["data.cross_provider_fallback"] = bool(args.cross_provider_fallback)
    if chosen is not None:  # the same names, as this backend's stages
        chosen = registry.select([s.stage for s in chosen], ctx)
    try:
        if args.execute:
            return _execute(ctx, chosen, summary)
        if args.create_table_only:
            return _create_tables(ctx, chosen, summary)
        return _dry_run(ctx, args, chosen, summary)
    finally:
        runner.close_context(ctx)


def _pending(ctx: Any, chosen: list[DataStage] | None) -> list[DataStage]:
    if chosen is not None:
        return chosen
    return [s for gate in gates_for(ctx.settings.target_version) for s in registry.data_steps(ctx, gate)]


def _dry_run(ctx: Any, args: argparse.Namespace, chosen: list[DataStage] | None, summary: dict) -> int:
    ctx.dry_run = True
    stages = _pending(ctx, chosen)
    plans = [s.plan(ctx) for s in stages]
    data = {"database": f"{ctx.settings.host}:{ctx.settings.port}/{ctx.settings.database}", "mode": "dry-run",
            "stages": [p.as_dict() for p in plans]}
    if len(stages) > 1:
        data["note"] = ("each stage is counted on the data as it is now: stages after the first pending one "
                        "will find more to do once the earlier ones have run")
    _print(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n" if args.json else _render(data))
    summary.update(outcome="planned", pending=[s.name for s in stages],
                   counts={p.step: p.counts for p in plans})
    return int(ExitCode.OK)


def _execute(ctx: Any, chosen: list[DataStage] | None, summary: dict) -> int:
    from .. import preflight, runner
    from ..journal import Journal

    summary["steps"] = []
    stages = _pending(ctx, chosen)
    if not stages:
        summary["outcome"] = "noop"
        return int(ExitCode.OK)
    preflight.enforce(ctx, list(stages))  # everything knowable, before the lock's first write
    ctx.lock = ctx.backend.open_lock(ctx.settings, ctx.log, ctx.run_id, ctx.server)
    ctx.lock.acquire()
    try:
        checked = [s.name for s in stages]
        stages = _pending(ctx, chosen)  # decided under the lock: another runner may have done it
        preflight.enforce_again(ctx, checked, list(stages))
        journal = Journal(ctx.conn, ctx.run_id, ctx.settings.instance, ctx.backend)
        for stage in stages:
            ctx.checkpoint()
            summary["steps"].append(runner.run_step(ctx, stage, journal).as_dict())
        ctx.checkpoint()
    finally:
        ctx.lock.release()
        ctx.lock = None
    summary["outcome"] = "migrated" if summary["steps"] else "noop"
    return int(ExitCode.OK)


def _create_tables(ctx: Any, chosen: list[DataStage] | None, summary: dict) -> int:
    if getattr(ctx.backend, "transactional_ddl", False):
        raise ConfigError(f"data --create-table-only creates the model tables on MySQL only; on "
                          f"{ctx.backend.label} the schema migrations create them",
                          hint="`ragflow-migrate schema apply` (or `run`) creates every table of the target release")
    stages = chosen if chosen is not None else registry.all_stages()
    ctx.lock = ctx.backend.open_lock(ctx.settings, ctx.log, ctx.run_id, ctx.server)
    ctx.lock.acquire()
    try:
        meta = Meta(ctx.conn)
        tables = tuple(t for s in stages for t in s.creates)
        created = ddl.create_missing(ctx, meta, tables)
    finally:
        ctx.lock.release()
        ctx.lock = None
    _print(("created: " + ", ".join(created)) if created else "nothing to create: the tables exist")
    summary.update(outcome="tables_created" if created else "noop", created=created)
    return int(ExitCode.OK)


def _stage_list() -> str:
    lines = [f"{'stage':<28} {'gate':<8} description"]
    for stage in registry.all_stages():
        lines.append(f"{stage.stage:<28} {stage.gate:<8} {stage.description}")
    return "\n".join(lines)


def _render(data: dict[str, Any]) -> str:
    lines = [f"-- data migration dry run on {data['database']}: nothing was changed"]
    if not data["stages"]:
        lines.append("-- nothing to do: every data stage is done")
    if data.get("note"):
        lines.append(f"-- note: {data['note']}")
    for stage in data["stages"]:
        lines.append("")
        lines.append(f"-- {stage['step']}: {stage['summary']}")
        for key, value in stage["counts"].items():
            lines.append(f"--   {key}: {value}")
        for note in stage["notes"]:
            lines.append(f"--   note: {note}")
        for row in stage["samples"]:
            lines.append(f"--   e.g. {json.dumps(row, default=str, ensure_ascii=False)}")
    return "\n".join(lines)


def _print(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


HANDLERS = {"data": cmd_data}
REPORTS = {"data"}
