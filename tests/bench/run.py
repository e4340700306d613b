"""`make bench`: full upgrades of generated RAGFlow databases, timed per step, with peak memory.

    python tests/bench/run.py                          # S and M, MariaDB 10.11 and MySQL 9.7
    python tests/bench/run.py --scales S,M,L           # also L (100k tenants, 1M tenant_llm/documents/tasks)
    BENCH_SCALES=L BENCH_SERVERS=mariadb python tests/bench/run.py --from v0.25.6
    python tests/bench/run.py --servers postgres       # PostgreSQL 15 (DB_TYPE=postgres)

For each server (a throwaway one from tests/servers/harness.py, or tests/servers/postgres.py), scale
and source release:

1. ``generate.py`` builds the old database (schema by the tool, then set-based fills), timed; on
   PostgreSQL it builds it on a MariaDB started beside, and ``pgcopy.py`` copies it over (schema
   by the tool at the same release, rows streamed with ``COPY``), timed with it;
2. the real CLI, ``python -m ragflow_migrate run`` (JSON logs), upgrades it to v0.27.0: wall
   time from process start to exit, peak RSS of that process (``wait4``'s ``ru_maxrss``), and
   every step from its ``step.started`` / ``step.finished`` events (schema releases, data stages,
   verify: whatever the pipeline runs, nothing is hard-coded), the slowest ``step.statement``s
   and any ALTER that fell back to COPY;
3. the no-op ``run`` right after (three times; the median is reported);
4. the floor (``floor.py``): the same database generated again from the same seed, brought to the
   same end state by the least SQL that can produce it (schema by the tool's ``schema apply``,
   data stages by a hand-written chain of ``INSERT … SELECT`` / ``UPDATE … JOIN``; on PostgreSQL
   ``floor_pg.py``, on a second copy of the MariaDB rows), timed per stage under the tool's stage
   names; both end states are digested and compared (``--no-floor`` skips it).

The catalogue is RAGFlow's own (``llm_factories-v0.27.0.json`` in the shared folder,
``tests/servers/harness.py``'s ``shared_root()``), read where it lies; ``--catalog bench`` takes
the bench's small one, ``--catalog PATH`` any other.

Output: a table on the console, the scaling ratios (M/S, L/M), the targets met or missed, and
``bench-results/<UTC time>.json`` (+ ``.md``, and ``latest.json`` / ``latest.md``) with the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "servers"))
sys.path.insert(0, str(HERE))

import floor  # noqa: E402
import floor_pg  # noqa: E402
import generate  # noqa: E402
import harness  # noqa: E402
import pgcopy  # noqa: E402
import report  # noqa: E402

TARGET = "v0.27.0"
BIG_TABLES = ("document", "task", "tenant_llm")
RAGFLOW_CATALOG = "llm_factories-v0.27.0.json"  # in <shared>/ragflow-data/, never copied into the repo


def resolve_catalog(value: str | None) -> Path:
    """``--catalog``: empty or ``ragflow`` → RAGFlow's v0.27.0 catalogue in the shared folder;
    ``bench`` → the bench's own small one; anything else is a path."""
    if not value or value.strip().lower() in ("ragflow", "default", "real"):
        return harness.shared_root() / "ragflow-data" / RAGFLOW_CATALOG
    if value.strip().lower() == "bench":
        return generate.DEFAULT_CATALOG
    return Path(value).expanduser()


# --- running the tool ------------------------------------------------------------------------------


def tool_env(server: Any, database: str, catalog: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
        **server.env(database), "RAGFLOW_MIGRATE_LOG_FORMAT": "json",
        "RAGFLOW_MIGRATE_TERMINATION_LOG": os.devnull, "RAGFLOW_MIGRATE_CATALOG": str(catalog),
        **({"RAGFLOW_MIGRATE_SESSIONS": os.environ["RAGFLOW_MIGRATE_SESSIONS"]}
           if os.environ.get("RAGFLOW_MIGRATE_SESSIONS") else {}),
    }


def launch(argv: list[str], env: dict[str, str], workdir: Path, *, label: str) -> dict[str, Any]:
    """Run one process; wall time (start to exit), its own peak RSS, exit code, JSON events."""
    out_path, err_path = workdir / f"{label}.out", workdir / f"{label}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=REPO)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    events = []
    for line in (stdout + "\n" + stderr).splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return {"argv": argv[1:], "exit_code": proc.returncode, "wall_s": round(wall, 3),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "user_s": round(usage.ru_utime, 2),
            "sys_s": round(usage.ru_stime, 2), "events": events, "stdout_tail": stdout[-4000:],
            "stderr_tail": stderr[-4000:]}


def cli(args: list[str], env: dict[str, str], workdir: Path, label: str) -> dict[str, Any]:
    return launch([sys.executable, "-m", "ragflow_migrate", *args], env, workdir, label=label)


def steps_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    started = {e["step"]: e for e in events if e.get("event") == "step.started"}
    out = []
    for e in events:
        if e.get("event") not in ("step.finished", "step.skipped"):
            continue
        s = started.get(e["step"], {})
        rows = int(e.get("rows") or 0)
        dur = float(e.get("duration_s") or 0.0)
        out.append({"step": e["step"], "kind": s.get("kind") or e["step"].split()[0], "release": s.get("release"),
                    "duration_s": dur, "rows": rows, "changes": int(e.get("changes") or 0),
                    "rows_per_s": round(rows / dur) if rows and dur > 0 else None})
    return out


def statements_of(events: list[dict[str, Any]], top: int = 12) -> dict[str, Any]:
    stmts = [e for e in events if e.get("event") == "step.statement"]
    slowest = sorted(stmts, key=lambda e: -(e.get("duration_s") or 0))[:top]
    big = [e for e in stmts if any(f"`{t}`" in (e.get("sql") or "") or f'"{t}"' in (e.get("sql") or "")
                                   for t in BIG_TABLES)
           and (e.get("sql") or "").lstrip().upper().startswith("ALTER")]
    pick = ("step", "duration_s", "algorithm", "rows", "sql")
    for e in stmts:
        e["sql"] = " ".join(str(e.get("sql") or "").split())
    return {
        "count": len(stmts),
        "slowest": [{k: (e.get(k)[:300] if k == "sql" and e.get(k) else e.get(k)) for k in pick} for e in slowest],
        "copy": [{k: e.get(k) for k in pick} for e in stmts if e.get("algorithm") == "COPY"],
        "big_table_ddl": [{k: e.get(k) for k in pick} for e in big],
    }


def failure(result: dict[str, Any], what: str) -> RuntimeError:
    tail = result["stdout_tail"][-2500:] + "\n" + result["stderr_tail"][-1500:]
    return RuntimeError(f"{what} failed with exit {result['exit_code']}:\n{tail}")


# --- one case --------------------------------------------------------------------------------------


def upgrade(env: dict[str, str], workdir: Path, *, log_level: str, noop_runs: int) -> dict[str, Any]:
    procs = [cli(["run", "--log-level", log_level], env, workdir, "upgrade")]
    if procs[0]["exit_code"] != 0:
        raise failure(procs[0], "run")
    events = [e for p in procs for e in p["events"]]
    steps = steps_of(events)
    out: dict[str, Any] = {
        "wall_s": round(sum(p["wall_s"] for p in procs), 3),
        "processes": [{k: p[k] for k in ("argv", "exit_code", "wall_s", "peak_rss_mb", "user_s", "sys_s")}
                      for p in procs],
        "peak_rss_mb": max(p["peak_rss_mb"] for p in procs),
        "steps": steps,
        "schema_s": round(sum(s["duration_s"] for s in steps if s["kind"] == "schema"), 3),
        "data_s": round(sum(s["duration_s"] for s in steps if s["kind"] == "data"), 3),
        "verify_s": round(sum(s["duration_s"] for s in steps if s["kind"] == "verify"), 3),
        # the preflight: before the lock, and again under it only when the plan changed meanwhile
        "preflight_s": round(sum(float(e.get("duration_s") or 0) for e in events
                                 if e.get("event") == "preflight.finished"), 3),
        "statements": statements_of(events),
        "notices": [{k: e.get(k) for k in ("step", "message", "count")} for e in events
                    if e.get("event") == "step.notice"][:20],
    }
    noops = [cli(["run"], env, workdir, f"noop-{i}") for i in range(noop_runs)]
    for n in noops:
        if n["exit_code"] != 0:
            raise failure(n, "no-op run")
    finished = [next((e for e in n["events"] if e.get("event") == "run.finished"), {}) for n in noops]
    out["noop"] = {
        "wall_s": [n["wall_s"] for n in noops],
        "median_s": round(statistics.median(n["wall_s"] for n in noops), 3),
        "tool_duration_s": [f.get("duration_s") for f in finished],
        "outcome": [f.get("outcome") for f in finished],
        "peak_rss_mb": max(n["peak_rss_mb"] for n in noops),
    }
    return out


def run_case(server: Any, scale: str, release: str, args: argparse.Namespace, workroot: Path,
             log: Any) -> dict[str, Any]:
    database = f"bench_{scale.lower()}_{release.replace('.', '_')}"
    with contextlib.suppress(Exception):
        server.drop_database(database)
    server.create_database(database)  # utf8mb4_unicode_ci, as RAGFlow's docker-compose creates it
    env = tool_env(server, database, args.catalog)
    workdir = workroot / f"{server.flavor}-{database}"
    workdir.mkdir(parents=True, exist_ok=True)
    case: dict[str, Any] = {"server": server.label, "server_version": server.version, "scale": scale,
                            "from": release, "to": TARGET, "catalog": str(args.catalog), "load_before": os.getloadavg()}

    def glog(message: str) -> None:
        log(f"[{server.label} {scale} {release}] {message}")

    try:
        log(f"[{server.label} {scale} {release}] generating ...")
        if server.flavor == "postgres":  # generated on the MariaDB beside it, copied over
            gen = pgcopy.generate_case(server, database, release=release, scale=scale, seed=args.seed,
                                       catalog=args.catalog, log=glog)
        else:
            gen = generate.generate(env, release=release, scale=scale, seed=args.seed, catalog=args.catalog, log=glog)
        case["generate"] = gen
        case["size_mb"] = _database_size(server, database)
        log(f"[{server.label} {scale} {release}] generated in {gen['seconds']:.1f}s "
            f"({sum(gen['rows'].values()):,} rows, {case['size_mb']:.0f} MB); upgrading ...")
        case.update(upgrade(env, workdir, log_level=args.log_level, noop_runs=args.noop_runs))
        case["tenant_llm_rows"] = gen["rows"].get("tenant_llm", 0)
        if case["data_s"] > 0:
            case["tenant_llm_rows_per_s"] = round(case["tenant_llm_rows"] / case["data_s"])
        case["load_after"] = os.getloadavg()
        log(f"[{server.label} {scale} {release}] upgrade {case['wall_s']:.1f}s (schema {case['schema_s']:.1f}s, "
            f"data {case['data_s']:.1f}s), peak RSS {case['peak_rss_mb']:.0f} MB, "
            f"no-op {case['noop']['median_s']:.2f}s")
        if args.floor:
            case["floor"] = floor_case(server, database, scale, release, args, workdir,
                                       lambda m: log(f"[{server.label} {scale} {release}] {m}"))
    except Exception as exc:  # noqa: BLE001 - one failed case must not lose the others' numbers
        case["error"] = f"{type(exc).__name__}: {exc}"
        log(f"[{server.label} {scale} {release}] FAILED: {case['error'][:3000]}")
    finally:
        if not args.keep:
            with contextlib.suppress(Exception):
                server.drop_database(database)
            if server.flavor == "postgres":
                with contextlib.suppress(Exception):
                    server.source.drop_database(pgcopy.source_name(database))
    return case


def floor_case(server: Any, database: str, scale: str, release: str, args: argparse.Namespace, workdir: Path,
               log: Any) -> dict[str, Any]:
    """The same database generated again (same seed), upgraded by the floor, and both end states compared.
    Generated right before its run, as the tool's was, so both start from the same cache state."""
    name = database + "_floor"
    out: dict[str, Any] = {"database": name}
    with contextlib.suppress(Exception):
        server.drop_database(name)
    server.create_database(name)
    env = tool_env(server, name, args.catalog)
    try:
        low: Any = floor
        if server.flavor == "postgres":  # the MariaDB rows copied again
            log("floor: copying the generated rows again ...")
            gen = pgcopy.copy_database(server, name, release=release, source_db=pgcopy.source_name(database),
                                       log=lambda _m: None)
            low = floor_pg
        else:
            log("floor: generating the same database again ...")
            gen = generate.generate(env, release=release, scale=scale, seed=args.seed, catalog=args.catalog,
                                    log=lambda _m: None)
        out["generate_s"] = gen["seconds"]
        log("floor: schema (the tool's `schema apply`) ...")
        schema = cli(["schema", "apply"], env, workdir, "floor-schema")
        if schema["exit_code"] != 0:
            raise failure(schema, "schema apply (floor)")
        out["schema_wall_s"] = schema["wall_s"]
        out["schema_steps"] = [s for s in steps_of(schema["events"]) if s["kind"] == "schema"]
        out["schema_s"] = round(sum(s["duration_s"] for s in out["schema_steps"]), 3)
        log("floor: data stages ...")
        result = low.run_floor(env, args.catalog)
        out.update(steps=result["steps"], data_s=result["data_s"], slowest=result["slowest"])
        log(f"floor: data {out['data_s']:.1f}s (schema {out['schema_s']:.1f}s); comparing the end states ...")
        started = time.monotonic()
        if server.flavor == "postgres":  # a session on each database
            check = floor_pg.compare(server.connect, database, name)
        else:
            conn = server.connect()
            try:
                check = floor.compare(conn, database, name)
            finally:
                conn.close()
        out["compare_s"] = round(time.monotonic() - started, 2)
        out["load_after"] = os.getloadavg()
        out["match"] = check["match"]
        out["parts"] = check["parts"]
        if not check["match"]:
            out["differing"] = check["differing"]
            out["samples"] = check["samples"]
        log(f"floor: end state {'MATCHES' if check['match'] else 'DIFFERS'} the tool's ({check['parts']} parts"
            + ("" if check["match"] else f"; differing: {', '.join(check['differing'])}") + ")")
    except Exception as exc:  # noqa: BLE001 - the tool's numbers stand without the floor
        out["error"] = f"{type(exc).__name__}: {exc}"
        log(f"floor FAILED: {out['error'][:3000]}")
    finally:
        if not args.keep:
            with contextlib.suppress(Exception):
                server.drop_database(name)
    return out


def _database_size(server: Any, database: str) -> float:
    if server.flavor == "postgres":
        return pgcopy.database_size_mb(server, database)
    rows = server.query("SELECT COALESCE(SUM(data_length + index_length), 0) / 1048576 FROM information_schema.tables "
                        "WHERE table_schema = %s", (database,))
    return float(rows[0][0] or 0)


# --- machine, report ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(Exception):
        from ragflow_migrate import __version__

        info["tool_version"] = __version__
    with contextlib.suppress(Exception):
        info["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        info["src_uncommitted_changes"] = bool(dirty)
    # What exactly ran: a digest of the package's sources (the working tree may differ from the commit).
    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "ragflow_migrate").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    info["src_digest"] = digest.hexdigest()[:12]
    return info


def start(flavor: str, buffer_pool: str) -> contextlib.AbstractContextManager[Any]:
    """The bench's server of ``flavor`` (PostgreSQL: with the MariaDB its rows are generated on, ``.source``)."""
    if flavor == "postgres":
        return pgcopy.servers(buffer_pool)
    extra = [f"--innodb-buffer-pool-size={buffer_pool}"]
    if flavor == "mysql":
        extra.append("--innodb-redo-log-capacity=100M")  # MySQL's default (the harness sizes it for tests)
    return harness.running(flavor, extra_args=extra)


def _stopped(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default=os.environ.get("BENCH_SCALES") or "S,M",
                        help="comma-separated, from XS S M L (default S,M; env BENCH_SCALES)")
    parser.add_argument("--servers", default=os.environ.get("BENCH_SERVERS") or "mariadb,mysql",
                        help="mariadb, mysql, postgres (default mariadb,mysql; env BENCH_SERVERS); postgres: "
                        "PostgreSQL 15, the rows generated on a MariaDB beside it and copied over")
    parser.add_argument("--from", dest="releases", default=os.environ.get("BENCH_FROM") or "v0.25.6,v0.20.0",
                        help="source releases (default v0.25.6,v0.20.0; env BENCH_FROM)")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("BENCH_SEED") or 42))
    parser.add_argument("--catalog", default=os.environ.get("BENCH_CATALOG") or "ragflow",
                        help="llm_factories.json of the run: `ragflow` (default: RAGFlow's v0.27.0 catalogue in the "
                        "shared folder), `bench` (the bench's own small one), or a path (env BENCH_CATALOG)")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        default=os.environ.get("BENCH_FLOOR", "1") not in ("0", "no", "false"),
                        help="skip the floor (the least-SQL yardstick and its end-state check; env BENCH_FLOOR=0)")
    parser.add_argument("--buffer-pool", default=os.environ.get("BENCH_BUFFER_POOL") or "512M",
                        help="innodb_buffer_pool_size of the servers (default 512M; RAGFlow's compose MySQL: 128M); "
                        "PostgreSQL's shared_buffers")
    parser.add_argument("--log-level", default="info", choices=("info", "debug"),
                        help="the tool's log level: debug also logs each data statement (step.statement)")
    parser.add_argument("--noop-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the servers' folders")
    args = parser.parse_args(argv)
    args.catalog = resolve_catalog(args.catalog).resolve()
    if not args.catalog.is_file():
        parser.error(f"catalogue {args.catalog} does not exist")
    scales = [s.strip().upper() for s in args.scales.split(",") if s.strip()]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    releases = [r.strip() for r in args.releases.split(",") if r.strip()]
    for s in scales:
        if s not in generate.SCALES:
            parser.error(f"unknown scale {s}; known: {', '.join(generate.SCALES)}")
    for s in servers:
        if s not in (*harness.FLAVORS, "postgres"):
            parser.error(f"unknown server {s}; known: {', '.join((*harness.FLAVORS, 'postgres'))}")
    if args.keep:
        os.environ["RAGFLOW_MIGRATE_KEEP_DATADIRS"] = "1"
        harness.KEEP_DATADIRS = True  # read when the harness was imported, before this
    for sig in (signal.SIGTERM, signal.SIGHUP):  # stopped: the servers and their folders go too (L: many GB)
        signal.signal(sig, _stopped)

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

    started = dt.datetime.now(dt.UTC)
    result: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), "servers": {},
        "settings": {"scales": scales, "servers": servers, "from": releases, "to": TARGET, "seed": args.seed,
                     "catalog": str(args.catalog), "floor": args.floor, "buffer_pool": args.buffer_pool,
                     "log_level": args.log_level,
                     "sessions": os.environ.get("RAGFLOW_MIGRATE_SESSIONS") or "the tool's default"},
        "cases": [],
    }
    workroot = Path(tempfile.mkdtemp(prefix="ragflow-bench-"))
    try:
        for flavor in servers:
            log(f"starting {flavor} ...")
            with start(flavor, args.buffer_pool) as server:
                result["servers"][server.label] = server.version
                if flavor == "postgres":
                    result["settings"]["postgres"] = {**server.settings, "generated_on": server.source.label}
                for scale in scales:
                    for release in releases:
                        result["cases"].append(run_case(server, scale, release, args, workroot, log))
    finally:
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)
        else:
            log(f"tool logs kept in {workroot}")
    result["finished"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = report.finish(result)
    print()
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"{stamp}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / f"{stamp}.md").write_text(text)
    shutil.copyfile(args.out / f"{stamp}.json", args.out / "latest.json")
    shutil.copyfile(args.out / f"{stamp}.md", args.out / "latest.md")
    print(f"results: {args.out / (stamp + '.json')} (and .md)")
    return 1 if any("error" in c for c in result["cases"]) else 0


if __name__ == "__main__":
    sys.exit(main())
