"""The real CLI with ``--log-format console`` on a small v0.25.6 database: short, readable, no SQL
at info, ending with the summary table (the JSON format is covered by every other test)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from toolrun import run_tool

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import data_support as ds  # noqa: E402


def test_run_on_the_console_reads_at_a_glance(database, ragflow_schema):
    ds.load_schema(database, ragflow_schema("v0.25.6"))
    env = {**database.env, "RAGFLOW_MIGRATE_CATALOG": str(ds.SMALL_CATALOG)}
    proc = run_tool(env, "run", "--log-format", "console", logs_on="stderr")  # stdout is not JSON: don't parse it
    assert proc.code == 0, proc.stdout + proc.stderr
    lines = proc.stdout.rstrip("\n").split("\n")

    assert len(lines) < 40, proc.stdout
    assert "CREATE TABLE" not in proc.stdout and "ALTER TABLE" not in proc.stdout and "\\n" not in proc.stdout
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout  # not a TTY: no colours, no updating line
    assert not any(line.lstrip().startswith("{") for line in lines)  # no JSON
    assert all(len(line) < 240 for line in lines), max(lines, key=len)
    assert re.search(r"ragflow-migrate \S+ run: \S+@\S+, target v0\.27\.0", lines[0])
    assert len([line for line in lines if re.search(r" [✓–✗] schema v0\.2\d\.\d ", line)]) == 10  # one per step

    summary = lines[next(i for i, line in enumerate(lines) if "run finished" in line):]
    assert summary[1:5] == ["outcome   migrated (exit 0)", "release   v0.25.6 → v0.27.0",
                            "state     up_to_date (was pending)", summary[4]]
    assert summary[4].startswith("duration  ") and summary[5].split() == ["step", "status", "rows", "seconds"]
    assert summary[6].startswith("schema v0.20.0 … v0.26.0 (8)") and summary[-1].startswith("verify schema ")
    assert all(re.search(r"  (applied|skipped) +\d[\d,]* +\d+\.\d\d$", row) for row in summary[6:]), summary

