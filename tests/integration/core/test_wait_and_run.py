"""Waiting for MySQL, failing fast on credentials, and the shape of every run's output."""

from __future__ import annotations

import json
import socket
import subprocess
import time

from toolrun import PYTHON, parse_events, run_tool

from ragflow_migrate import events
from ragflow_migrate.errors import ExitCode


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_closed_port_waits_logs_each_attempt_and_exits_unreachable(tmp_path):
    env = {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(closed_port()), "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "3",
           "RAGFLOW_MIGRATE_TERMINATION_LOG": str(tmp_path / "term")}
    started = time.monotonic()
    result = run_tool(env, "wait")
    elapsed = time.monotonic() - started
    assert result.code == ExitCode.UNREACHABLE
    attempts = result.named(events.DB_WAIT_ATTEMPT)
    assert len(attempts) >= 3
    assert all(a["reason"] == "connection refused" and a["error_code"] == 2003 for a in attempts)
    assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
    assert 2.5 <= elapsed < 8
    summary = result.summary
    assert summary["outcome"] == "unreachable" and summary["exit_code"] == 3 and "did not answer" in summary["error"]
    assert json.loads((tmp_path / "term").read_text())["exit_code"] == 3


def test_status_on_a_closed_port_gives_up_after_the_short_read_only_default(tmp_path):
    """A person typing `status` wants the answer in seconds: 10 s unless a deadline is configured."""
    env = {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(closed_port()),
           "RAGFLOW_MIGRATE_TERMINATION_LOG": str(tmp_path / "term")}
    started = time.monotonic()
    result = run_tool(env, "status", timeout=60)
    elapsed = time.monotonic() - started
    assert result.code == ExitCode.UNREACHABLE, result.stderr
    assert 9.5 <= elapsed < 15, f"took {elapsed:.1f}s"
    assert "did not answer within 10s" in result.summary["error"]
    assert result.named(events.DB_WAIT_ATTEMPT)

    started = time.monotonic()
    explicit = run_tool(env, "status", "--wait-timeout", "2", timeout=60)
    elapsed = time.monotonic() - started
    assert explicit.code == ExitCode.UNREACHABLE, explicit.stderr
    assert 1.5 <= elapsed < 6, f"took {elapsed:.1f}s for --wait-timeout 2"
    assert "did not answer within 2s" in explicit.summary["error"]


def test_unknown_host_is_retried_as_dns_not_ready(tmp_path):
    env = {"MYSQL_HOST": "no-such-host.invalid", "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "2"}
    result = run_tool(env, "wait")
    assert result.code == ExitCode.UNREACHABLE
    assert result.named(events.DB_WAIT_ATTEMPT)[0]["reason"].startswith("unknown host")


def test_server_started_halfway_through_the_wait_is_reached(database):
    server = database.server
    server.stop()
    env = {"PATH": "/usr/bin:/bin", "RAGFLOW_MIGRATE_LOG_FORMAT": "json", **database.env,
           "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "60"}
    proc = subprocess.Popen([PYTHON, "-m", "ragflow_migrate", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.0)
        server.restart()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err + out
    found = parse_events(out)
    assert any(e["event"] == events.DB_WAIT_ATTEMPT for e in found)
    assert found[-1]["event"] == events.RUN_FINISHED and found[-1]["outcome"] == "migrated"


def test_wrong_password_fails_fast_with_the_auth_code(database):
    database.server.create_user("migrator_pw", "right-password-1", [f"ALL ON `{database.name}`.*"])
    env = {**database.env, "MYSQL_USER": "migrator_pw", "MYSQL_PASSWORD": "wrong-password-1"}
    started = time.monotonic()
    result = run_tool(env, "run")
    assert time.monotonic() - started < 3
    assert result.code == ExitCode.AUTH
    assert "MYSQL_PASSWORD" in result.summary["hint"]
    assert "wrong-password-1" not in result.stdout + result.stderr


def test_missing_database_is_a_config_error_unless_created(database):
    missing = "m_" + database.name[-20:]
    env = {**database.env, "MYSQL_DBNAME": missing}
    result = run_tool(env, "run")
    assert result.code == ExitCode.CONFIG, result.summary
    assert "--create-database" in result.summary["hint"]
    created = run_tool(env, "run", "--create-database")
    assert created.code == 0, created.stdout
    assert created.named(events.DB_CREATED)[0]["collation"] == "utf8mb4_unicode_ci"
    database.server.drop_database(missing)


def test_every_line_is_json_with_documented_fields_and_no_secret(database):
    database.server.create_user("migrator_s", "Sup3r-Secret-Value", [f"ALL ON `{database.name}`.*",
                                                                      "PROCESS ON *.*"])
    env = {**database.env, "MYSQL_USER": "migrator_s", "MYSQL_PASSWORD": "Sup3r-Secret-Value"}
    result = run_tool(env, "run")
    assert result.code == 0, result.stdout + result.stderr
    assert result.events and all(set(e) >= {"event", "timestamp", "level", "run_id"} for e in result.events)
    assert {e["event"] for e in result.events} <= set(events.EVENTS)
    assert len({e["run_id"] for e in result.events}) == 1
    summary = result.summary
    assert summary == result.events[-1]
    assert summary["outcome"] == "migrated" and summary["exit_code"] == 0 and summary["steps"]
    termination = json.loads(open(database.env["RAGFLOW_MIGRATE_TERMINATION_LOG"]).read())
    assert termination["outcome"] == "migrated"
    for text in (result.stdout, result.stderr, json.dumps(termination)):
        assert "Sup3r-Secret-Value" not in text


def test_help_documents_every_command():
    proc = subprocess.run([PYTHON, "-m", "ragflow_migrate", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for verb in ("run", "plan", "status", "wait", "wait-for-version", "schema"):
        assert f"    {verb}" in proc.stdout
    for code in ExitCode:
        assert code.name.lower() in proc.stdout
    version = subprocess.run([PYTHON, "-m", "ragflow_migrate", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("ragflow-migrate ")


def test_the_work_connection_sorts_index_builds_in_more_memory(database):
    """MySQL: the run's own session raises innodb_ddl_buffer_size (index builds of the merge and the
    schema steps); MariaDB has no such variable and the session opens as before."""
    from ragflow_migrate import logs
    from ragflow_migrate.config import load_settings
    from ragflow_migrate.db import connect as db
    from ragflow_migrate.db.dialect import DDL_BUFFER_BYTES
    from ragflow_migrate.runner import close_context, open_context

    ctx = open_context(load_settings({}, database.env), logs.get_logger(), "tuning-test", wait=False)
    try:
        if ctx.server.is_mariadb:
            assert ctx.server.session_tuning_sql() is None
        else:
            assert db.query_one(ctx.conn, "SELECT @@SESSION.innodb_ddl_buffer_size")[0] == DDL_BUFFER_BYTES
            assert db.query_one(ctx.conn, "SELECT @@GLOBAL.innodb_ddl_buffer_size")[0] != DDL_BUFFER_BYTES
    finally:
        close_context(ctx)
