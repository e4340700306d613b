"""Through the whole tool: a direct v0.25.6 → v0.27.0 upgrade equals v0.25.6 → v0.26.4 → v0.27.0.

Runs ``ragflow-migrate run`` as the image does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import data_support as ds


def _run(env: dict[str, str], *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ragflow_migrate", "run", "--catalog", str(ds.SMALL_CATALOG),
                           "--log-format", "json", *extra], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=600)
    return proc, time.monotonic() - started


def test_direct_upgrade_equals_step_by_step(legacy_at, database, ragflow_schema):
    direct = legacy_at("v0.25.6")
    ds.rich_rows(direct.conn, tenants=8)
    proc, _ = _run(database.env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    direct.check()
    result = direct.snapshot()
    proc, _ = _run(database.env)
    assert proc.returncode == 0 and json.loads(proc.stdout.splitlines()[-1])["outcome"] == "noop"

    name = database.name[:56] + "_sbs"
    database.server.create_database(name)
    try:
        env = {**database.env, **database.server.env(name)}
        other = type(database)(name=name, server=database.server, env=env)
        ds.load_schema(other, ragflow_schema("v0.25.6"))
        conn = other.connect(charset="utf8mb4")
        ds.rich_rows(conn, tenants=8)
        for target in ("v0.26.4", "v0.27.0"):
            proc, _ = _run(env, "--target-version", target)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert ds.marker_value(conn) == "v0.27.0"
        ds.check_acceptance(conn)
        assert ds.snapshot(conn) == result, ds.diff(ds.snapshot(conn), result)
        conn.close()
    finally:
        database.server.drop_database(name)


def test_a_stop_between_the_last_stage_and_the_marker_is_finished_by_the_marker_alone(legacy):
    """The kill matrix's re-run met this once: every stage recorded, the marker not yet written."""
    ds.spec_rows(legacy.conn)
    ctx = legacy.ctx()
    ds.run_all(ctx)
    before = ds.snapshot(legacy.conn)
    legacy.q("DELETE FROM system_settings WHERE name = 'mysql_migration.database.version'")
    assert ds.run_all(ctx) == ["data marker v0.26.0", "data marker v0.27.0"]
    assert ds.marker_value(legacy.conn) == "v0.27.0" and ds.snapshot(legacy.conn) == before
