"""The tool on a real 3-member single-primary MySQL 9.7 Group Replication group.

* Through a secondary: refused before anything is written (exit 7), naming the primary; status
  reports the topology and the member's role.
* Several runners through the primary at once: exactly one migrates, the others wait and finish
  as no-ops.
* The primary switched, or killed, under a running migration: the run stops with a retryable
  code; the next run through the new primary converges to exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "reliability"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import clusterkit  # noqa: E402
import relkit  # noqa: E402

from ragflow_migrate import events  # noqa: E402
from servers import harness  # noqa: E402

RELEASE = relkit.BEFORE_MODELS


def _build(group, index: int, name: str, tenants: int = 6) -> None:
    member = group.members[index]
    member.load_sql(name, harness.schema_path(harness.LABELS["mysql"], RELEASE))
    conn = group.connect(index, name)
    try:
        relkit.seed_legacy(conn, tenants=tenants)
    finally:
        conn.close()
    group.sync(index)


def _spawn(env: dict[str, str], *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([relkit.PYTHON, "-m", "ragflow_migrate", *(args or ("run",))],
                            env=relkit.tool_env({**env, **extra}), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _result(proc: subprocess.Popen, timeout: float = 300, head: str = "") -> relkit.Result:
    out, err = proc.communicate(timeout=timeout)
    return relkit.Result(proc.returncode, head + out, err, relkit.parse_events(head + out), proc.pid)


def _until_data_stage(proc: subprocess.Popen, timeout: float = 120) -> str:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, "".join(lines)[-3000:] + proc.stderr.read()[-2000:]
        lines.append(line)
        event = json.loads(line)
        if event.get("event") == events.STEP_STARTED and event.get("kind") == "data":
            return "".join(lines)
    raise AssertionError("no data stage started:\n" + "".join(lines)[-3000:])


def _state(group, index: int, name: str) -> dict:
    return relkit.end_state(group.members[index], name)


def _fingerprint(group, index: int, name: str) -> list:
    conn = group.connect(index)  # one session for every statement (a connection per query took seconds)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                        "ORDER BY table_name", (name,))
            out = []
            for (table,) in cur.fetchall():
                cur.execute(f"SHOW CREATE TABLE `{name}`.`{table}`")
                out += cur.fetchall()
                cur.execute(f"CHECKSUM TABLE `{name}`.`{table}`")
                out += cur.fetchall()
            return out
    finally:
        conn.close()


def test_a_secondary_is_refused_naming_the_primary_and_runners_on_the_primary_take_turns(gr_db, tmp_path):
    group, name, primary = gr_db.group, gr_db.name, gr_db.primary
    _build(group, primary, name)
    secondary = next(i for i in range(3) if i != primary)
    before = _fingerprint(group, primary, name)
    refused = relkit.run_cli(gr_db.envs[secondary], "run")
    assert refused.code == 7, refused.explain()
    ready = refused.named(events.DB_READY)[0]["topology"]
    assert ready["kind"] == "group_replication" and ready["role"] == "SECONDARY", ready
    primary_address = f"127.0.0.1:{group.members[primary].port}"
    assert primary_address in refused.summary["error"] and primary_address in refused.summary["hint"], refused.summary
    assert _fingerprint(group, primary, name) == before
    status = relkit.run_cli(gr_db.envs[secondary], "status", "--json", logs_on="stderr")
    assert json.loads(status.stdout)["topology"]["mode"] == "single-primary", status.explain()

    results = clusterkit.run_all([{**gr_db.envs[primary], "POD_NAME": f"gr-{i}"} for i in range(5)], tmp_path)
    for i, r in enumerate(results):
        assert r.code == 0, f"runner {i}: {r.explain()}"
    assert [r.summary["outcome"] for r in results].count("migrated") == 1
    assert sum(bool(r.named(events.LOCK_WAITING)) for r in results) >= 2
    group.sync(primary)
    want = _state(group, primary, name)
    assert all(_state(group, i, name) == want for i in range(3)), "the members differ"


_REFERENCES: dict[tuple[str, int], Future] = {}
_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gr-reference")


def _reference(server, name: str) -> Future:
    """The end state of one uninterrupted run of the same old database on a stand-alone MySQL 9.7 (a
    group must change nothing in the result: its AUTO_INCREMENT steps by 7, for one), as a future:
    computed in the background while the test works on the group, and once per server for the tests
    of this module (the same release and seeded rows give the same end state)."""
    key = (server.label, server.port)
    if key not in _REFERENCES:
        _REFERENCES[key] = _BACKGROUND.submit(_reference_now, server, name)
    return _REFERENCES[key]


def _reference_now(server, name: str) -> dict:
    server.create_database(name)
    try:
        server.load_sql(name, server.schema_file(RELEASE))
        conn = server.connect(name)
        try:
            relkit.seed_legacy(conn, tenants=6)
        finally:
            conn.close()
        ref = relkit.run_cli(server.env(name), "run")
        assert ref.code == 0, ref.explain()
        return relkit.end_state(server, name)
    finally:
        server.drop_database(name)


def test_the_primary_switched_mid_run_then_the_next_run_converges(gr_db, mysql_server):
    group, name, primary = gr_db.group, gr_db.name, gr_db.primary
    reference = _reference(mysql_server, f"{name[:50]}_ref")
    _build(group, primary, name, tenants=6)
    proc = _spawn(gr_db.envs[primary], RAGFLOW_MIGRATE_BATCH_SIZE="2")  # every page boundary crossed
    head = _until_data_stage(proc)
    target = next(i for i in range(3) if i != primary)
    group.switch_primary(target)
    stopped = _result(proc, head=head)
    assert stopped.code in (6, 7), stopped.explain()
    again = relkit.run_cli({**gr_db.envs[target], "RAGFLOW_MIGRATE_BATCH_SIZE": "2"}, "run")
    assert again.code == 0 and again.summary["outcome"] == "migrated", again.explain()
    group.sync(target)
    want = reference.result(timeout=600)
    for i in range(3):
        got = _state(group, i, name)
        assert got == want, relkit.describe_difference(got, want)


def test_the_primary_killed_mid_run_then_the_next_run_converges(gr_db, mysql_server):
    group, name, primary = gr_db.group, gr_db.name, gr_db.primary
    reference = _reference(mysql_server, f"{name[:50]}_ref")
    _build(group, primary, name, tenants=6)
    proc = _spawn(gr_db.envs[primary], RAGFLOW_MIGRATE_BATCH_SIZE="2")  # every page boundary crossed
    head = _until_data_stage(proc)
    group.kill(primary)
    stopped = _result(proc, head=head)
    assert stopped.code in (3, 6, 7), stopped.explain()
    new_primary = group.wait_primary(exclude=primary)
    # The next run through the new primary, and meanwhile the killed member's restart (most of which
    # is XCom's wait of ~10 s before it lets a former member in again; it can only join as a SECONDARY).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gr-next-run") as pool:
        next_run = pool.submit(relkit.run_cli, {**gr_db.envs[new_primary], "RAGFLOW_MIGRATE_BATCH_SIZE": "2"}, "run")
        group.restart(primary)  # from the main thread: the server keeps its parent-death signal
        again = next_run.result(timeout=600)
    assert again.code == 0 and again.summary["outcome"] == "migrated", again.explain()
    want = reference.result(timeout=600)
    got = _state(group, new_primary, name)
    assert got == want, relkit.describe_difference(got, want)
    group.sync(new_primary)
    got = _state(group, primary, name)
    assert got == want, relkit.describe_difference(got, want)
