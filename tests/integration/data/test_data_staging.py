"""The server stages plain keys itself; it must agree with canonical.py on every row."""

from __future__ import annotations

import data_support as ds

from ragflow_migrate.data import canonical, staging
from ragflow_migrate.data.sqlkit import Meta

KEYS = [None, "", "sk-A", "SK-a", "sk-a ", "9abc", "ünï-key", "key with space", " sk-lead", "\tsk", "{", "{broken",
        '{"api_key": "sk-A", "is_tools": true}', '  {"api_key": "sk-A"}', '{"ark_api_key": "k", "is_tools": true}',
        "[1,2]", '"quoted"', "back\\slash", "emoji-😀", "k" * 700,
        '{"api_key": "\\ud800"}', '{"api_key": "a", "api_key": "b"}',
        # key objects as RAGFlow writes them (staged by the server), and near misses (Python's)
        '{"api_key": "sk-B"}', '{"api_key": "sk-C", "is_tools": false}', '{"api_key": "a%b_c"}', '{"api_key": ""}',
        '{"api_key": " "}', '{"api_key": "ünï😀 "}', '{"api_key": "x\x01"}', '{"api_key": "x\x7f"}',
        '{"api_key": "x\u0085"}', '{"api_key": "x\\\\y"}', '{"api_key": "x\\"y"}', '{"API_KEY": "x"}',
        '{"api_key": "x"} ', '{"api_key": "x"}\n', '{"api_key": "x", "is_tools": TRUE}',
        '{"api_key": "x", "is_tools": true, "z": 1}', '{"api_key": "x", "is_tools": true} ',
        '{"api_key": "x","is_tools": true}', '{"api_key":"x"}', '{"api_key": "x", "b": "y"}', "  "]
BASES = [None, "", "http://h:1", 'http://h/"q"', "http://h/back\\slash", "http://h/\x01", "http://ünï/😀", "  ",
         "http://h/ "]


def test_fast_path_agrees_with_canonical(legacy):
    c = legacy.conn
    n = 0
    for key in KEYS:
        for base in BASES:
            ds.llm(c, "t1", "F", f"m{n}", key, status=["1", "0", "2", "a"][n % 4], api_base=base,
                   max_tokens=[0, 8192, 5][n % 3])
            n += 1
    ctx = legacy.ctx()
    staging.build_llm(ctx, "test", Meta(ctx.conn), batch=7)
    rows = ds._q(ctx.conn, "SELECT api_key, api_base, max_tokens, status, valid, ikey, has_is_tools, m_extra, "
                 "inst_extra, broken_json, fast FROM rm_llm ORDER BY seq")
    assert len(rows) == n
    fast = 0
    for key, base, max_tokens, status, valid, ikey, tools, m_extra, inst_extra, broken, how in rows:
        want = (int(canonical.is_valid_status(status)), canonical.identity_of_key(key, base),
                int(canonical.key_has_is_tools(key)), canonical.legacy_model_extra(key, max_tokens),
                canonical.instance_extra(base), int(canonical.looks_like_broken_json(key)))
        assert (valid, bytes(ikey), tools, m_extra, inst_extra, broken) == want, (key, base, how)
        fast += how == 1
    assert fast >= 60  # plain keys and RAGFlow's key objects with plain base URLs took the server's path


def test_instances_fast_path_agrees(legacy):
    c = legacy.conn
    ds.llm(c, "t1", "F", "m", "x")
    ctx = legacy.ctx()
    for i, key in enumerate(KEYS[1:]):
        for j, extra in enumerate(["", "{}", '{"base_url": "http://h"}', '{"region": "intl"}', "{bad"]):
            ds.insert(c, "tenant_model_instance", id=f"{i:02d}{j:02d}".ljust(32, "0"), instance_name="default",
                      provider_id="p", api_key=key[:512], status="active", extra=extra)
    staging.build_instances(ctx, "test", Meta(ctx.conn), batch=5)
    got = {r[0]: (bytes(r[1]), r[2]) for r in ds._q(ctx.conn, "SELECT id, ikey, intl FROM rm_inst")}
    for iid, key, extra in ds._q(c, "SELECT id, api_key, extra FROM tenant_model_instance"):
        want = canonical.identity_of_key(key, canonical.instance_base_url(extra))
        assert got[iid] == (want, int(extra == '{"region": "intl"}')), (key, extra)
