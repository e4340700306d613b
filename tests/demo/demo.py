"""`make demo`: a throwaway MariaDB holding an old RAGFlow database, upgraded before your eyes.

1. start a private MariaDB 10.11 (temporary folder, free port; nothing else is touched);
2. build a RAGFlow v0.25.6 database the way RAGFlow itself would (the tool's fresh install of
   an old release) and put a few tenants, models, chats and datasets in it;
3. `status`, `plan`, `run` (console logs), `status`, `schema diff`, and a second `run` (a no-op);
4. a short summary: release before → after, each step's outcome, rows and time, what to try next;
5. stop the server and remove its folder (with `--keep`, or `make demo DEMO_KEEP=1`: only once
   Enter or Ctrl-C is pressed, so that you can point the tool at it from another shell).
"""

from __future__ import annotations

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

from servers import harness  # noqa: E402

CATALOG = TESTS / "data" / "llm_factories.small.json"
OLD_RELEASE = "v0.25.6"

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


def summary(server: harness.Server, run: dict, run_wall: float, noop_wall: float, total: float,
            keep: bool) -> None:
    """The demo in a few lines, from the upgrade's own summary (its termination message)."""
    banner("summary")
    before = f"{run.get('from_release') or '?'} ({run.get('from_state') or '?'})"
    after = f"{run.get('release') or '?'} ({run.get('state') or '?'})"
    print(f"database   rag_flow on MariaDB {server.version.split('-')[0]}, {server.host}:{server.port}")
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
        print("  make demo DEMO_KEEP=1   the same, and the server stays up until Enter; from another shell:")
    print("      .venv/bin/ragflow-migrate status        where the database stands")
    print("      .venv/bin/ragflow-migrate plan          what `run` would do (nothing, now)")
    print("      .venv/bin/ragflow-migrate schema diff   exit 0: in sync with v0.27.0")
    print("  make test               the whole suite on MariaDB 10.11 and Oracle MySQL 9.7 (provisions both)")
    print("  README.md               running it for real: configuration, exit codes, Kubernetes")


def keep_open(server: harness.Server) -> None:
    banner("the server stays up: press Enter (or Ctrl-C) to stop it and remove its folder")
    print("in another shell:")
    print(f"  export MYSQL_HOST={server.host} MYSQL_PORT={server.port} MYSQL_USER=root MYSQL_PASSWORD= "
          f"MYSQL_DBNAME=rag_flow RAGFLOW_MIGRATE_CATALOG={CATALOG}")
    print(f"  cd {TESTS.parent} && .venv/bin/ragflow-migrate status", flush=True)
    try:
        input()
    except (EOFError, KeyboardInterrupt):
        print()


def main(argv: list[str]) -> int:
    keep = "--keep" in argv
    demo_started = time.monotonic()
    banner("starting a throwaway MariaDB 10.11")
    with harness.running("mariadb") as server, tempfile.TemporaryDirectory(prefix="ragflow-demo-") as tmp:
        server.create_database("rag_flow")
        env = {**os.environ, **server.env("rag_flow"), "RAGFLOW_MIGRATE_LOG_FORMAT": "console",
               "RAGFLOW_MIGRATE_CATALOG": str(CATALOG), "RAGFLOW_MIGRATE_TERMINATION_LOG": os.devnull}
        print(f"MariaDB {server.version} on {server.host}:{server.port}, database rag_flow")

        banner(f"building a RAGFlow {OLD_RELEASE} database with a few tenants, models, chats and datasets")
        quiet = {**env, "RAGFLOW_MIGRATE_LOG_LEVEL": "warning"}
        if subprocess.call([sys.executable, "-m", "ragflow_migrate", "run", "--target-version", OLD_RELEASE],
                           env=quiet, stdout=subprocess.DEVNULL) != 0:
            return 1
        server.load_sql("rag_flow", SAMPLE)
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
