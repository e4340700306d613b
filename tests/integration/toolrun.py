"""Running the real tool (a subprocess) and reading what it says; comparing schemas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragflow_migrate.schema.diff import compare
from ragflow_migrate.schema.introspect import live_snapshot
from ragflow_migrate.schema.snapshot import from_reference_json

PYTHON = sys.executable



@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    @property
    def summary(self) -> dict[str, Any]:
        (last,) = self.named("run.finished")
        return last


def parse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        if line.strip():
            events.append(json.loads(line))  # every line must be JSON: a failure here is a test failure
    return events


def run_tool(env: dict[str, str], *args: str, timeout: float = 300, extra_env: dict[str, str] | None = None,
             logs_on: str | None = None) -> Result:
    """Run `python -m ragflow_migrate ARGS` with exactly the given environment (plus PATH)."""
    full_env = {"PATH": os.environ.get("PATH", ""), "RAGFLOW_MIGRATE_LOG_FORMAT": "json", **env, **(extra_env or {})}
    proc = subprocess.run([PYTHON, "-m", "ragflow_migrate", *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    stream = logs_on or ("stderr" if args and args[0] in ("status", "plan", "schema") else "stdout")
    events = parse_events(proc.stdout if stream == "stdout" else proc.stderr)
    return Result(proc.returncode, proc.stdout, proc.stderr, events)


def schema_differences(database, release: str = "v0.27.0", *, skip=frozenset()):
    """Differences between the live database and RAGFlow's own fresh schema of ``release``."""
    ref = from_reference_json(json.loads(Path(database.server.schema_file(release)).with_suffix(".json").read_text()))
    conn = database.connect()
    try:
        live = live_snapshot(conn, database.name, mariadb=database.server.flavor == "mariadb")
    finally:
        conn.close()
    return compare(ref, live, skip_columns=skip)
