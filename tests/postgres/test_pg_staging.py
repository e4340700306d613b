"""``rm_llm`` on PostgreSQL: the server stages plain keys and key objects itself (``base._STAGE_LLM``), Python the others.
Both must give what canonical.py gives, row for row, whatever the key, base URL, status and max_tokens."""

from __future__ import annotations

import psycopg

from ragflow_migrate import logs, runner
from ragflow_migrate.backends.postgres.data import base
from ragflow_migrate.data import canonical
from servers import harness

SCHEMA = harness.shared_root() / "ragflow-schema" / "postgres-15" / "fresh-v0.26.0.sql"
KEYS = [None, "", "sk-A", "SK-a", "sk-a ", "9abc", "Zz", "ünï-key", "Ärger", "key with space", " sk-lead", "\tsk",
        "-dash", "_under", "{", "{broken", '{"api_key": "sk-A", "is_tools": true}', '  {"api_key": "sk-A"}',
        '{"ark_api_key": "k", "is_tools": true}', "[1,2]", '"quoted"', "back\\slash", "emoji-😀", "k" * 700,
        # objects the server parses itself, or must leave to Python
        '{"api_key": "sk-B"}', '{"api_key": "sk-B", "is_tools": false}', '{"is_tools": true, "api_key": "sk-B"}',
        '{"api_key": "\\u00e9t\\u00e9 \\ud83d\\ude00"}', '{"api_key": null, "is_tools": true}', "{}",
        '{"is_tools": 1, "api_key": "x"}', '{"api_key": "a", "api_key": "b"}', '{"api_key": 5}',
        '{"api_key": {"nested": 1}}', '{"api_key": "a\tb"}', '{"api_key": "\\ud800"}', '{"api_key": "\\u0000"}',
        '{"api_key": "x", "is_tools": NaN}', '\u00a0{"api_key": "x"}', '{"api_key": "x"} trailing',
        '\n\t {"api_key": "x"}\n', '{"api_key": "x", "region": "r"}', '{"api_key":"k\\"q\\\\"}',
        '{"api_key": "ünï 😀"}', '{"api_key": ""}', '{"api_key": "a"}"}', '{"api_key": "a\\u00e9"}',
        '{"api_key": "x", "is_tools": true, "more": 1}', '{"api_key": "a", "b": "c"}', '{"api_key": "%_"}']
BASES = [None, "", "http://h:1", 'http://h/"q"', "http://h/back\\slash", "http://h/\x01", "http://h/\x7f",
         "http://h/\x1f", "http://ünï/😀"]
STATUSES = ["1", "0", "2", "active", "enable", "Active", "1 ", ""]
MAX_TOKENS = [0, 8192, 5, -3]


def _stage(pg_settings, rows: int) -> list[tuple]:
    ctx = runner.open_context(pg_settings, logs.get_logger(), "staging-test", wait=False)
    try:
        base.json_functions(ctx.conn)  # as every stage does first
        base.build_llm(ctx, "test", base.PgMeta(ctx.conn), batch=7)
        got = base.query(ctx.conn, "SELECT api_key, api_base, max_tokens, status, valid, ikey, has_is_tools, m_extra, "
                                   "inst_extra, broken_json, fast FROM rm_llm ORDER BY seq")
    finally:
        runner.close_context(ctx)
    assert len(got) == rows
    return got


def _load(pg_server, pg_database) -> int:
    pg_server.load_sql(pg_database, SCHEMA)
    with psycopg.connect(host=pg_server.host, port=pg_server.port, user="postgres", dbname=pg_database,
                         autocommit=True) as conn:
        conn.execute("ALTER TABLE tenant_llm ALTER COLUMN status TYPE varchar(16)")  # room for 'active', 'enable'
        n = 0
        for key in KEYS:
            for api_base in BASES:
                status = STATUSES[n % len(STATUSES)]
                conn.execute("INSERT INTO tenant_llm (tenant_id, llm_factory, llm_name, model_type, api_key, api_base, "
                             "max_tokens, used_tokens, status) VALUES ('t1', 'F', %s, 'chat', %s, %s, %s, 0, %s)",
                             (f"m{n}", key, api_base, MAX_TOKENS[n % len(MAX_TOKENS)],
                              status))
                n += 1
    return n


def _want(key, api_base, max_tokens, status) -> tuple:
    return (int(canonical.is_valid_status(status)), canonical.identity_of_key(key, api_base),
            int(canonical.key_has_is_tools(key)), canonical.legacy_model_extra(key, max_tokens),
            canonical.instance_extra(api_base), int(canonical.looks_like_broken_json(key)))


def test_the_server_stages_plain_keys_as_canonical_does(pg_server, pg_database, pg_settings):
    n = _load(pg_server, pg_database)
    fast = json_fast = 0
    for key, api_base, max_tokens, status, valid, ikey, tools, m_extra, inst_extra, broken, how in _stage(pg_settings, n):
        got = (valid, bytes(ikey), tools, m_extra, inst_extra, broken)
        assert got == _want(key, api_base, max_tokens, status), (key, api_base, status, max_tokens, how)
        fast += bool(how)
        json_fast += bool(how) and (key or "").lstrip().startswith("{")
    assert fast >= 60  # plain keys and simple objects with plain base URLs took the server's path
    assert json_fast >= 20  # the objects among them: json.dumps' spacing, no escapes (6 keys x 4 base URLs)
    assert fast < n  # and the others Python's
