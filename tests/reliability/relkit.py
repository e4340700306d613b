"""Helpers of the reliability suites: running the tool, old RAGFlow databases with legacy rows,
and the end state of a database as a normalised schema plus a row-level digest.

* :class:`ForkRunner` talks to ``forkserver.py``: the real CLI in forked processes (cheap), with
  kill points at the N-th SQL statement; :func:`run_cli` runs it as a plain subprocess where the
  process itself is the point (``ps``, signals from outside).
* :func:`seed_legacy` fills an old RAGFlow database (any release from v0.20.0 on) with tenants,
  users, legacy ``tenant_llm`` rows (plain keys, JSON keys, NULL keys, disabled rows), knowledge
  bases and dialogs, including hostile strings (quotes, backslashes, ``%s``, unicode).
* :func:`end_state` = normalised schema + row digest of every table (our own tables aside),
  ignoring the timestamps and generated ids the data spec lets differ between runs (§2).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from ragflow_migrate.db.dialect import quote
from ragflow_migrate.schema.introspect import live_snapshot

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
PYTHON = sys.executable
OWN_PREFIX = "ragflow_migrate_"
#: The releases the suites start from: the oldest supported one, and the last before the model
#: tables (where the v0.26/v0.27 data stages have the most to do).
OLDEST, BEFORE_MODELS = "v0.20.0", "v0.25.6"

# --- results --------------------------------------------------------------------------------------


@dataclass
class Result:
    code: int | None
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)
    pid: int | None = None
    took: float | None = None  # seconds, when measured

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    @property
    def summary(self) -> dict[str, Any]:
        found = self.named("run.finished")
        assert found, f"no run.finished (exit {self.code}):\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"
        return found[-1]

    @property
    def text(self) -> str:
        return self.stdout + self.stderr

    def explain(self) -> str:
        took = f" after {self.took:.1f}s" if self.took is not None else ""
        return f"exit {self.code}{took}\n--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"


def parse_events(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line cut by SIGKILL
    return out


def _catalogue() -> str:
    from servers.harness import schema_root

    return str(schema_root().parent / "ragflow-data" / "llm_factories-v0.27.0.json")


CATALOGUE = _catalogue()  # RAGFlow v0.27.0's llm_factories.json (the shared copy)


def tool_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment of one run: PATH, JSON logs, RAGFlow's catalogue, a termination file
    nowhere unless given."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RAGFLOW_MIGRATE_LOG_FORMAT": "json",
            "RAGFLOW_MIGRATE_TERMINATION_LOG": "/nonexistent-dir/termination-log",
            "RAGFLOW_MIGRATE_CATALOG": CATALOGUE, **env}
    full.update(extra)
    return full


def run_cli(env: dict[str, str], *args: str, timeout: float = 300, logs_on: str | None = None) -> Result:
    """`python -m ragflow_migrate ARGS` as a subprocess, with exactly this environment."""
    proc = subprocess.run([PYTHON, "-m", "ragflow_migrate", *args], env=tool_env(env), capture_output=True,
                          text=True, timeout=timeout)
    stream = logs_on or ("stderr" if args and args[0] in ("status", "plan", "schema") else "stdout")
    return Result(proc.returncode, proc.stdout, proc.stderr, parse_events(proc.stdout if stream == "stdout"
                                                                           else proc.stderr))


class ForkRunner:
    """The CLI in forked children of ``forkserver.py`` (one server per test worker)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._counter = 0
        self._mutex = threading.Lock()
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(SRC), str(HERE)])}
        self.proc = subprocess.Popen([PYTHON, str(HERE / "forkserver.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, bufsize=1)
        hello = json.loads(self.proc.stdout.readline())
        assert "ready" in hello, hello

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._mutex:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died")
        return json.loads(line)

    def spawn(self, env: dict[str, str], *args: str, kill_at: int | None = None, kill_mode: str = "done",
              count: bool = False, delay: float = 0.0, spy: Path | None = None) -> Child:
        self._counter += 1
        log = self.workdir / f"run-{self._counter}.log"
        request = {"op": "spawn", "argv": list(args), "env": tool_env(env), "log": str(log),
                   "kill_at": kill_at, "kill_mode": kill_mode, "delay": delay}
        if count:
            request["count_file"] = str(log) + ".count"
        if spy is not None:
            request["spy_file"] = str(spy)
        answer = self._ask(request)
        return Child(self, answer["pid"], log, args)

    def run(self, env: dict[str, str], *args: str, timeout: float = 300, **kw: Any) -> Result:
        return self.spawn(env, *args, **kw).wait(timeout)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:  # noqa: BLE001
            self.proc.kill()


class Child:
    def __init__(self, runner: ForkRunner, pid: int, log: Path, args: tuple[str, ...]) -> None:
        self.runner, self.pid, self.log, self.args = runner, pid, log, args
        self.code: int | None = None
        self.done = False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if not self.done:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float = 300) -> Result:
        if not self.done:
            code = self.runner._ask({"op": "wait", "pid": self.pid, "timeout": timeout})["code"]
            if code is None:
                self.kill()
                self.runner._ask({"op": "wait", "pid": self.pid, "timeout": 30})
                raise AssertionError(f"run {self.args} (pid {self.pid}) did not finish within {timeout}s:\n"
                                     + self.output()[-4000:])
            self.code, self.done = code, True
        return self.result()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def errors(self) -> str:
        err = Path(str(self.log) + ".err")
        return err.read_text(errors="replace") if err.exists() else ""

    def statements(self) -> int:
        return int(Path(str(self.log) + ".count").read_text())

    def events(self) -> list[dict[str, Any]]:
        return parse_events(self.output())

    def wait_for_event(self, predicate, timeout: float = 60) -> dict[str, Any]:
        """Poll the child's log until an event matches (or fail)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            time.sleep(0.01)
        raise AssertionError(f"no matching event within {timeout}s:\n{self.output()[-3000:]}\n{self.errors()[-2000:]}")

    def result(self) -> Result:
        stdout, stderr = self.output(), self.errors()
        stream = stderr if self.args and self.args[0] in ("status", "plan", "schema") else stdout
        return Result(self.code, stdout, stderr, parse_events(stream), self.pid)


# --- old RAGFlow databases with legacy rows -----------------------------------------------------

HOSTILE = (
    "O'Brien \"quoted\" `tick`",
    "back\\slash\\' OR '1'='1",
    "'); DROP TABLE tenant; --",
    "%s %(name)s {0} ${MYSQL_PASSWORD}",
    "ünïcödé 模型 🚀",
    "tab\tnew\nline",
)


def _columns(conn, table: str) -> dict[str, tuple[str, bool, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT column_name, data_type, is_nullable, extra FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND table_name = %s", (table,))
        return {r[0]: (str(r[1]).lower(), r[2] == "YES", r[3] or "") for r in cur.fetchall()}


def insert_row(conn, table: str, cache: dict, **values: Any) -> None:
    """Insert a row, filling NOT NULL columns the seed does not care about; columns this
    release does not have are left out."""
    if table not in cache:
        cache[table] = _columns(conn, table)
    cols = cache[table]
    row: dict[str, Any] = {}
    for name, (dtype, nullable, extra) in cols.items():
        if nullable or "auto_increment" in extra:
            continue
        if dtype in ("int", "bigint", "tinyint", "smallint", "float", "double", "decimal"):
            row[name] = 0
        elif dtype in ("datetime", "timestamp", "date"):
            row[name] = "2024-01-01 00:00:00"
        elif dtype in ("longtext", "text", "mediumtext"):
            row[name] = "{}"
        else:
            row[name] = ""
    row.update({k: v for k, v in values.items() if k in cols})
    names = ", ".join(f"`{c}`" for c in row)
    marks = ", ".join(["%s"] * len(row))
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{table}` ({names}) VALUES ({marks})", list(row.values()))


FACTORIES = {
    "OpenAI": [("gpt-4o", "chat"), ("gpt-4o-mini", "chat"), ("text-embedding-3-small", "embedding"),
               ("whisper-1", "speech2text")],
    "SILICONFLOW": [("BAAI/bge-large-zh-v1.5", "embedding"), ("BAAI/bge-reranker-v2-m3", "rerank"),
                    ("Qwen/Qwen3-VL-8B-Instruct", "image2text")],
    "Ollama": [("llama3:8b", "chat"), ("nomic-embed", "embedding")],
    "VolcEngine": [("doubao-pro", "chat")],
    "OldFactory": [("retired", "chat")],
}


def seed_legacy(conn, tenants: int = 6, seed: int = 5, hostile: bool = True) -> None:
    """A deterministic, varied legacy data set (same seed → same rows, on any release)."""
    rnd = random.Random(seed)
    cache: dict = {}
    ts = {"create_time": 1700000000000, "create_date": "2023-11-14 22:13:20",
          "update_time": 1700000000000, "update_date": "2023-11-14 22:13:20"}
    for t in range(tenants):
        tid = f"{t:02d}" + hashlib.md5(f"{seed}-{t}".encode()).hexdigest()[:30]
        name = HOSTILE[t % len(HOSTILE)] if hostile else f"tenant {t}"
        refs: dict[str, str] = {}
        for factory in rnd.sample(sorted(FACTORIES), 3):
            base = "http://ollama:11434" if factory == "Ollama" else None
            for model, mtype in FACTORIES[factory]:
                key = rnd.choice([f"sk-{t}-{factory[:3]}", None,
                                  json.dumps({"api_key": f"sk-{t}-{factory[:3]}", "is_tools": True}),
                                  '{"broken json', f"sk-{t}-alt-" + (HOSTILE[(t + 1) % len(HOSTILE)] if hostile
                                                                      else "x")])
                insert_row(conn, "tenant_llm", cache, tenant_id=tid, llm_factory=factory, llm_name=model,
                           model_type=mtype, api_key=key, api_base=base, status=rnd.choice("1110"),
                           max_tokens=rnd.choice([0, 4096, 8192]), used_tokens=rnd.randint(0, 99), **ts)
                column = {"embedding": "embd_id", "rerank": "rerank_id", "speech2text": "asr_id",
                          "image2text": "img2txt_id"}.get(mtype, "llm_id")
                refs.setdefault(column, f"{model}@{factory}")
        insert_row(conn, "tenant", cache, id=tid, name=name, llm_id=refs.get("llm_id", ""),
                   embd_id=refs.get("embd_id", ""), asr_id=refs.get("asr_id", ""),
                   img2txt_id=refs.get("img2txt_id", ""), rerank_id=refs.get("rerank_id", ""),
                   parser_ids="naive:General", credit=512, status="1", **ts)
        insert_row(conn, "user", cache, id=tid, nickname=name, email=f"u{t}@example.com", password="pbkdf2$x",
                   is_authenticated="1", is_active="1", is_anonymous="0", status="1", **ts)
        insert_row(conn, "user_tenant", cache, id=f"ut{tid[:30]}", user_id=tid, tenant_id=tid, role="owner",
                   invited_by=tid, status="1", **ts)
        for k in range(2):
            insert_row(conn, "knowledgebase", cache, id=f"kb{k}{tid[:29]}", tenant_id=tid, name=f"{name} kb{k}",
                       embd_id=refs.get("embd_id", "BAAI/bge-large-zh-v1.5@BAAI"), permission="me",
                       created_by=tid, parser_id="naive", status="1",
                       parser_config=json.dumps({"llm_id": refs.get("llm_id", ""), "note": name}), **ts)
        insert_row(conn, "dialog", cache, id=f"dg{tid[:30]}", tenant_id=tid, name=name,
                   llm_id=refs.get("llm_id", "gpt-4o@OpenAI"), rerank_id=refs.get("rerank_id", ""),
                   llm_setting="{}", prompt_type="simple", prompt_config=json.dumps({"system": name}),
                   similarity_threshold=0.2, vector_similarity_weight=0.3, top_n=6, top_k=1024, do_refer="1",
                   kb_ids="[]", status="1", **ts)


def build_old_database(server, name: str, release: str, *, tenants: int = 6, seed: int = 5,
                       hostile: bool = True) -> None:
    """(Re)create database ``name`` at RAGFlow ``release`` (its fresh dump) with legacy rows."""
    server.drop_database(name)
    server.create_database(name)
    server.load_sql(name, server.schema_file(release))
    conn = server.connect(name)
    try:
        seed_legacy(conn, tenants=tenants, seed=seed, hostile=hostile)
    finally:
        conn.close()


# --- end states ---------------------------------------------------------------------------------

#: Timestamps the data stages stamp with the time they run (spec §2): not compared.
TIMESTAMP_COLUMNS = frozenset({"create_time", "create_date", "update_time", "update_date"})
#: Tables whose ``id`` the data stages generate (uuid1 hex, spec §2): ids are replaced by a label
#: made of the row's content, everywhere they appear (references included).
GENERATED_ID_TABLES = ("tenant_model_provider", "tenant_model_instance", "tenant_model",
                       "tenant_model_group", "tenant_model_group_mapping")


def _rows(conn, table: str) -> tuple[list[str], list[tuple]]:
    with conn.cursor() as cur:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                    "AND table_name = %s ORDER BY column_name", (table,))
        cols = [r[0] for r in cur.fetchall() if r[0] not in TIMESTAMP_COLUMNS]
        cur.execute("SELECT " + ", ".join(quote(c) for c in cols) + f" FROM {quote(table)}")
        return cols, [tuple(r) for r in cur.fetchall()]


def _norm(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, float):
        return round(value, 6)
    return value if isinstance(value, (int, str, type(None))) else str(value)


def row_digest(conn) -> dict[str, list[tuple]]:
    """Every row of every table (ours aside), as sorted tuples of (column, value)."""
    with conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                    "AND table_type = 'BASE TABLE'")
        tables = sorted(r[0] for r in cur.fetchall() if not r[0].startswith(OWN_PREFIX))
    raw = {t: _rows(conn, t) for t in tables}
    labels: dict[Any, str] = {}
    for _ in range(4):  # references between generated tables are at most 3 deep
        fresh: dict[Any, str] = {}
        for table in GENERATED_ID_TABLES:
            if table not in raw:
                continue
            cols, rows = raw[table]
            for row in rows:
                content = [(c, labels.get(v, _norm(v))) for c, v in zip(cols, row) if c != "id"]
                fresh[row[cols.index("id")]] = f"<{table}:{hashlib.sha1(repr(content).encode()).hexdigest()[:12]}>"
        labels = fresh
    out = {}
    for table, (cols, rows) in raw.items():
        out[table] = sorted((tuple((c, labels.get(v, _norm(v)) if isinstance(v, str) else _norm(v))
                                   for c, v in zip(cols, row)) for row in rows), key=repr)
    return out


def normalised_schema(conn, database: str, mariadb: bool) -> dict[str, Any]:
    snap = live_snapshot(conn, database, mariadb=mariadb)
    return {name: (list(t.columns.items()), sorted(t.indexes.items()), t.collation)
            for name, t in snap.tables.items() if not name.startswith(OWN_PREFIX)}


def end_state(server, database: str) -> dict[str, Any]:
    conn = server.connect(database)
    try:
        return {"schema": normalised_schema(conn, database, server.flavor == "mariadb"),
                "rows": row_digest(conn), "history": history(conn)}
    finally:
        conn.close()


def history(conn) -> list[str] | None:
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM ragflow_migrate_history ORDER BY name")
            return [r[0] for r in cur.fetchall()]
    except pymysql.err.ProgrammingError:
        return None


def describe_difference(got: dict[str, Any], want: dict[str, Any]) -> str:
    lines = []
    if got["history"] != want["history"]:
        lines.append(f"history: {got['history']} != {want['history']}")
    for table in sorted(set(got["schema"]) | set(want["schema"])):
        if got["schema"].get(table) != want["schema"].get(table):
            lines.append(f"schema of {table}: {got['schema'].get(table)!r}\n   != {want['schema'].get(table)!r}")
    for table in sorted(set(got["rows"]) | set(want["rows"])):
        a, b = got["rows"].get(table, []), want["rows"].get(table, [])
        if a != b:
            extra = [r for r in a if r not in b][:3]
            missing = [r for r in b if r not in a][:3]
            lines.append(f"rows of {table}: {len(a)} vs {len(b)}; unexpected {extra}; missing {missing}")
    return "\n".join(lines[:30]) or "equal"


def lock_is_free(server, name: str = "init_database_tables") -> bool:
    return server.query("SELECT IS_FREE_LOCK(%s)", (name,))[0][0] == 1


def wait_lock_free(server, name: str = "init_database_tables", timeout: float = 30) -> None:
    """A SIGKILLed runner's session (and its lock) goes when the server notices the socket closed."""
    deadline = time.monotonic() + timeout
    while not lock_is_free(server, name):
        assert time.monotonic() < deadline, f"lock {name!r} still held after {timeout}s"
        time.sleep(0.05)


def assert_same_end_state(server, database: str, want: dict[str, Any], context: str = "") -> None:
    got = end_state(server, database)
    keys = ("schema", "rows", "history")
    assert {k: got[k] for k in keys} == {k: want[k] for k in keys}, \
        f"{context}\n{describe_difference(got, want)}"


def phase_of(events: list[dict[str, Any]]) -> str:
    """Where a run was when it stopped, from its last events: wait, pre-check, lock, a step, verify."""
    phase = "start"
    for event in events:
        name = event.get("event", "")
        if name in ("run.started", "db.wait.attempt"):
            phase = "wait"
        elif name == "db.ready":
            phase = "pre-check"
        elif name in ("lock.waiting", "lock.acquired", "plan.ready"):
            phase = "lock"
        elif name in ("step.started", "step.statement", "step.progress", "step.notice", "step.waiting"):
            phase = event.get("step", phase)
        elif name in ("step.finished", "step.skipped"):
            phase = f"after {event.get('step')}"
        elif name == "lock.released":
            phase = "release"
    return phase


def row_digest_of(server, database: str, tables: tuple[str, ...]) -> dict[str, list[tuple]]:
    conn = server.connect(database)
    try:
        return {t: sorted(((tuple((c, _norm(v)) for c, v in zip(cols, row)) for row in rows)), key=repr)
                for t in tables for cols, rows in [_rows(conn, t)]}
    finally:
        conn.close()
