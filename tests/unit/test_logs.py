"""Logs: JSON lines with the documented fields, a closed vocabulary, no secrets, the summary file."""

from __future__ import annotations

import io
import json
import logging
import sys

from ragflow_migrate import events, logs


def capture(secrets=(), level="info"):
    stream = io.StringIO()
    logs.configure(fmt="json", level=level, stream=stream, secrets=secrets)
    logs.bind_run("run123")
    return stream


def lines(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_every_line_is_json_with_the_common_fields():
    stream = capture()
    logs.get_logger().info(events.STEP_STARTED, step="schema v0.21.0", kind="schema", release="v0.21.0")
    (line,) = lines(stream)
    assert line["event"] == "step.started" and line["run_id"] == "run123" and line["level"] == "info"
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]


def test_unknown_event_names_stay_inside_the_vocabulary():
    stream = capture()
    logs.get_logger().info("made.up", x=1)
    (line,) = lines(stream)
    assert line["event"] == events.LOG_EXTERNAL and "made.up" in line["message"]


def test_library_records_go_through_the_same_pipeline():
    stream = capture()
    logging.getLogger("tenacity").warning("retrying %s", "now")
    logging.getLogger("peewee").debug("SELECT 1")  # below the library threshold at info
    (line,) = lines(stream)
    assert line["event"] == "log.external" and line["logger"] == "tenacity" and line["message"] == "retrying now"
    assert line["run_id"] == "run123"


def test_secrets_are_redacted_anywhere():
    stream = capture(secrets=["hunter2-pw"])
    logs.get_logger().error(events.STEP_FAILED, step="x", error="auth failed for hunter2-pw",
                            nested={"a": ["hunter2-pw!"]})
    text = stream.getvalue()
    assert "hunter2-pw" not in text and "***" in text


def test_termination_message_is_trimmed_to_what_kubernetes_keeps(tmp_path):
    path = tmp_path / "termination-log"
    summary = {"outcome": "migrated", "exit_code": 0, "duration_s": 1.0, "run_id": "r",
               "steps": [{"step": f"s{i}", "detail": "x" * 100} for i in range(100)]}
    assert logs.write_termination_message(str(path), summary)
    data = json.loads(path.read_text())
    assert len(path.read_bytes()) <= 4096 and data["steps_omitted"] == 100 and data["outcome"] == "migrated"


def test_termination_message_skipped_when_not_writable(tmp_path):
    assert logs.write_termination_message(str(tmp_path / "missing-dir" / "f"), {"outcome": "ok"}) is False


def test_vocabulary_is_closed_and_documented_with_fields():
    for name, spec in events.EVENTS.items():
        assert spec.name == name and spec.description and isinstance(spec.fields, tuple)


def test_default_stream_is_stdout_at_each_write(monkeypatch):
    """Configured while stdout was one stream, logging follows stdout to the next one."""
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", first)
    logs.configure(fmt="json")
    first.close()  # e.g. a capture that has ended
    monkeypatch.setattr(sys, "stdout", second)
    logs.get_logger().info(events.STEP_SKIPPED, step="schema:v0.21.0", reason="already applied")
    assert json.loads(second.getvalue())["event"] == events.STEP_SKIPPED


def test_the_cli_logs_to_the_stream_of_each_write_not_of_its_start(monkeypatch):
    """An in-process CLI run leaves logging configured; a later capture still receives it (CI failure)."""
    from ragflow_migrate import cli

    firsts = {name: io.StringIO() for name in ("stdout", "stderr")}
    for name, stream in firsts.items():
        monkeypatch.setattr(sys, name, stream)
    cli.main(["data", "--list-stages", "--host", "203.0.113.1", "--termination-log", "/dev/null"])
    seconds = {name: io.StringIO() for name in ("stdout", "stderr")}
    for name, stream in seconds.items():
        firsts[name].close()  # the capture of that run has ended
        monkeypatch.setattr(sys, name, stream)
    logs.get_logger().info(events.STEP_SKIPPED, step="schema:v0.21.0", reason="already applied")
    lines = (seconds["stdout"].getvalue() + seconds["stderr"].getvalue()).splitlines()
    assert [json.loads(line)["event"] for line in lines] == [events.STEP_SKIPPED]
