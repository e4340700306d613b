"""`make demo`: a throwaway MariaDB holding an old RAGFlow database, upgraded before your eyes.

`make demo DB=postgres` (``--db postgres``) tells the same story on PostgreSQL 15.

1. start a private MariaDB 10.11 or PostgreSQL 15 (temporary folder, free port; nothing else is
   touched);
2. build a RAGFlow v0.25.6 database the way RAGFlow itself would (MariaDB: the tool's fresh
   install of an old release; PostgreSQL: RAGFlow's own v0.25.6 schema, the reference dump) and
   put a few tenants, models, chats and datasets in it;
3. `status`, `plan`, `run` (console logs), `status`, `schema diff`, and a second `run` (a no-op);
4. a short summary: release before → after, each step's outcome, rows and time, what to try next;
5. stop the server and remove its folder (with `--keep`, or `make demo DEMO_KEEP=1`: only once
   Enter or Ctrl-C is pressed, so that you can point the tool at it from another shell).

Usage: demo.py [--db mariadb|postgres] [--keep]
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS))

from servers import harness, postgres  # noqa: E402

CATALOG = TESTS / "data" / "llm_factories.small.json"
OLD_RELEASE = "v0.25.6"
#: --db: the server each demo runs, as the summary and the headers name it.
DATABASES = {"mariadb": "MariaDB", "postgres": "PostgreSQL"}

#: The same rows on both servers: every column is text, integer or real (RAGFlow's flags such as
#: status and do_refer are varchar(1), not booleans), and the NOT NULL ones without a default are
#: all given (see CREATE TABLE in the PostgreSQL reference dump).
SAMPLE = """
INSERT INTO tenant (id, name, llm_id, embd_id, asr_id, img2txt_id, rerank_id, tts_id, parser_ids, credit, status)
VALUES ('t1', 'acme', 'gpt-4o@OpenAI', 'text-embedding-3-small@OpenAI', '', '', '', NULL, 'naive:General', 512, '1'),
       ('t2', 'globex', 'llama3:8b@Ollama', 'text-embedding-3-small@OpenAI', '', '', '', NULL, 'naive:General', 512, '1');
INSERT INTO tenant_llm (tenant_id, llm_factory, model_type, llm_name, api_key, api_base, max_tokens, used_tokens, status)
VALUES ('t1', 'OpenAI', 'chat', 'gpt-4o', 'sk-acme', NULL, 128000, 10, '1'),
       ('t1', 'OpenAI', 'embedding', 'text-embedding-3-small', 'sk-acme', NULL, 8191, 0, '1'),
       ('t1', 'OpenAI', 'chat', 'o1', 'sk-acme', NULL, 200000, 0, '0'),
       ('t2', 'Ollama', 'chat', 'llama3:8b', '', 'http://ollama:11434', 8192, 0, '1'),
       ('t2', 'OpenAI', 'embedding', 'text-embedding-3-small', '{"api_key": "sk-globex", "is_tools": true}', NULL,
        8191, 0, '1');
INSERT INTO knowledgebase (id, tenant_id, name, embd_id, permission, created_by, doc_num, token_num, chunk_num,
  similarity_threshold, vector_similarity_weight, parser_id, parser_config, pagerank, status)
VALUES ('kb1', 't1', 'handbook', 'text-embedding-3-small@OpenAI', 'me', 'u1', 0, 0, 0, 0.2, 0.3, 'naive',
  '{"llm_id": "gpt-4o@OpenAI"}', 0, '1');
INSERT INTO dialog (id, tenant_id, name, llm_id, llm_setting, prompt_type, prompt_config, similarity_threshold,
  vector_similarity_weight, top_n, top_k, do_refer, rerank_id, kb_ids, status)
VALUES ('d1', 't1', 'helpdesk', 'gpt-4o@OpenAI', '{}', 'simple', '{}', 0.2, 0.3, 6, 1024, '1', '', '["kb1"]', '1');
"""


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def tool(env: dict[str, str], *args: str) -> int:
    print("$ ragflow-migrate " + " ".join(args), flush=True)
    return subprocess.call([sys.executable, "-m", "ragflow_migrate", *args], env=env)


def server_name(server: harness.Server) -> str:
    """``MariaDB`` or ``PostgreSQL``."""
    return DATABASES[server.flavor]


def short_version(server: harness.Server) -> str:
    """``10.11.14`` from ``10.11.14-MariaDB-0+deb12u2``, ``15.14`` from ``15.14 (Debian 15.14-0+deb12u1)``."""
    return server.version.split()[0].split("-")[0]


def summary(server: harness.Server, run: dict, run_wall: float, noop_wall: float, total: float,
            keep: bool) -> None:
    """The demo in a few lines, from the upgrade's own summary (its termination message)."""
    banner("summary")
    before = f"{run.get('from_release') or '?'} ({run.get('from_state') or '?'})"
    after = f"{run.get('release') or '?'} ({run.get('state') or '?'})"
    print(f"database   rag_flow on {server_name(server)} {short_version(server)}, {server.host}:{server.port}")
    print(f"upgrade    {before} → {after}: {run.get('outcome')}, exit {run.get('exit_code')}, "
          f"{run.get('duration_s', 0):.2f}s in the tool ({run_wall:.2f}s with Python's start)")
    steps = run.get("steps") or []
    if steps:
        width = max(len(s["step"]) for s in steps)
        print(f"  {'step':<{width}}  {'outcome':<8} {'rows':>5} {'changes':>7} {'seconds':>7}")
        for s in steps:
            print(f"  {s['step']:<{width}}  {s['status']:<8} {s.get('rows', 0):>5} {s.get('changes', 0):>7} "
                  f"{s['duration_s']:>7.3f}")
    elif run.get("steps_omitted"):
        print(f"  ({run['steps_omitted']} steps: too many for the termination message)")
    print(f"no-op run  nothing pending, no lock taken: {noop_wall:.2f}s with Python's start")
    print(f"demo       {total:.1f}s in all (server start and the old database included)")
    print("\ntry next")
    if keep:
        print("  the server stays up (below): point the tool at it from another shell")
    else:
        again = "make demo DEMO_KEEP=1" if server.flavor == "mariadb" else f"make demo DB={server.flavor} DEMO_KEEP=1"
        print(f"  {again:<22}  the same, and the server stays up until Enter; from another shell:")
    print("      .venv/bin/ragflow-migrate status        where the database stands")
    print("      .venv/bin/ragflow-migrate plan          what `run` would do (nothing, now)")
    print("      .venv/bin/ragflow-migrate schema diff   exit 0: in sync with v0.27.0")
    print("  make test               the whole suite on MariaDB 10.11, Oracle MySQL 9.7, Galera, a MySQL group and PostgreSQL 15 (provisions them)")
    print("  README.md               running it for real: configuration, exit codes, Kubernetes")


def keep_open(server: harness.Server) -> None:
    banner("the server stays up: press Enter (or Ctrl-C) to stop it and remove its folder")
    print("in another shell:")
    if server.flavor == "postgres":
        print(f"  export DB_TYPE=postgres POSTGRES_HOST={server.host} POSTGRES_PORT={server.port} "
              f"POSTGRES_USER=postgres POSTGRES_PASSWORD= POSTGRES_DBNAME=rag_flow RAGFLOW_MIGRATE_CATALOG={CATALOG}")
    else:
        print(f"  export MYSQL_HOST={server.host} MYSQL_PORT={server.port} MYSQL_USER=root MYSQL_PASSWORD= "
              f"MYSQL_DBNAME=rag_flow RAGFLOW_MIGRATE_CATALOG={CATALOG}")
    print(f"  cd {TESTS.parent} && .venv/bin/ragflow-migrate status", flush=True)
    try:
        input()
    except (EOFError, KeyboardInterrupt):
        print()


def parse_args(argv: list[str]) -> tuple[str, bool] | None:
    """(database, keep) from ``[--db mariadb|postgres] [--keep]``; None (after a message) when wrong."""
    db, keep, rest = "mariadb", False, list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--keep":
            keep = True
        elif arg == "--db" and rest:
            db = rest.pop(0)
        elif arg.startswith("--db="):
            db = arg.split("=", 1)[1]
        else:
            print(f"demo.py: unexpected argument {arg!r}; usage: demo.py [--db mariadb|postgres] [--keep]",
                  file=sys.stderr)
            return None
    if db not in DATABASES:
        print(f"demo.py: --db must be one of {', '.join(DATABASES)}, not {db!r}", file=sys.stderr)
        return None
    return db, keep


def start(db: str) -> contextlib.AbstractContextManager[harness.Server]:
    """The throwaway server, stopped and removed when the block ends."""
    return postgres.running() if db == "postgres" else harness.running(db)


def build_old_database(server: harness.Server, quiet: dict[str, str]) -> bool:
    """A RAGFlow v0.25.6 database as RAGFlow itself would have left it, with the sample rows."""
    if server.flavor == "postgres":
        # RAGFlow's own v0.25.6 schema on PostgreSQL 15 (its peewee models, dumped by pg_dump).
        server.load_sql("rag_flow", harness.schema_root() / postgres.LABEL / f"fresh-{OLD_RELEASE}.sql")
    elif subprocess.call([sys.executable, "-m", "ragflow_migrate", "run", "--target-version", OLD_RELEASE],
                         env=quiet, stdout=subprocess.DEVNULL) != 0:
        return False
    server.load_sql("rag_flow", SAMPLE)
    return True


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args is None:
        return 2
    db, keep = args
    demo_started = time.monotonic()
    banner("starting a throwaway MariaDB 10.11" if db == "mariadb" else "starting a throwaway PostgreSQL 15")
    with start(db) as server, tempfile.TemporaryDirectory(prefix="ragflow-demo-") as tmp:
        server.create_database("rag_flow")
        env = {**os.environ, **server.env("rag_flow"), "RAGFLOW_MIGRATE_LOG_FORMAT": "console",
               "RAGFLOW_MIGRATE_CATALOG": str(CATALOG), "RAGFLOW_MIGRATE_TERMINATION_LOG": os.devnull}
        print(f"{server_name(server)} {server.version} on {server.host}:{server.port}, database rag_flow")

        banner(f"building a RAGFlow {OLD_RELEASE} database with a few tenants, models, chats and datasets")
        quiet = {**env, "RAGFLOW_MIGRATE_LOG_LEVEL": "warning"}
        if not build_old_database(server, quiet):
            return 1
        print("done: 32 tables, 2 tenants, 5 tenant_llm rows, 1 dialog, 1 knowledge base")

        banner("status: where the database stands")
        tool(env, "status")
        banner("plan: what `run` would do (first lines; nothing is changed)")
        plan = subprocess.run([sys.executable, "-m", "ragflow_migrate", "plan"], env=quiet, capture_output=True,
                              text=True)
        print("\n".join(plan.stdout.splitlines()[:25]) + "\n  …")
        banner("run: the upgrade")
        # The run's summary (the Kubernetes termination message) feeds the demo's own summary.
        run_summary = Path(tmp) / "run-summary.json"
        started = time.monotonic()
        code = tool({**env, "RAGFLOW_MIGRATE_TERMINATION_LOG": str(run_summary)}, "run")
        run_wall = time.monotonic() - started
        print(f"(exit {code}, {run_wall:.2f}s wall)")
        if code != 0:
            return code
        banner("status and schema diff afterwards")
        tool(env, "status")
        tool(quiet, "schema", "diff")
        banner("a second run: nothing pending, no lock taken")
        started = time.monotonic()
        code = tool(env, "run")
        noop_wall = time.monotonic() - started
        print(f"(exit {code}, {noop_wall:.2f}s wall, including Python's start)")
        summary(server, json.loads(run_summary.read_text()), run_wall, noop_wall, time.monotonic() - demo_started,
                keep)
        if keep:
            keep_open(server)
        banner("stopping the server; its folder is removed")
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
