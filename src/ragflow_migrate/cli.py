"""Command line: each verb builds its context and calls the runner or a report.

Logs go to stdout for the verbs that do work (``run``, ``wait``, ``wait-for-version``); the
report verbs (``status``, ``plan``) print their report on stdout and log to stderr, so that
``status --json | jq`` works.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import peewee

from . import __version__, backends, events, interrupt, logs
from .config import (
    LOG_FORMATS,
    LOG_LEVELS,
    READ_ONLY_WAIT_TIMEOUT,
    SPECS,
    Settings,
    env_flag,
    load_settings,
)
from .errors import ConfigError, ExitCode, MigrateError, PendingError
from .releases import KNOWN_RELEASES, NEWEST_RELEASE

EXIT_CODE_HELP = "\n".join(f"  {code.value:>3}  {code.name.lower()}" for code in ExitCode)


# --- argument parsing -------------------------------------------------------------------------


class _NoPasswordFlag(argparse.Action):
    """There is no ``--password`` on purpose; say so without echoing the value (which would
    otherwise be taken as an abbreviation of ``--password-file`` and printed as a file name)."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kw: Any) -> None:
        parser.error("there is no --password flag: process arguments are visible to every user of the "
                     "machine (ps); set MYSQL_PASSWORD (POSTGRES_PASSWORD) or use --password-file")


def _common_options() -> argparse.ArgumentParser:
    # allow_abbrev=False everywhere: an abbreviation must never turn one option into another
    # (``--password SECRET`` into ``--password-file SECRET``).
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    conn = common.add_argument_group("connection (default: RAGFlow's variables, MYSQL_* or POSTGRES_* as DB_TYPE "
                                     "says, then --config)")
    conn.add_argument("--db-type", help="RAGFlow's database type (DB_TYPE, RAGFLOW_MIGRATE_DB_TYPE): mysql (default; "
                      "MySQL, MariaDB) or postgres (PostgreSQL: configured, but this release refuses it, exit 2)")
    conn.add_argument("--host", help="database host (MYSQL_HOST; POSTGRES_HOST)")
    conn.add_argument("--port", help="database port (MYSQL_PORT, default 3306; POSTGRES_PORT, default 5432)")
    conn.add_argument("--user", help="database user (MYSQL_USER, default root; POSTGRES_USER, default rag_flow)")
    conn.add_argument("--database", "--dbname", dest="database",
                      help="database (MYSQL_DBNAME; POSTGRES_DBNAME; default rag_flow)")
    conn.add_argument("--password-file", help="read the password from this file (MYSQL_PASSWORD or "
                      "POSTGRES_PASSWORD otherwise)")
    conn.add_argument("--password", nargs="?", action=_NoPasswordFlag, help=argparse.SUPPRESS)
    conn.add_argument("--config", help="RAGFlow service_conf.yaml (local.service_conf.yaml beside it is "
                      "laid over it; default /ragflow/conf/service_conf.yaml when present)")
    conn.add_argument("--ssl-ca", help="CA bundle: connect with TLS and verify the server")
    conn.add_argument("--pg-sslmode", help="PostgreSQL: libpq's sslmode, disable, allow, prefer, require, verify-ca or "
                      "verify-full (default prefer; verify-full with --ssl-ca)")
    tool = common.add_argument_group("behaviour (each also RAGFLOW_MIGRATE_<NAME>, e.g. RAGFLOW_MIGRATE_LOCK_TIMEOUT)")
    tool.add_argument("--target-version", help=f"RAGFlow release to migrate to (default {NEWEST_RELEASE}; "
                      f"known: {', '.join(KNOWN_RELEASES)})")
    tool.add_argument("--catalog", help="RAGFlow's llm_factories.json (default /ragflow/conf/llm_factories.json)")
    tool.add_argument("--wait-timeout", help="overall deadline to reach MySQL (default 300s for run, wait, "
                      f"wait-for-version, schema apply, data --execute; {READ_ONLY_WAIT_TIMEOUT:g}s for the read-only "
                      "status, plan, schema diff, data --dry-run)")
    tool.add_argument("--connect-timeout", help="timeout of one connection attempt (default 5s)")
    tool.add_argument("--lock-name", help="advisory lock name (default init_database_tables, RAGFlow's own)")
    tool.add_argument("--lock-timeout", help="how long to wait for the lock (default 600s)")
    tool.add_argument("--lock-poll", help="log the lock holder this often while waiting (default 2s)")
    tool.add_argument("--ddl-lock-wait", help="metadata-lock wait of one DDL attempt (default 5s)")
    tool.add_argument("--ddl-deadline", help="total metadata-lock wait per DDL statement (default 600s)")
    tool.add_argument("--batch-size", help="rows per data-migration transaction (default 5000)")
    tool.add_argument("--sessions", help="database sessions a data stage works on at once (default 2; 1 to 16)")
    tool.add_argument("--cluster-nodes", help="Galera or multi-primary nodes to lock, host:port,... (default: "
                      "the addresses the cluster lists; README: Locking on clusters)")
    tool.add_argument("--lease-ttl", help="cluster lease: a holder nobody can check is presumed dead after this "
                      "long without a heartbeat (default 60s)")
    tool.add_argument("--allow-blocking-ddl", action="store_const", const="true",
                      help="on Galera, allow a table rebuild above --blocking-ddl-rows (TOI: every node waits for it)")
    tool.add_argument("--blocking-ddl-rows", help="the estimated table size above which a rebuild needs "
                      "--allow-blocking-ddl on Galera, and an index is built CONCURRENTLY on PostgreSQL "
                      "(default 1000000)")
    tool.add_argument("--create-database", action="store_const", const="true",
                      help="create the database (utf8mb4) when it does not exist")
    tool.add_argument("--widen-columns", action="store_const", const="true",
                      help="where a legacy value fits no lossless form of its target column (an API key over 512 "
                      "characters), widen exactly that column to the smallest type holding the data; recorded and "
                      "reported by `schema diff` and `status` (without it: exit 10 before anything is written)")
    tool.add_argument("--log-format", choices=LOG_FORMATS, help="json, console, or auto (console on a TTY)")
    tool.add_argument("--log-level", choices=LOG_LEVELS, help="lowest level logged (default info)")
    tool.add_argument("--termination-log", help="where to write the summary (default /dev/termination-log)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="ragflow-migrate",
        description="Upgrade a RAGFlow MySQL database (schema and model data) to a RAGFlow release, "
        "safely: waits for MySQL, takes an advisory lock, applies what is pending, verifies.",
        epilog="exit codes:\n" + EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"ragflow-migrate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add_to(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, parents=[common], help=help_text, description=help_text, allow_abbrev=False,
                                     epilog="exit codes:\n" + EXIT_CODE_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return add_to(sub, name, help_text)

    run = add("run", "apply every pending schema migration and data stage, then verify (the image's default)")
    run.add_argument("--dry-run", action="store_true", help="show what would run, change nothing (same as plan)")
    plan = add("plan", "show what `run` would do, as SQL and counts; changes nothing")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    status = add("status", "report the database's state: release, pending steps, lock holder, last run")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--check", action="store_true",
                        help=f"exit {int(ExitCode.PENDING)} when work is pending (for CI gates and probes)")
    add("wait", "wait until MySQL accepts connections, then exit")
    wfv = add("wait-for-version", "wait until the database is at the target release (for app pods when "
              "the migration runs as a Job)")
    wfv.add_argument("--timeout", default="600", help="give up after this long (default 600s)")
    wfv.add_argument("--interval", default="5", help="poll interval (default 5s)")
    for register in _extensions():
        register(sub, add_to)
    return parser


def _extensions() -> list[Callable[[Any, Callable[..., argparse.ArgumentParser]], None]]:
    """Verb groups defined beside their subject: register(subparsers, add_to) each."""
    from .schema import commands as schema_commands

    _HANDLERS.update(schema_commands.HANDLERS)
    REPORT_COMMANDS.update(schema_commands.REPORTS)
    from .data import commands as data_commands

    _HANDLERS.update(data_commands.HANDLERS)
    REPORT_COMMANDS.update(data_commands.REPORTS)
    return [schema_commands.register, data_commands.register]
_HANDLERS: dict[str, Callable[[argparse.Namespace, Settings, Any, str, dict[str, Any]], int]] = {}
#: Verbs whose output is a report on stdout; their logs go to stderr.
REPORT_COMMANDS: set[str] = {"status", "plan"}


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in SPECS if getattr(args, name, None) is not None}


# --- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return int(ExitCode.CONFIG)

    started = time.monotonic()
    run_id = logs.new_run_id()
    key = _handler_key(args)
    report_verb = key in REPORT_COMMANDS or (key == "run" and args.dry_run)
    stream = logs.STDERR if report_verb else logs.STDOUT  # followed at each write, never a snapshot
    logs.bind_run(run_id)
    # Until the settings are read, log in the format asked for by flag or variable, if valid.
    early_format = args.log_format or (env_flag("log_format") or "auto").lower()
    logs.configure(fmt=early_format if early_format in LOG_FORMATS else "auto", stream=stream)
    log = logs.get_logger()

    settings: Settings | None = None
    summary: dict[str, Any] = {"command": args.command, "run_id": run_id}
    try:
        settings = load_settings(_flags(args), wait_timeout_default=_wait_default(key, args))
        logs.configure(fmt=settings.log_format, level=settings.log_level, stream=stream,
                       secrets=[settings.password.reveal()])
        log = logs.get_logger()
        interrupt.install(lambda name: log.warning(events.SIGNAL_RECEIVED, signal=name))
        log.info(events.RUN_STARTED, command=args.command, version=__version__,
                 target=settings.target_version, settings=settings.describe())
        summary.update(database=f"{settings.host}:{settings.port}/{settings.database}",
                       target=settings.target_version)
        handler = _HANDLERS[key]
        try:
            code = handler(args, settings, log, run_id, summary)
        except (*backends.get(settings).driver_errors, peewee.PeeweeException, ConnectionError) as exc:
            # A driver error outside any step (planning, the lock, the journal): the same
            # classes as inside one (lost connection, missing privilege...), not "a bug".
            error = backends.get(settings).classify_error(exc, args.command)
            if error is None:
                raise
            raise error from exc
        summary.setdefault("outcome", "ok")
    except MigrateError as exc:
        code = int(exc.exit_code)
        summary.update(outcome=exc.outcome, **exc.as_fields())
    except Exception as exc:  # noqa: BLE001 - the last line of defence: report, don't crash silently
        code = int(ExitCode.INTERNAL)
        summary.update(outcome="internal_error", error=f"{type(exc).__name__}: {exc}",
                       hint="this is a bug in ragflow-migrate; please report it with this log")
        log.exception(events.RUN_FINISHED, **{k: v for k, v in summary.items() if k != "command"},
                      command=args.command, exit_code=code)
        _finish(settings, summary, code, started, log=None)
        return code
    _finish(settings, summary, code, started, log)
    return code


#: Verbs that only read (``data`` too, unless --execute or --create-table-only; ``run --dry-run``
#: is ``plan``): without a configured wait deadline they give up after READ_ONLY_WAIT_TIMEOUT.
READ_ONLY_COMMANDS = frozenset({"status", "plan", "schema diff", "data"})


def _wait_default(key: str, args: argparse.Namespace) -> float | None:
    """The verb's default wait deadline when it differs from the settings table's (300 s)."""
    writes = any(getattr(args, flag, False) for flag in ("execute", "create_table_only"))
    if (key in READ_ONLY_COMMANDS and not writes) or (key == "run" and getattr(args, "dry_run", False)):
        return READ_ONLY_WAIT_TIMEOUT
    return None


def _handler_key(args: argparse.Namespace) -> str:
    sub = getattr(args, "subcommand", None)
    return f"{args.command} {sub}" if sub else args.command


def _finish(settings: Settings | None, summary: dict[str, Any], code: int, started: float, log: Any) -> None:
    summary["exit_code"] = code
    summary["duration_s"] = round(time.monotonic() - started, 3)
    if log is not None:
        fields = {k: v for k, v in summary.items() if k not in ("run_id",)}
        level = log.info if code == 0 else log.error
        level(events.RUN_FINISHED, **fields)
    path = settings.termination_log if settings else (env_flag("termination_log") or "/dev/termination-log")
    logs.write_termination_message(path, summary)


# --- verbs ------------------------------------------------------------------------------------


def _planner() -> Any:
    """The planner of the whole pipeline (schema and data), imported lazily."""
    from .pipeline import plan_pipeline

    return plan_pipeline


def cmd_run(args: argparse.Namespace, settings: Settings, log: Any, run_id: str, summary: dict) -> int:
    if args.dry_run:
        return cmd_plan(args, settings, log, run_id, summary)
    from . import runner

    ctx = None
    report = runner.RunReport(outcome="noop")
    failed = True
    try:
        ctx = runner.open_context(settings, log, run_id)
        runner.run(ctx, _planner(), report)
        failed = False
    finally:
        summary["steps"] = [s.as_dict() for s in report.steps]
        summary.update(_state_after(ctx, _planner(), report, failed))
        runner.close_context(ctx)
    summary["outcome"] = report.outcome
    return int(ExitCode.OK)


#: How long the re-plan after a failed run may wait for one answer (the connection may be half dead).
_REPLAN_READ_TIMEOUT_S = 30


def _state_after(ctx: Any, planner: Any, report: Any, failed: bool) -> dict[str, Any]:
    """The summary's ``state``/``release``: where the database is AFTER the run, and where it was
    before (``from_state``/``from_release``) when the run planned work.

    A run that did nothing is where its plan found it. Otherwise the same cheap planner looks
    again on the work connection; when that connection is gone or the look fails, the state is
    ``unknown`` (never the stale one). The re-plan never raises: the run's own outcome stands.
    """
    plan = report.plan
    fields: dict[str, Any] = {}
    if plan is not None and plan.steps:
        fields.update(from_state=plan.state, from_release=plan.release)
    if plan is not None and not failed and not report.steps:
        return {**fields, "state": plan.state, "release": plan.release}
    if ctx is None:  # never connected: nothing to say about the database
        return fields
    conn, backend = ctx.conn, ctx.backend
    if conn is None or not backend.is_open(conn):
        return {**fields, "state": "unknown"}
    try:
        with backend.read_timeout(conn, _REPLAN_READ_TIMEOUT_S if failed else None):
            if failed:
                conn.rollback()  # a step that failed mid-transaction: read the database as it is now
            after = planner(ctx)
    except Exception as exc:  # noqa: BLE001 - the original outcome and exit code must stand
        ctx.log.warning(events.STEP_NOTICE, step="summary", message=f"could not read the state after the run: {exc}")
        return {**fields, "state": "unknown"}
    return {**fields, "state": after.state, "release": after.release}


def cmd_wait(args: argparse.Namespace, settings: Settings, log: Any, run_id: str, summary: dict) -> int:
    info = backends.get(settings).wait_for_database(settings, log)
    summary.update(outcome="ready", server=info.label)
    return int(ExitCode.OK)


def cmd_plan(args: argparse.Namespace, settings: Settings, log: Any, run_id: str, summary: dict) -> int:
    from . import preflight, report, runner

    ctx = runner.open_context(settings, log, run_id)
    try:
        ctx.dry_run = True
        plan = _planner()(ctx)
        findings = preflight.check(ctx, plan.steps)
        step_plans = [_step_plan(ctx, step, findings) for step in plan.steps]
        data = report.plan_dict(ctx, plan, step_plans)
        data.update(findings.as_dict())
    finally:
        runner.close_context(ctx)
    _print(args, data, lambda d: report.render_blockers(d, prefix="-- ") + report.render_plan(d))
    summary.update(outcome="planned", state=plan.state, pending=len(plan.steps))
    return int(ExitCode.OK)


def _step_plan(ctx: Any, step: Any, findings: Any) -> Any:
    """A step's plan; a data stage that cannot be analysed for a blocker the preflight found (the
    catalogue) says so instead of failing the whole report."""
    from .steps import StepPlan

    try:
        return step.plan(ctx)
    except ConfigError as exc:
        if not findings.blockers:
            raise
        return StepPlan(step.name, "not analysed: " + exc.message, notes=[exc.message])


def cmd_status(args: argparse.Namespace, settings: Settings, log: Any, run_id: str, summary: dict) -> int:
    from . import preflight, report, runner

    ctx = runner.open_context(settings, log, run_id)
    try:
        plan = _planner()(ctx)
        data = report.status_dict(ctx, lambda _ctx: plan)
        data.update(preflight.check(ctx, plan.steps).as_dict())
    finally:
        runner.close_context(ctx)
    _print(args, data, lambda d: report.render_status(d) + report.render_blockers(d))
    summary.update(outcome="reported", state=data["state"])
    if args.check and data["state"] not in ("up_to_date",):
        raise PendingError(f"the database is not at {settings.target_version}: {data['state']}",
                           state=data["state"], pending=data.get("pending"))
    return int(ExitCode.OK)


def cmd_wait_for_version(args: argparse.Namespace, settings: Settings, log: Any, run_id: str,
                         summary: dict) -> int:
    from . import config, runner

    try:
        timeout = config._duration(args.timeout)
        interval = max(0.2, config._duration(args.interval))
    except ValueError as exc:
        raise ConfigError(f"flag --timeout/--interval: {exc}") from None
    started = time.monotonic()
    ctx = runner.open_context(settings, log, run_id)
    try:
        while True:
            plan = _planner()(ctx)
            if plan.state == "up_to_date":
                summary.update(outcome="ready", state=plan.state, release=plan.release)
                return int(ExitCode.OK)
            waited = time.monotonic() - started
            if waited >= timeout:
                raise PendingError(
                    f"the database did not reach {settings.target_version} within {timeout:g}s "
                    f"(state {plan.state}, {len(plan.steps)} steps pending)",
                    hint="is the migration Job running? `kubectl logs job/<release>-ragflow-migrate`",
                    state=plan.state,
                )
            log.info(events.STEP_WAITING, step="wait-for-version",
                     reason=f"database is {plan.state}: {len(plan.steps)} steps pending",
                     waited_s=round(waited, 1), pending=plan.pending[:10])
            interrupt.sleep(interval)
    finally:
        runner.close_context(ctx)


def _print(args: argparse.Namespace, data: dict[str, Any], render: Callable[[dict[str, Any]], str]) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render(data))
    sys.stdout.flush()


_HANDLERS.update(
    {
        "run": cmd_run,
        "wait": cmd_wait,
        "plan": cmd_plan,
        "status": cmd_status,
        "wait-for-version": cmd_wait_for_version,
    }
)
