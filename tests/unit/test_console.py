"""The console a person reads (``--log-format console``): one line per step, no SQL at info,
progress as one updating line on a TTY, the summary as a small table, errors and hints in full."""

from __future__ import annotations

import io
import logging
import re

import pytest

from ragflow_migrate import console, events, logs

ESC = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
LONG_ERROR = "the metadata lock on `knowledgebase` was not granted within 600s; " + "blocked by connection 4711 " * 12
LONG_HINT = " ".join(["a long-running transaction holds the table; end it (or raise --ddl-deadline) and run again"] * 3)


class Stream(io.StringIO):
    """A console stream that says whether it is a TTY."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture(autouse=True)
def _no_color_unset(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # the transient line is cut to the terminal: a known width


def configure(tty: bool = False, level: str = "info", secrets=()) -> Stream:
    stream = Stream(tty)
    logs.configure(fmt="console", level=level, stream=stream, secrets=secrets)
    logs.bind_run("run123")
    return stream


def screen(text: str) -> list[str]:
    """What a terminal shows at the end: a carriage return (and erase-line) rewrites the current line."""
    shown = []
    for line in ESC.sub("", text).split("\n"):
        shown.append(line.rsplit("\r", 1)[-1])
    while shown and shown[-1] == "":
        shown.pop()
    return shown


def plain(stream: Stream) -> list[str]:
    return screen(stream.getvalue())


def a_step(log, name: str, *, rows: int = 0, sql: str | None = None, progress: int = 0) -> None:
    log.info(events.STEP_STARTED, step=name, kind=name.split()[0], release="v0.27.0")
    if sql:
        log.info(events.STEP_STATEMENT, step=name, sql=sql, algorithm="INPLACE", duration_s=0.01)
    for i in range(1, progress + 1):
        log.info(events.STEP_PROGRESS, step=name, done=i * 1000, total=progress * 1000, unit="rows",
                 percent=round(100 * i / progress, 1), elapsed_s=i * 2.0, rate_per_s=500.0,
                 eta_s=(progress - i) * 2.0)
    log.info(events.STEP_FINISHED, step=name, duration_s=0.25, rows=rows, changes=1)


SUMMARY = dict(command="run", outcome="migrated", exit_code=0, duration_s=12.5, database="db:3306/rag",
               target="v0.27.0", state="up_to_date", release="v0.27.0", from_state="pending",
               from_release="v0.25.6",
               steps=[{"step": f"schema v0.2{i}.0", "kind": "schema", "status": "applied", "duration_s": 0.1,
                       "rows": 0, "changes": 2} for i in range(1, 6)]
               + [{"step": "data tenant_model", "kind": "data", "status": "applied", "duration_s": 9.0,
                   "rows": 12345, "changes": 1},
                  {"step": "data model_id_config", "kind": "data", "status": "skipped", "duration_s": 0.02,
                   "rows": 0, "changes": 0, "reason": "nothing to do"}])


# --- steps and statements ---------------------------------------------------------------------------


def test_one_line_per_step_with_outcome_rows_and_duration():
    stream = configure(tty=False)
    log = logs.get_logger()
    a_step(log, "schema v0.26.0", sql="CREATE TABLE `tenant_model` (\n  `id` VARCHAR(32) NOT NULL\n)")
    a_step(log, "data tenant_model", rows=12345)
    log.info(events.STEP_SKIPPED, step="data model_id_config", reason="nothing to do: no row to migrate")
    lines = plain(stream)
    assert len(lines) == 3, lines
    assert re.search(r"✓ schema v0\.26\.0 +done +0 rows, 1 change +0\.25 s$", lines[0]), lines[0]
    assert "data tenant_model" in lines[1] and "12,345 rows" in lines[1] and "0.25 s" in lines[1]
    assert "– data model_id_config" in lines[2] and "skipped: nothing to do: no row to migrate" in lines[2]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()  # not a TTY: plain text


def test_statements_only_at_debug_but_a_copy_alter_always():
    stream = configure(level="info")
    log = logs.get_logger()
    a_step(log, "schema v0.26.0", sql="CREATE TABLE `tenant_model` (\n  `id` VARCHAR(32) NOT NULL\n)")
    log.warning(events.STEP_STATEMENT, step="schema v0.26.0", sql="ALTER TABLE `document` MODIFY `x` TEXT",
                algorithm="COPY", duration_s=3.2, note="COPY rebuilds the table and blocks writes while it runs")
    text = stream.getvalue()
    assert "CREATE TABLE" not in text and "\\n" not in text
    assert "ALTER TABLE `document` MODIFY `x` TEXT [COPY, 3.20 s]" in text and "blocks writes" in text

    stream = configure(level="debug")
    log = logs.get_logger()
    a_step(log, "schema v0.26.0", sql="CREATE TABLE `tenant_model` (\n  `id` VARCHAR(32) NOT NULL\n)")
    lines = plain(stream)
    assert any(line.endswith("→ schema v0.26.0 …") for line in lines)  # at debug the start is a line
    (sql,) = [line for line in lines if "CREATE TABLE" in line]
    assert "CREATE TABLE `tenant_model` ( `id` VARCHAR(32) NOT NULL ) [INPLACE, 0.01 s]" in sql  # one line


# --- progress ----------------------------------------------------------------------------------------


def test_progress_is_one_updating_line_on_a_tty():
    stream = configure(tty=True)
    log = logs.get_logger()
    log.info(events.PLAN_READY, state="pending", release="v0.25.6", target="v0.27.0", pending=["data tenant_model"],
             count=1)
    a_step(log, "data tenant_model", rows=4000, progress=4)
    raw = ESC.sub("", stream.getvalue())
    # The start and each update rewrite the same line: no newline between them.
    updating = raw.split("\n")[1]
    assert updating.count("\r") >= 5 and "1,000/4,000 rows (25%)" in updating and "eta 6.00 s" in updating
    assert "500/s" in updating and "[█████" in updating
    lines = screen(stream.getvalue())
    assert len(lines) == 2, lines  # the plan, then the step: the progress line was cleared by the step's line
    assert "✓ data tenant_model" in lines[1] and "4,000 rows" in lines[1] and "rows (" not in lines[1]


def test_progress_is_plain_short_lines_elsewhere():
    stream = configure(tty=False)
    a_step(logs.get_logger(), "data tenant_model", rows=3000, progress=3)
    lines = plain(stream)
    assert len(lines) == 4, lines  # three progress lines and the step; no start line
    assert lines[0].endswith("→ data tenant_model  1,000/3,000 rows (33%)  500/s, eta 4.00 s")
    assert all(len(line) < 100 for line in lines) and "\r" not in stream.getvalue()


def test_a_transient_line_is_cleared_before_a_library_message():
    stream = configure(tty=True)
    logs.get_logger().info(events.STEP_STARTED, step="schema v0.27.0", kind="schema", release="v0.27.0")
    logging.getLogger("tenacity").warning("retrying %s", "now")
    assert screen(stream.getvalue())[-1].endswith("! [tenacity] retrying now")
    assert "\r\x1b[2K" in stream.getvalue().split("\n")[0].split("…", 1)[1]


# --- the summary ----------------------------------------------------------------------------------------


def summary_block(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if "run finished" in line)
    return lines[start:]


def test_summary_is_a_small_aligned_table():
    stream = configure(tty=False)
    logs.get_logger().info(events.RUN_FINISHED, **SUMMARY)
    block = summary_block(plain(stream))
    assert block[0].startswith("── run finished ──")
    assert block[1:5] == ["outcome   migrated (exit 0)", "release   v0.25.6 → v0.27.0",
                          "state     up_to_date (was pending)", "duration  12.5 s"]
    header, *rows = block[5:]
    assert header.split() == ["step", "status", "rows", "seconds"]
    assert rows == [
        "schema v0.21.0 … v0.25.0 (5)  applied       0     0.50",  # steps alike and without rows: one row
        "data tenant_model             applied  12,345     9.00",
        "data model_id_config          skipped       0     0.02",
    ]
    assert "{" not in "\n".join(block)  # no dicts or lists printed raw


def test_error_and_hint_are_shown_in_full():
    stream = configure(tty=False)
    log = logs.get_logger()
    log.error(events.STEP_FAILED, step="schema v0.27.0", error=LONG_ERROR, error_class="StepFailedError",
              hint=LONG_HINT, blockers=[{"connection_id": 4711, "user": "app", "host": "10.0.0.9:1234"}] * 5)
    failed = dict(SUMMARY, outcome="step_failed", exit_code=7, error=LONG_ERROR, error_class="StepFailedError",
                  hint=LONG_HINT, state="pending", release="v0.26.4",
                  steps=[{"step": "schema v0.27.0", "kind": "schema", "status": "failed", "duration_s": 600.2,
                          "rows": 0}])
    log.error(events.RUN_FINISHED, **failed)
    lines = plain(stream)
    assert "✗ schema v0.27.0" in lines[0] and f"failed (StepFailedError): {LONG_ERROR}" in lines[0]
    assert any(line.strip() == f"hint: {LONG_HINT}" for line in lines)
    assert any("blockers connection 4711 app@10.0.0.9:1234, " in line and "+3 more" in line for line in lines)
    block = summary_block(lines)
    assert "outcome   step_failed (exit 7)" in block and "release   v0.25.6 → v0.26.4 (target v0.27.0)" in block
    assert block[-2:] == [f"error     {LONG_ERROR}", f"hint      {LONG_HINT}"]
    assert any(line.startswith("schema v0.27.0") and "failed" in line and "600.20" in line for line in block)


# --- other events -----------------------------------------------------------------------------------


def test_other_events_are_one_readable_line_each():
    stream = configure(tty=False)
    log = logs.get_logger()
    log.warning(events.DB_WAIT_ATTEMPT, attempt=3, reason="connection refused", error_code=2003, elapsed_s=4.1,
                retry_in_s=2.0, deadline_s=300, host="mysql", port=3306)
    log.info(events.LOCK_WAITING, lock="init_database_tables", waited_s=12.0, timeout_s=600,
             holder={"connection_id": 4711, "user": "root", "host": "10.0.3.7:51234", "instance": "ragflow-7c9f-x2",
                     "tool": "ragflow-migrate"})
    log.info(events.PLAN_READY, state="pending", release="v0.25.6", target="v0.27.0",
             pending=[f"schema v0.{i}.0" for i in range(40)], count=40, notes=["adopting a database RAGFlow created"])
    log.error(events.SCHEMA_DRIFT, target="v0.27.0", count=50,
              differences=[{"kind": "missing_column", "table": "tenant", "name": f"c{i}", "expected": "int"}
                           for i in range(50)])
    log.info(events.STEP_NOTICE, step="verify schema", message="the database keeps things the target does not "
             "declare", count=4, sample=[f"extra table: evaluation_{i}" for i in range(4)])
    lines = plain(stream)
    assert len(lines) == 6, lines
    assert lines[0].endswith("! waiting for mysql:3306: connection refused [2003] (attempt 3, 4.10 s of 5 min 00 s, "
                             "next in 2.00 s)")
    assert lines[1].endswith("waiting for lock init_database_tables held by connection 4711 root@10.0.3.7:51234 "
                             "(instance ragflow-7c9f-x2, tool ragflow-migrate) (12.0 s of 10 min 00 s)")
    assert lines[2].endswith("plan: v0.25.6 → v0.27.0, 40 steps to run (pending)") and "v0.39.0" not in lines[2]
    assert lines[3].strip() == "note: adopting a database RAGFlow created"
    assert "missing column: tenant.c0, missing column: tenant.c1, missing column: tenant.c2, +47 more" in lines[4]
    assert lines[5].endswith("(4): extra table: evaluation_0, extra table: evaluation_1, +2 more")
    assert all(len(line) < 200 for line in lines)


def test_exceptions_are_printed_after_their_line():
    stream = configure(tty=False)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logs.get_logger().exception(events.RUN_FINISHED, command="run", outcome="internal_error", exit_code=70,
                                    error="RuntimeError: boom", hint="this is a bug")
    text = stream.getvalue()
    assert "error     RuntimeError: boom" in text and "Traceback" in text and text.rstrip().endswith("boom")


# --- secrets and colours ------------------------------------------------------------------------------


def test_no_secret_reaches_the_console_not_even_a_transient_line():
    stream = configure(tty=True, secrets=["hunter2-pw"])
    log = logs.get_logger()
    log.info(events.STEP_STARTED, step="data hunter2-pw", kind="data", release="v0.27.0")
    log.info(events.STEP_PROGRESS, step="data hunter2-pw", done=1, total=2, unit="rows", percent=50.0,
             elapsed_s=1.0, rate_per_s=1.0, eta_s=1.0)
    log.error(events.STEP_FAILED, step="x", error="auth failed for hunter2-pw", hint="check hunter2-pw")
    log.error(events.RUN_FINISHED, command="run", outcome="auth", exit_code=4, duration_s=0.1,
              error="denied for hunter2-pw", steps=[{"step": "hunter2-pw", "status": "failed"}])
    text = stream.getvalue()
    assert "hunter2-pw" not in text and "***" in text


def test_colours_only_on_a_tty_and_never_with_no_color(monkeypatch):
    def render(tty: bool) -> str:
        stream = configure(tty=tty)
        logs.get_logger().info(events.STEP_FINISHED, step="schema v0.27.0", duration_s=1.0, rows=0, changes=0)
        return stream.getvalue()

    assert "\x1b[32m" in render(tty=True)
    assert "\x1b" not in render(tty=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in render(tty=True)
    assert not console.use_colors(Stream(True), {"NO_COLOR": "1"}) and console.use_colors(Stream(True), {})


def test_ascii_when_the_stream_cannot_print_unicode():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    renderer = console.ConsoleRenderer(stream)
    line = renderer(None, "info", {"event": events.STEP_FINISHED, "level": "info", "step": "schema v0.27.0",
                                   "duration_s": 1.0, "rows": 0})
    assert line.startswith("+ schema v0.27.0") and line.isascii()


def test_formatting_helpers():
    assert [console.seconds(v) for v in (0.037, 12.34, 75, 3725)] == ["0.04 s", "12.3 s", "1 min 15 s", "1 h 02 min"]
    assert console.count(1234567) == "1,234,567"
    assert console.summarise(list(range(10))) == "0, 1, 2, +7 more"
    assert console.summarise([]) == "none"
    assert len(console.shorten("x " * 500)) == console._VALUE_LIMIT
