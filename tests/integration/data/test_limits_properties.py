"""Property test: legacy values at and beyond every column limit the pipeline writes.

Generated v0.25.6 databases (shrunk to a few tenants so that the suite stays fast) hold names of
up to 128 characters, API keys around and beyond ``tenant_model_instance.api_key``'s 512 (plain,
JSON with and without ``is_tools``, broken JSON, NULL), base URLs whose JSON form outgrows
``extra``'s 512, two-part references whose ``m@default@p`` form outgrows VARCHAR(128), and the same
references inside JSON configs; multi-byte UTF-8, backslashes, quotes, trailing spaces. Each
example is upgraded to v0.27.0 by the whole pipeline (schema and data) with or without
``--widen-columns``, and either

* completes, with no value lost or altered: every instance key is a legacy key byte for byte,
  every reference is the legacy one or its ``m@default@p`` form (the latter whenever it fits),
  every JSON config is the legacy one or its rewrite, and §6's acceptance checks hold; or
* (only without ``--widen-columns``) stops at the preflight with exit 10 and the database's
  fingerprint (every SHOW CREATE TABLE and CHECKSUM TABLE) unchanged.

``RAGFLOW_MIGRATE_HYPOTHESIS_EXAMPLES`` raises the example count (default 6 per server).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import data_support as ds
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ragflow_migrate import runner
from ragflow_migrate.data import canonical
from ragflow_migrate.errors import DataRejectedError
from ragflow_migrate.pipeline import plan_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fingerprint import differences, fingerprint  # noqa: E402

EXAMPLES = int(os.environ.get("RAGFLOW_MIGRATE_HYPOTHESIS_EXAMPLES", "6"))
CHARS = st.sampled_from(list("abcxyzABC019-_./:") + [" ", "\\", "'", '"', "é", "✓", "😀", "\t"])
FACTORIES = ["OpenAI", "Ollama", "Google Cloud", "Gone"]


def _text(min_size: int, max_size: int):
    return st.text(CHARS, min_size=min_size, max_size=max_size)


key_st = st.one_of(
    st.none(), st.just(""),
    _text(1, 40).map(lambda s: "sk-" + s),
    st.integers(480, 2400).map(lambda n: "sk-" + "k" * n),  # around and beyond 512
    st.integers(505, 520).map(lambda n: "sk-" + "é" * n),  # at the limit, multi-byte
    st.tuples(_text(1, 30), st.booleans()).map(lambda t: json.dumps({"api_key": "sk-" + t[0], "is_tools": t[1]},
                                                                    ensure_ascii=False)),
    st.integers(400, 2000).map(lambda n: json.dumps({"private_key": "p" * n, "project": "x"})),  # service account
    st.just('{"api_key": "sk-broken'),
)
base_st = st.one_of(st.none(), st.just(""), _text(1, 40).map(lambda s: "http://h/" + s),
                    st.integers(200, 246).map(lambda n: "http://h/" + '"' * n))  # escaped: up to 517 > 512
row_st = st.fixed_dictionaries({
    "factory": st.sampled_from(FACTORIES),
    "name": _text(1, 128).filter(lambda s: s.strip(" ") != ""),
    "key": key_st,
    "status": st.sampled_from(["1", "1", "0"]),
    "type": st.sampled_from(["chat", "embedding", "rerank", "image2text", "weird", None]),
    "base": base_st,
})
tenant_st = st.fixed_dictionaries({
    "rows": st.lists(row_st, min_size=1, max_size=4),
    "ref_row": st.integers(0, 3),
    "json_broken": st.booleans(),
})


def _build(conn, tenants) -> list[tuple[str, str, str]]:
    """The legacy database; returns the (table, id, column) of every reference planted."""
    planted = []
    for t, spec in enumerate(tenants):
        tid = f"t{t}"
        rows, seen = [], set()
        for r in spec["rows"]:
            ident = (r["factory"].casefold(), r["name"].casefold().rstrip(" "))
            if ident in seen:
                continue  # tenant_llm's unique key, as a _ci / PAD SPACE collation compares it
            seen.add(ident)
            rows.append(r)
            ds.llm(conn, tid, r["factory"], r["name"], r["key"], status=r["status"], model_type=r["type"],
                   api_base=r["base"])
        r = rows[spec["ref_row"] % len(rows)]
        ref = f"{r['name']}@{r['factory']}"[:128]
        ds.tenant(conn, tid, llm_id=ref, embd_id=ref)
        config = '{"llm_id": "' if spec["json_broken"] else json.dumps({"llm_id": ref, "x": [{"embd_id": ref}]},
                                                                        ensure_ascii=False)
        ds.insert(conn, "knowledgebase", id=f"kb{t}", tenant_id=tid, name="kb", permission="me", created_by=tid,
                  parser_id="naive", embd_id=ref, parser_config=config)
        ds.insert(conn, "dialog", id=f"d{t}", tenant_id=tid, llm_id=ref, rerank_id="", llm_setting="{}",
                  prompt_type="simple", prompt_config="{}", similarity_threshold=0.2, vector_similarity_weight=0.3,
                  top_n=6, top_k=1024, do_refer="1", kb_ids="[]")
        planted += [("tenant", tid, "llm_id"), ("tenant", tid, "embd_id"), ("knowledgebase", f"kb{t}", "embd_id"),
                    ("dialog", f"d{t}", "llm_id")]
    return planted


def _rewritten(value: str) -> str:
    new, changed = canonical.rewrite_model_id(value)
    return new if changed else value


def test_values_at_and_beyond_every_limit(database, ragflow_schema):
    schema_path = ragflow_schema("v0.25.6")

    @settings(max_examples=EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(tenant_st, min_size=1, max_size=3), st.booleans())
    def check(tenants, widen):
        database.server.drop_database(database.name)
        database.server.create_database(database.name)
        ds.load_schema(database, schema_path)
        conn = database.connect(charset="utf8mb4")
        ctx = None
        try:
            planted = _build(conn, tenants)
            legacy_refs = {p: ds._q(conn, f"SELECT `{p[2]}` FROM `{p[0]}` WHERE id = %s", (p[1],))[0][0]
                           for p in planted}
            configs = dict(ds._q(conn, "SELECT id, parser_config FROM knowledgebase"))
            keys = {(r.tenant, r.factory.casefold(), r.key or "") for r in ds.legacy_rows(conn)}
            before = fingerprint(conn)
            ctx = ds.open_ctx(database.env, batch_size=2, widen_columns="true" if widen else "false")
            try:
                runner.run(ctx, plan_pipeline)
            except DataRejectedError as exc:
                assert not widen, f"--widen-columns and still refused: {exc.message}"
                assert exc.message.startswith("preflight:"), exc.message
                assert not differences(before, fingerprint(conn)), "a refused run changed the database"
                event("refused at the preflight")
                return
            widened = ds._q(conn, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                            "AND table_name = 'ragflow_migrate_widening'")[0][0]
            event("completed, columns widened" if widened else "completed")
            # completed: nothing lost or altered
            for i in ds.instances(conn):
                assert (i["tenant"], i["provider"].casefold(), i["api_key"]) in keys, f"key not byte for byte: {i}"
            for (table, rid, column), old in legacy_refs.items():
                (now,) = ds._q(conn, f"SELECT `{column}` FROM `{table}` WHERE id = %s", (rid,))[0]
                want = _rewritten(old)
                assert now in (old, want), f"{table}.{rid}.{column}: {old!r} became {now!r}"
                if len(want) <= 128:
                    assert now == want, f"{table}.{rid}.{column}: {old!r} not rewritten although it fits"
            for rid, now in ds._q(conn, "SELECT id, parser_config FROM knowledgebase"):
                old = configs[rid]
                try:
                    parsed = json.loads(old)
                except ValueError:
                    assert now == old  # broken JSON is left alone
                    continue
                assert json.loads(now) in (parsed, canonical.rewrite_config(parsed, ("parser_config",))[0])
            ds.check_acceptance(conn)
        finally:
            if ctx is not None:
                runner.close_context(ctx)
            conn.close()

    check()
