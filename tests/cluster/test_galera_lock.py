"""The tool on a real 3-node MariaDB Galera cluster (README, "Locking on clusters").

* 10 runners spread over the 3 nodes start at once: all exit 0, exactly one applies the steps,
  the others wait (naming the holder) and finish as no-ops; every node ends with RAGFlow's target
  schema and the same rows as one uninterrupted run; no node's error log holds a rejected DDL.
* RAGFlow's own startup lock (``GET_LOCK('init_database_tables')``) held on node 2 makes a runner
  that reaches node 3 wait, as it does on a single server.
* A node killed under a running migration: the run stops with a retryable code; the next run,
  through another node while it is down, converges to the same rows as an uninterrupted run; the
  node rejoins with them.
* Where the nodes cannot be locked (given addresses unreachable), the lease alone serialises
  runners, and a SIGKILLed lease holder is taken over after ``--lease-ttl``.
* ``db.ready`` and ``status`` report the topology; ``status`` through another node sees the holder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import clusterkit  # noqa: E402
import relkit  # noqa: E402

from ragflow_migrate import events  # noqa: E402

RELEASE = relkit.BEFORE_MODELS  # v0.25.6: the schema chain and every data stage run
TARGET_REFERENCE = "v0.27.0"
REJECTED_DDL_MARKERS = ("Ignoring error", "ALGORITHM=", "is not supported for this operation",
                        "Slave SQL: Error", "Replica SQL: Error")


def _build(db, release: str = RELEASE, tenants: int = 6) -> None:
    node = db.cluster.node(1)
    node.load_sql(db.name, node.schema_file(release))
    conn = db.connect(1)
    try:
        relkit.seed_legacy(conn, tenants=tenants)
    finally:
        conn.close()


def _env(db, i: int, **extra: str) -> dict[str, str]:
    return relkit.tool_env({**db.envs[i], **extra})


def _spawn(db, i: int, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([relkit.PYTHON, "-m", "ragflow_migrate", *(args or ("run",))], env=_env(db, i, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen, timeout: float = 300) -> relkit.Result:
    out, err = proc.communicate(timeout=timeout)
    return relkit.Result(proc.returncode, out, err, relkit.parse_events(out), proc.pid)


def _end_states(db) -> list[dict]:
    states = []
    for node in db.cluster.running():
        conn = node.connect(db.name)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION wsrep_sync_wait = 1")
            states.append({"schema": relkit.normalised_schema(conn, db.name, True), "rows": relkit.row_digest(conn),
                           "history": relkit.history(conn)})
        finally:
            conn.close()
    return states


def _log_offsets(cluster) -> dict[int, int]:
    return {n.index: cluster.error_log_offset(n.index) for n in cluster.running()}


def _rejected_ddl(cluster, offsets: dict[int, int]) -> list[str]:
    lines = []
    for i, offset in offsets.items():
        lines += [f"node {i}: {line}" for line in cluster.error_log_since(i, offset).splitlines()
                  if any(m in line for m in REJECTED_DDL_MARKERS)]
    return lines


def _target_differences(db, i: int) -> list:
    from ragflow_migrate.schema.diff import compare, drift
    from ragflow_migrate.schema.introspect import live_snapshot
    from ragflow_migrate.schema.snapshot import from_reference_json

    node = db.cluster.node(i)
    ref = from_reference_json(json.loads(Path(node.schema_file(TARGET_REFERENCE)).with_suffix(".json").read_text()))
    conn = node.connect(db.name)
    try:
        live = live_snapshot(conn, db.name, mariadb=True)
    finally:
        conn.close()
    return drift(compare(ref, live))  # retired tables kept (evaluation_*) are not drift, as on one server


_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="galera-reference")


def _single_server_reference(server, name: str, release: str) -> Future:
    """The end state of one run on a stand-alone MariaDB of the same old database (the yardstick: a
    cluster must change nothing in the result), as a future: computed in the background (on another
    server) while the test works on the cluster."""
    return _BACKGROUND.submit(_single_server_reference_now, server, name, release)


def _single_server_reference_now(server, name: str, release: str) -> dict:
    relkit.build_old_database(server, name, release)
    try:
        result = relkit.run_cli({**server.env(name), "RAGFLOW_MIGRATE_BATCH_SIZE": "2"}, "run")
        assert result.code == 0, result.explain()
        return relkit.end_state(server, name)
    finally:
        server.drop_database(name)


def test_ten_runners_over_three_nodes_one_migrates(galera_db, tmp_path, mariadb_server):
    db = galera_db
    reference = _single_server_reference(mariadb_server, f"{db.name[:40]}_single", relkit.OLDEST)
    _build(db, release=relkit.OLDEST)  # the whole chain: from v0.20.0 a trial of algorithms was refused 11 times
    offsets = _log_offsets(db.cluster)
    # batches of 2 rows: every page boundary is crossed (AUTO_INCREMENT steps by 3 on this cluster)
    results = clusterkit.run_all([{**db.envs[1 + i % 3], "POD_NAME": f"ragflow-{i:02d}",
                                   "RAGFLOW_MIGRATE_BATCH_SIZE": "2"} for i in range(10)], tmp_path)
    for i, r in enumerate(results):
        assert r.code == 0, f"runner {i} (node {1 + i % 3}): {r.explain()}"
    migrated = [i for i, r in enumerate(results) if r.summary["outcome"] == "migrated"]
    assert len(migrated) == 1, f"runners that migrated: {migrated}"
    for i, r in enumerate(results):
        ready = r.named(events.DB_READY)[0]
        assert ready["topology"]["kind"] == "galera" and ready["topology"]["cluster_size"] == 3, ready
        acquired = r.named(events.LOCK_ACQUIRED)
        assert acquired and len(acquired[0]["nodes"]) == 3, r.explain()  # every node's GET_LOCK, then the lease
        if i != migrated[0]:
            assert not r.named(events.STEP_STARTED), f"runner {i} did work: {r.explain()}"
            for wait in r.named(events.LOCK_WAITING):
                assert wait["holder"].get("connection_id") or wait["holder"].get("run_id"), wait
    waiting = sum(bool(r.named(events.LOCK_WAITING)) for r in results)
    assert waiting >= 5, f"only {waiting} runners waited: the runs did not overlap"
    # every ALTER went out once, with the server's own algorithm (no refused try replicated)
    statements = [e for e in results[migrated[0]].named(events.STEP_STATEMENT) if e["sql"].startswith("ALTER")]
    assert statements and {e["algorithm"] for e in statements} <= {"DEFAULT", None}, statements[:3]
    assert _rejected_ddl(db.cluster, offsets) == []
    states = _end_states(db)
    assert len(states) == 3 and all(s == states[0] for s in states[1:]), "the nodes differ"
    want = reference.result(timeout=600)
    assert states[0] == want, relkit.describe_difference(states[0], want)  # as on a stand-alone server
    # every table has a primary key, ours included (Percona XtraDB Cluster's strict mode refuses DML without)
    without_pk = db.query(1, "SELECT t.table_name FROM information_schema.tables t WHERE t.table_schema = DATABASE() "
                          "AND t.table_type = 'BASE TABLE' AND NOT EXISTS (SELECT 1 FROM "
                          "information_schema.table_constraints c WHERE c.table_schema = t.table_schema AND "
                          "c.table_name = t.table_name AND c.constraint_type = 'PRIMARY KEY')")
    assert without_pk == [], without_pk
    assert {"ragflow_migrate_lease", "ragflow_migrate_lock_holder", "ragflow_migrate_journal"} <= {
        r[0] for r in db.query(1, "SHOW TABLES")}
    for i in (1, 2, 3):
        assert _target_differences(db, i) == [], f"node {i}"
    noop = _result(_spawn(db, 2))
    assert noop.code == 0 and noop.summary["outcome"] == "noop", noop.explain()


def test_ragflow_startup_lock_on_another_node_makes_the_runner_wait(galera_db):
    db = galera_db
    _build(db, tenants=2)
    ragflow = db.connect(2)  # RAGFlow's startup, on node 2: GET_LOCK('init_database_tables')
    try:
        with ragflow.cursor() as cur:
            cur.execute("SELECT GET_LOCK('init_database_tables', 0)")
            assert cur.fetchone()[0] == 1
        proc = _spawn(db, 3, RAGFLOW_MIGRATE_LOCK_POLL="0.5")
        node2 = f"{db.cluster.node(2).host}:{db.cluster.node(2).port}"
        deadline = time.monotonic() + 60
        seen: list[dict] = []
        lines: list[str] = []
        while time.monotonic() < deadline and not seen:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            event = json.loads(line)
            if event.get("event") == events.LOCK_WAITING and event.get("node") == node2:
                seen.append(event)
        assert seen, "the runner never waited for node 2's lock:\n" + "".join(lines[-20:])
        assert seen[0]["holder"].get("tool") != "ragflow-migrate", seen[0]
        assert not any('"step.started"' in line for line in lines)
        status = relkit.run_cli(db.envs[1], "status", "--json", logs_on="stderr")
        assert json.loads(status.stdout)["topology"]["kind"] == "galera", status.explain()
    finally:
        ragflow.close()  # RAGFlow's startup ends: its session (and lock) goes
    out, err = proc.communicate(timeout=300)
    result = relkit.Result(proc.returncode, "".join(lines) + out, err,
                           relkit.parse_events("".join(lines) + out), proc.pid)
    assert result.code == 0 and result.summary["outcome"] == "migrated", result.explain()


def test_a_node_killed_mid_run_then_the_next_run_converges(galera_db, galera):
    db = galera_db
    reference = f"{db.name[:50]}_ref"
    galera.create_database(reference)
    try:
        ref_envs = {i: {**env, "MYSQL_DBNAME": reference} for i, env in db.envs.items()}
        node = galera.node(1)
        for name in (reference, db.name):
            node.load_sql(name, node.schema_file(RELEASE))
            conn = galera.connect(1, name)
            try:
                relkit.seed_legacy(conn, tenants=8)
            finally:
                conn.close()
        ref = relkit.run_cli(ref_envs[2], "run")
        assert ref.code == 0, ref.explain()
        proc = _spawn(db, 1)
        # kill node 1 once the runner is inside a data stage (schema steps already applied)
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            event = json.loads(line)
            if event.get("event") == events.STEP_STARTED and event.get("kind") == "data":
                break
        galera.kill(1)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode in (3, 6, 7), f"exit {proc.returncode}\n{''.join(lines)[-3000:]}{out[-3000:]}{err[-2000:]}"
        # the next run, through node 2 while node 1 is down (once the others have noticed)
        galera.wait_synced(size=2)
        again = relkit.run_cli(db.envs[2], "run")
        assert again.code == 0 and again.summary["outcome"] == "migrated", again.explain()
        galera.restart(1)
        got = _end_states(db)
        conn = galera.connect(2, reference)
        try:
            want = {"schema": relkit.normalised_schema(conn, reference, True), "rows": relkit.row_digest(conn),
                    "history": relkit.history(conn)}
        finally:
            conn.close()
        for state in got:
            assert state == want, relkit.describe_difference(state, want)
    finally:
        galera.drop_database(reference)


def test_lease_alone_serialises_runners_and_a_killed_holder_is_taken_over(galera_db, tmp_path):
    db = galera_db
    _build(db, tenants=4)
    lease_only = {"RAGFLOW_MIGRATE_CLUSTER_NODES": "127.0.0.1:1", "RAGFLOW_MIGRATE_LEASE_TTL": "3s",
                  "RAGFLOW_MIGRATE_LOCK_POLL": "0.5"}
    # a holder killed with SIGKILL while it holds the lease (inside its first step)
    first = _spawn(db, 1, **lease_only)
    lines = []
    while True:
        line = first.stdout.readline()
        assert line, "".join(lines) + first.stderr.read()
        lines.append(line)
        if json.loads(line).get("event") == events.STEP_STARTED:
            break
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    started = time.monotonic()
    results = clusterkit.run_all([{**db.envs[node], **lease_only} for node in (1, 2, 3, 1)], tmp_path)
    for i, r in enumerate(results):
        assert r.code == 0, f"runner {i}: {r.explain()}"
        assert r.named(events.LOCK_ACQUIRED)[0]["nodes"] == [], r.explain()  # no node lock: the lease alone
    migrated = [r for r in results if r.summary["outcome"] == "migrated"]
    assert len(migrated) == 1, [r.summary["outcome"] for r in results]
    took_over = [e for r in results for e in r.named(events.STEP_NOTICE) if "took over the lease" in e["message"]]
    assert len(took_over) == 1 and "no heartbeat" in took_over[0]["message"], took_over
    assert time.monotonic() - started >= 3  # nobody took the dead holder's lease before --lease-ttl
    states = _end_states(db)
    assert all(s == states[0] for s in states[1:])
    assert _target_differences(db, 3) == []


def _fingerprint(db) -> list[tuple]:
    conn = db.connect(1)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                        "ORDER BY table_name")
            tables = [r[0] for r in cur.fetchall()]
            out = []
            for table in tables:
                cur.execute(f"SHOW CREATE TABLE `{table}`")
                out.append(cur.fetchone())
                cur.execute(f"CHECKSUM TABLE `{table}`")
                out.append(cur.fetchone())
            return out
    finally:
        conn.close()


def test_a_blocking_alter_above_the_size_limit_is_refused_before_any_write(galera_db):
    db = galera_db
    _build(db, release=relkit.OLDEST, tenants=6)
    conn = db.connect(1)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
            for (table,) in cur.fetchall():
                cur.execute(f"ANALYZE TABLE `{table}`")  # fresh row estimates
                cur.fetchall()
    finally:
        conn.close()
    before = _fingerprint(db)
    refused = relkit.run_cli({**db.envs[2], "RAGFLOW_MIGRATE_BLOCKING_DDL_ROWS": "1"}, "run")
    assert refused.code == 2, refused.explain()
    blockers = refused.summary["blockers"]
    assert blockers and {b["kind"] for b in blockers} == {"blocking_ddl"}, blockers
    assert all(b["estimated_rows"] > 1 and b["table"] for b in blockers), blockers
    assert "--allow-blocking-ddl" in refused.summary["hint"]
    assert _fingerprint(db) == before  # nothing was written: not even the lock's bookkeeping
    allowed = relkit.run_cli({**db.envs[3], "RAGFLOW_MIGRATE_BLOCKING_DDL_ROWS": "1",
                              "RAGFLOW_MIGRATE_ALLOW_BLOCKING_DDL": "true"}, "run")
    assert allowed.code == 0 and allowed.summary["outcome"] == "migrated", allowed.explain()
    assert _target_differences(db, 1) == []


def test_status_through_another_node_names_the_runner_holding_the_cluster_lock(galera_db):
    db = galera_db
    _build(db, tenants=2)
    proc = _spawn(db, 1, POD_NAME="ragflow-holder")
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, "".join(lines) + proc.stderr.read()
        lines.append(line)
        if json.loads(line).get("event") == events.STEP_STARTED:
            break
    os.kill(proc.pid, signal.SIGSTOP)  # frozen while it holds the lock
    try:
        status = relkit.run_cli(db.envs[3], "status", "--json", logs_on="stderr")
        report = json.loads(status.stdout)
        assert report["state"] == "in_progress", report
        holder = report["lock"]["holder"]
        assert holder["instance"] == "ragflow-holder" and holder["tool"] == "ragflow-migrate", holder
        assert holder["node"].endswith(f":{db.cluster.node(1).port}"), holder
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, "".join(lines)[-2000:] + out[-2000:] + err[-2000:]
