"""A tiny fork server: runs the real CLI (``ragflow_migrate.cli.main``) in forked processes.

Started once per test worker (see ``conftest.py``), it imports the tool once and then forks one
child per request, so a run costs its own work and not a Python start-up. Each child is a real
process: its own PID, signals, sockets and exit status, like a pod's container.

Protocol: one JSON object per line on stdin, one answer per line on stdout.

    {"op": "spawn", "argv": [...], "env": {...}, "log": "/path", "kill_at": N, "kill_mode": "sent"}
        → {"pid": 1234}
      The child replaces its environment with ``env``, sends stdout and stderr to ``log``
      (``log + ".err"``), runs ``cli.main(argv)`` and exits with its code. With ``kill_at``
      it SIGKILLs itself at its N-th SQL statement: "done" after the server answered,
      "sent" after the statement reached the server but before the answer was read (a kill
      mid-statement). ``count_file`` receives the number of statements the child ran;
      ``spy_file`` every statement template and its bound values (JSON lines).
    {"op": "wait", "pid": 1234, "timeout": 60}
        → {"code": 0} (negative: killed by that signal; null: still running after timeout)

A test helper, not part of the tool.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def _warm_up() -> None:
    """Import everything a run touches, and fill the caches every child would fill anyway."""
    from ragflow_migrate import cli, pipeline, runner  # noqa: F401
    from ragflow_migrate.schema import chain

    cli.build_parser()
    chain.replay()
    try:  # the data stages, when this build has them
        import ragflow_migrate.data.registry  # noqa: F401
    except Exception:  # noqa: BLE001 - not there yet, or broken: the children will say so
        pass


_COUNT = 0  # SQL statements the child sent


def _install_kill_hook(kill_at: int | None, mode: str) -> None:
    import pymysql.connections
    from pymysql.constants import COMMAND

    original = pymysql.connections.Connection.query

    def query(self, sql, unbuffered=False):
        global _COUNT
        _COUNT += 1
        if kill_at is not None and _COUNT >= kill_at:
            if mode == "sent":
                if isinstance(sql, str):
                    sql = sql.encode(self.encoding)
                self._execute_command(COMMAND.COM_QUERY, sql)
                os.kill(os.getpid(), signal.SIGKILL)
            result = original(self, sql, unbuffered)
            os.kill(os.getpid(), signal.SIGKILL)
            return result
        return original(self, sql, unbuffered)

    pymysql.connections.Connection.query = query


def _install_spy(path: str) -> None:
    """Record every statement as the tool wrote it (template) and the values it bound (args)."""
    import pymysql.cursors

    original, original_many = pymysql.cursors.Cursor.execute, pymysql.cursors.Cursor.executemany
    out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the child
    inside_many = []

    def record(query, args) -> None:
        text = query.decode("utf-8", "replace") if isinstance(query, (bytes, bytearray)) else str(query)
        out.write(json.dumps({"sql": text, "args": None if args is None else repr(args)}) + "\n")
        out.flush()

    def execute(self, query, args=None):
        if not inside_many:  # executemany's own multi-row statement is built by pymysql, escaped
            record(query, args)
        return original(self, query, args)

    def executemany(self, query, args):
        record(query, args)
        inside_many.append(True)
        try:
            return original_many(self, query, args)
        finally:
            inside_many.pop()

    pymysql.cursors.Cursor.execute = execute
    pymysql.cursors.Cursor.executemany = executemany


def _child(request: dict) -> None:
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(request["log"] + ".err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(err, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8", closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, encoding="utf-8", closefd=False)
        sys.stdin = open(os.devnull)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if request.get("kill_at") is not None or request.get("count_file"):
            _install_kill_hook(request.get("kill_at"), request.get("kill_mode", "done"))
        if request.get("spy_file"):
            _install_spy(request["spy_file"])
        if request.get("delay"):
            time.sleep(float(request["delay"]))
        from ragflow_migrate import cli

        code = cli.main(request["argv"])
        if request.get("count_file"):
            with open(request["count_file"], "w") as handle:
                handle.write(str(_COUNT))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    except SystemExit as exc:  # argparse's usage errors
        sys.stderr.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException as exc:  # noqa: BLE001 - report and leave: never return into the server loop
        try:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(70 if exc else 70)


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def main() -> None:
    _warm_up()
    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                _child(request)
            answer: dict = {"pid": pid}
        elif request["op"] == "wait":
            answer = {"code": _wait(int(request["pid"]), float(request.get("timeout", 120)))}
        else:
            answer = {"error": f"unknown op {request['op']!r}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
