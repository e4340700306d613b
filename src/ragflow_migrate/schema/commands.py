"""``ragflow-migrate schema diff | generate | apply``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import events
from ..config import Settings
from ..errors import ConfigError, DriftError, ExitCode
from ..steps import Plan, RunContext, Step, StepPlan, StepResult
from . import chain, widenings
from .diff import compare, drift, render
from .executor import execute_statement
from .operations import DropColumn, DropTable


def register(sub: Any, add: Any) -> None:
    schema = sub.add_parser("schema", help="compare, generate and apply schema migrations only",
                            description="compare, generate and apply schema migrations only")
    verbs = schema.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    diff = add(verbs, "diff", "compare the target release's schema with the live database "
                f"(exit 0 in sync, {int(ExitCode.DRIFT)} on drift)")
    diff.add_argument("--json", action="store_true", help="machine-readable output")
    diff.add_argument("--strict", action="store_true", help="count extra tables/columns/indexes and recorded "
                      "widenings as drift too")
    gen = add(verbs, "generate", "write the migration of a new RAGFlow release from a database that "
               "release created (for maintainers)")
    gen.add_argument("--version", required=True, dest="new_version", metavar="vX.Y.Z",
                     help="the new release (newer than every known one)")
    gen.add_argument("--drop", action="store_true", help="drop tables/columns the release no longer has "
                     "(default: retire them, keeping their data)")
    gen.add_argument("--output", help=f"directory to write to (default: the package's {chain.MIGRATIONS_DIR})")
    apply = add(verbs, "apply", "apply the pending schema migrations only (no data stages), or repair a drifted "
                "schema, then verify")
    apply.add_argument("--drop", action="store_true", help="also force the repairs that lose data (values that do "
                       "not fit are cut or converted), and afterwards drop what the target does not declare: "
                       "retired tables and columns (their data is lost) and this tool's backup tables")


def cmd_diff(args: argparse.Namespace, settings: Settings, log: Any, run_id: str, summary: dict) -> int:
    from .. import runner

    ctx = runner.open_context(settings, log, run_id)
    try:
        differences = compare(ctx.declared(chain.expected_schema(settings.target_version)),
                              ctx.live_schema(),
                              widened=widenings.recorded(ctx.conn))
    finally:
        runner.close_context(ctx)
    found = differences if args.strict else drift(differences)
    if args.json:
        sys.stdout.write(json.dumps({"target": settings.target_version, "in_sync": not found,
                                     "differences": [d.as_dict() for d in differences]}, indent=2) + "\n")
    else:
        sys.stdout.write(f"-- {settings.database} vs RAGFlow {settings.target_version}\n" + render(differences))
    widened = sum(d.kind == "widened" for d in differences)
    summary.update(outcome="in_sync" if not found else "drift", drift=len(drift(differences)),
                   extra=len(differences) - len(drift(differences)) - widened, widened=widened)
    if found:
        raise DriftError(f"{len(found)} difference(s) from RAGFlow {settings.target_version}'s schema",
                         hint="`ragflow-migrate run` applies pending migrations and repairs drift without losing "
                         "data; extras and recorded widenings are kept on purpose")
    return int(ExitCode.OK)


def cmd_generate(args: argparse.Namespace, settings: Settings, log: Any, run_id: str, summary: dict) -> int:
    from .. import runner
    from .generate import write_migration

    directory = Path(args.output) if args.output else chain.MIGRATIONS_DIR
    if not directory.is_dir():
        raise ConfigError(f"flag --output: {directory} is not a directory")
    ctx = runner.open_context(settings, log, run_id)
    try:
        live = ctx.live_schema()
    finally:
        runner.close_context(ctx)
    try:
        path = write_migration(chain.expected_schema(chain.release_of(chain.migration_names()[-1])), live,
                               version=args.new_version, drop=args.drop, directory=directory)
    except ValueError as exc:
        raise ConfigError(f"flag --version: {exc}") from None
    sys.stdout.write(f"{path}\n")
    summary.update(outcome="generated", file=str(path))
    return int(ExitCode.OK)


def cmd_apply(args: argparse.Namespace, settings: Settings, log: Any, run_id: str, summary: dict) -> int:
    from .. import runner
    from ..pipeline import schema_only_plan

    def planner(ctx: RunContext) -> Plan:
        plan = schema_only_plan(ctx, drop=args.drop)
        if args.drop:
            drops = DropExtras(settings.target_version)
            if drops.operations(ctx):
                plan.steps.append(drops)
                plan.state = "pending" if plan.state == "up_to_date" else plan.state
        return plan

    ctx = None
    report = runner.RunReport(outcome="noop")
    try:
        ctx = runner.open_context(settings, log, run_id)
        runner.run(ctx, planner, report)
    finally:
        summary["steps"] = [s.as_dict() for s in report.steps]
        runner.close_context(ctx)
    summary["outcome"] = report.outcome
    return int(ExitCode.OK)


class DropExtras(Step):
    """``--drop``: remove what the target release does not declare (data is lost)."""

    kind = "schema"

    def __init__(self, target: str) -> None:
        self.target = target
        self.name = "schema drop extras"
        self.release = target

    def operations(self, ctx: RunContext) -> list[Any]:
        differences = compare(ctx.declared(chain.expected_schema(self.target)),
                              ctx.live_schema())
        ops: list[Any] = []
        for d in differences:
            if d.kind in ("extra_table", "backup_table"):
                ops.append(DropTable(d.table))
            elif d.kind == "extra_column":
                ops.append(DropColumn(d.table, d.name or ""))
        return ops

    def plan(self, ctx: RunContext) -> StepPlan:
        live = ctx.live_schema()
        ops = self.operations(ctx)
        sql = [s.sql for op in ops for s in op.statements(live, live)]
        return StepPlan(self.name, f"drop {len(ops)} table(s)/column(s) the target does not declare", sql=sql)

    def apply(self, ctx: RunContext) -> StepResult:
        live = ctx.live_schema()
        count = 0
        for op in self.operations(ctx):
            for statement in op.statements(live, live):
                ctx.checkpoint()
                ctx.log.warning(events.STEP_NOTICE, step=self.name, message=op.describe())
                execute_statement(ctx, self.name, statement)
                count += 1
        return StepResult(changes=count)


HANDLERS = {"schema diff": cmd_diff, "schema generate": cmd_generate, "schema apply": cmd_apply}
REPORTS = {"schema diff", "schema generate"}
