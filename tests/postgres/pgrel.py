"""Helpers of the PostgreSQL reliability suite (test_pg_reliability.py): the real CLI as a
process, with optional fault hooks, and the state of a database as the suite compares it.

:class:`ForkServer` (this module run with ``--serve``) imports the tool once and forks one child
per run: the real CLI (``ragflow_migrate.cli.main``) in a real process, without a Python start-up
each time. Each child reads and removes these variables and installs the hooks first:

* ``RELTEST_KILL_AT=N``: SIGKILL itself right after the N-th SQL statement it sent through a psycopg
  cursor (any session: wait, lock, work) got its answer;
* ``RELTEST_KILL="<step>|N"``: the same, at the N-th statement since ``<step>`` started (the
  journal row, the lock check, the migration's DDL, its history row, the journal update);
  ``"<step>|commit"``: right after that step's ``COMMIT`` reached the server, its answer unread;
* ``RELTEST_ONLY_STEP=<step>``: SIGKILL itself when any other step is about to start (empty: when
  any step is); with the two above, a run never goes past the step under test;
* ``RELTEST_COUNT_FILE=path``: write there how many statements it sent (at exit);
* ``RELTEST_SNAPSHOTS=path``: after every step, pickle its name, its statement count, the
  :func:`progress` and :func:`schema_state` there: the state after each migration of an uninterrupted run;
* ``RELTEST_INJECT=1``: ``runner.run`` raises an error that carries POSTGRES_PASSWORD in its
  message (as a driver's connection string might): redaction must still hide it.

A test helper, not part of the tool.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "reliability")]  # also when run as the fork server

from relkit import Result, parse_events  # noqa: E402  (the MySQL suite's: one result type for both)

PYTHON = sys.executable
OWN_PREFIX = "ragflow_migrate_"
RAGFLOW_KEY = 1241179007  # pg_advisory_lock key of RAGFlow's "init_database_tables"

# --- results and processes ----------------------------------------------------------------------


def tool_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """Exactly the environment of one run: PATH, JSON logs, no termination file unless given."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "RAGFLOW_MIGRATE_LOG_FORMAT": "json",
            "RAGFLOW_MIGRATE_TERMINATION_LOG": "/nonexistent-dir/termination-log", **env}
    full.update(extra)
    return full


class ForkServer:
    """This module run with ``--serve``: it imports the tool once, then forks one child per run
    (a real process: its own pid, signals, sockets and exit status) without a Python start-up."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([PYTHON, str(HERE / "pgrel.py"), "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        hello = self.proc.stdout.readline()
        assert hello.strip() == '{"ready": true}', hello

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:  # noqa: BLE001
            self.proc.kill()


_runs = itertools.count(1)


class Proc:
    """One run of the CLI (through this module's hooks) in a child of the fork server."""

    def __init__(self, server: ForkServer, workdir: Path, env: dict[str, str], *args: str,
                 hooks: dict[str, str] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        n = next(_runs)
        self.server = server
        self.out, self.err = workdir / f"run-{n}.out", workdir / f"run-{n}.err"
        self.out.touch()  # readable before the child opens it
        self.err.touch()
        self.args = args
        self.code: int | None = None
        self.started = time.monotonic()
        self.pid = server.ask({"op": "spawn", "argv": list(args), "env": tool_env(env, **(hooks or {})),
                               "out": str(self.out), "err": str(self.err)})["pid"]

    def poll(self) -> int | None:
        if self.code is None:
            self.code = self.server.ask({"op": "wait", "pid": self.pid, "timeout": 0})["code"]
        return self.code

    def events(self) -> list[dict[str, Any]]:
        return parse_events(self.out.read_text(errors="replace"))

    def wait_for_event(self, predicate, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            if self.poll() is not None:
                break
            time.sleep(0.01)
        for event in self.events():  # a last look after the process ended
            if predicate(event):
                return event
        raise AssertionError(f"no matching event (exit {self.poll()}):\n{self.result().explain()}")

    def signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float = 120) -> Result:
        if self.code is None:
            self.code = self.server.ask({"op": "wait", "pid": self.pid, "timeout": timeout})["code"]
            if self.code is None:
                os.kill(self.pid, signal.SIGKILL)
                self.server.ask({"op": "wait", "pid": self.pid, "timeout": 30})
                raise AssertionError(f"{self.args} did not end within {timeout}s:\n{self.result().explain()}")
        return self.result()

    def result(self) -> Result:
        stdout, stderr = self.out.read_text(errors="replace"), self.err.read_text(errors="replace")
        return Result(self.code, stdout, stderr, parse_events(stdout if not self.args or self.args[0] == "run"
                                                              else stderr), took=time.monotonic() - self.started)


# --- the state of a database --------------------------------------------------------------------

_RELATIONS = ("SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
              "AND c.relkind IN ('S', 'i', 'v', 'm') ORDER BY 1")
_CONSTRAINTS = ("SELECT t.relname, con.conname, con.contype FROM pg_constraint con "
                "JOIN pg_class t ON t.oid = con.conrelid WHERE con.connamespace = 'public'::regnamespace "
                "ORDER BY 1, 2")


def schema_state(conn) -> dict[str, Any]:
    """The live schema in the backend's normal form (tables, columns in order, indexes), plus every
    sequence, index, view and constraint of schema public by name; the tool's own tables aside."""
    from ragflow_migrate.backends.postgres.introspect import live_snapshot

    snap = live_snapshot(conn)
    tables = {name: (tuple(t.columns.items()), tuple(sorted(t.indexes.items())))
              for name, t in snap.tables.items() if not name.startswith(OWN_PREFIX)}
    with conn.cursor() as cur:
        cur.execute(_RELATIONS)
        relations = [r for r in cur.fetchall() if not r[0].startswith(OWN_PREFIX)]
        cur.execute(_CONSTRAINTS)
        constraints = [r for r in cur.fetchall() if not r[0].startswith(OWN_PREFIX)]
    return {"tables": tables, "relations": relations, "constraints": constraints}


def history(conn) -> list[str]:
    """Names in ragflow_migrate_history (in order; [] when the table does not exist yet)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('ragflow_migrate_history') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        cur.execute("SELECT name FROM ragflow_migrate_history ORDER BY name")
        return [r[0] for r in cur.fetchall()]


def progress(conn) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the database records as done: the migrations in ragflow_migrate_history, and the data
    stages finished in ragflow_migrate_data_stage (each empty while its table does not exist)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('ragflow_migrate_data_stage') IS NOT NULL")
        stages: list[str] = []
        if cur.fetchone()[0]:
            cur.execute("SELECT stage FROM ragflow_migrate_data_stage WHERE status = 'finished' ORDER BY stage")
            stages = [r[0] for r in cur.fetchall()]
    return tuple(history(conn)), tuple(stages)


def own_tables(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' "
                    "AND relname LIKE 'ragflow\\_migrate\\_%' ORDER BY 1")
        return [r[0] for r in cur.fetchall()]


def describe_difference(got: dict[str, Any], want: dict[str, Any]) -> str:
    lines = []
    for table in sorted(set(got["tables"]) | set(want["tables"])):
        a, b = got["tables"].get(table), want["tables"].get(table)
        if a != b:
            lines.append(f"table {table}:\n   got  {a!r}\n   want {b!r}")
    for key in ("relations", "constraints"):
        extra = [r for r in got[key] if r not in want[key]]
        missing = [r for r in want[key] if r not in got[key]]
        if extra or missing:
            lines.append(f"{key}: unexpected {extra}; missing {missing}")
    return "\n".join(lines[:20]) or "equal"


# --- the hooks (this module run as a script) ----------------------------------------------------

_count = 0  # statements sent through a psycopg cursor
_paused = False  # the snapshot hook's own statements are not counted
_step: str | None = None  # the step in progress
_step_count = 0  # statements sent since it started
_kill_at: int | None = None
_kill_step: tuple[str, int | str] | None = None  # (step, n-th statement of it, or "commit")
_only_step: str | None = None  # SIGKILL at the start of any other step ("": of any step at all)


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install_statement_hook() -> None:
    import psycopg

    original = psycopg.Cursor.execute

    def execute(self, query, params=None, **kw):
        global _count, _step_count
        if _paused:
            return original(self, query, params, **kw)
        _count += 1
        _step_count += 1
        result = original(self, query, params, **kw)
        if _kill_at is not None and _count >= _kill_at:
            _die()
        if _kill_step is not None and _kill_step[0] == _step and _kill_step[1] == _step_count:
            _die()
        return result

    psycopg.Cursor.execute = execute


def _install_commit_hook() -> None:
    from psycopg import _connection_base

    original = _connection_base.BaseConnection._exec_command

    def _exec_command(self, command, *args, **kw):
        if command == b"COMMIT" and _kill_step == (_step, "commit"):
            self.pgconn.send_query(command)
            while self.pgconn.flush():  # nonblocking: 1 until everything is on the wire
                time.sleep(0.001)
            _die()
        return (yield from original(self, command, *args, **kw))

    _connection_base.BaseConnection._exec_command = _exec_command


def _install_step_hook(snapshots: str | None) -> None:
    """Track the step in progress; with ``snapshots``, record the database after each step."""
    from ragflow_migrate import runner
    from ragflow_migrate.backends.postgres.connect import connect

    original = runner.run_step

    def run_step(ctx, step, journal):
        global _step, _step_count, _paused
        if _only_step is not None and step.name != _only_step:
            _die()
        _step, _step_count = step.name, 0
        outcome = original(ctx, step, journal)
        if snapshots:
            _paused = True
            conn = connect(ctx.settings)
            try:
                record = {"step": step.name, "statements": _step_count, "progress": progress(conn),
                          "state": schema_state(conn)}
            finally:
                conn.close()
                _paused = False
            with open(snapshots, "ab") as out:
                pickle.dump(record, out)
        _step = None
        return outcome

    runner.run_step = run_step


def _install_injected_failure() -> None:
    from ragflow_migrate import runner

    def failing_run(ctx, planner, report=None):
        secret = os.environ.get("POSTGRES_PASSWORD", "")
        raise RuntimeError(f"driver failed: postgresql://{ctx.settings.user}:{secret}@{ctx.settings.host}/x "
                           f"password={secret}")

    runner.run = failing_run


def read_snapshots(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path, "rb") as f:
        while True:
            try:
                out.append(pickle.load(f))
            except EOFError:
                return out


def main(argv: list[str]) -> int:
    global _kill_at, _kill_step, _only_step
    hooks = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("RELTEST_")}
    if "RELTEST_KILL_AT" in hooks:
        _kill_at = int(hooks["RELTEST_KILL_AT"])
    if "RELTEST_KILL" in hooks:
        step, _, nth = hooks["RELTEST_KILL"].rpartition("|")
        _kill_step = (step, nth if nth == "commit" else int(nth))
    if "RELTEST_ONLY_STEP" in hooks:
        _only_step = hooks["RELTEST_ONLY_STEP"]
    count_file = hooks.get("RELTEST_COUNT_FILE")
    _install_statement_hook()
    _install_commit_hook()
    _install_step_hook(hooks.get("RELTEST_SNAPSHOTS"))
    if hooks.get("RELTEST_INJECT"):
        _install_injected_failure()
    from ragflow_migrate.cli import main as cli_main

    try:
        return cli_main(argv)
    finally:
        if count_file:
            Path(count_file).write_text(str(_count))


def _child(request: dict[str, Any]) -> None:
    code = 1
    try:
        out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.dup2(null, 0)
        sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8", closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, encoding="utf-8", closefd=False)
        sys.stdin = open(os.devnull)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report it in the child's stderr
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _serve() -> None:
    import ragflow_migrate.backends.postgres  # noqa: F401 - warm up: every child would import these
    import ragflow_migrate.backends.postgres.introspect  # noqa: F401
    from ragflow_migrate import cli, pipeline, runner  # noqa: F401
    from ragflow_migrate.schema import chain

    cli.build_parser()
    chain.replay()
    codes: dict[int, int] = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                _child(request)
            answer: dict[str, Any] = {"pid": pid}
        else:
            pid, deadline = request["pid"], time.monotonic() + request["timeout"]
            while pid not in codes:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
                elif time.monotonic() >= deadline:
                    break
                else:
                    time.sleep(0.005)
            answer = {"code": codes.get(pid)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        _serve()
    else:
        sys.exit(main(sys.argv[1:]))
