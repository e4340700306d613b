"""Pure rules of the data migration: canonical keys, statuses, type bits, extras, rewrites, references."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragflow_migrate.data import canonical as c

EXAMPLES = int(os.environ.get("RAGFLOW_MIGRATE_HYPOTHESIS_EXAMPLES", "100"))


# --- canonical key (spec §2) -------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "expected"), [
    (None, ""),                                                   # 1. NULL → '' (FIX D9)
    ("", ""),
    ("sk-A", "sk-A"),                                             # 2. not JSON → itself
    ("[1, 2]", "[1, 2]"),                                         # 2. JSON, not an object → itself
    ('"quoted"', '"quoted"'),
    ('{"api_key": "sk-A"}', "sk-A"),                              # 3. keys ⊆ {api_key, is_tools}
    ('{"api_key": "sk-A", "is_tools": true}', "sk-A"),
    ('{"is_tools": false}', ""),                                  # 3. api_key absent → ''
    ('{"api_key": null, "is_tools": true}', ""),
    ('{"ark_api_key":"k","endpoint_id":"e","is_tools":true}', '{"ark_api_key":"k","endpoint_id":"e"}'),  # 4.
    ('{"b": 1, "a": 2}', '{"a":2,"b":1}'),                        # 4. sorted keys
    ('{"api_key": "sk', '{"api_key": "sk'),                       # truncated JSON (D6) → the raw string
])
def test_canonical_key(key, expected):
    assert c.canonical_key(key) == expected


def test_canonical_key_same_for_is_tools_variants():
    plain = c.identity_of_key("sk-A", None)
    assert c.identity_of_key('{"api_key": "sk-A", "is_tools": true}', None) == plain
    assert c.identity_of_key('{"api_key": "sk-A", "is_tools": false}', "") == plain
    assert c.identity_of_key('{"ark_api_key":"k","is_tools":true}', None) == c.identity_of_key('{"ark_api_key":"k"}', None)


def test_identity_splits_on_base_url_and_case():
    assert c.identity_of_key("sk", "http://a") != c.identity_of_key("sk", "http://b")
    assert c.identity_of_key("sk", "") == c.identity_of_key(None and "sk" or "sk", None)
    assert c.identity_of_key("SK", None) != c.identity_of_key("sk", None)            # D26: exact
    assert c.identity_of_key("sk ", None) != c.identity_of_key("sk", None)           # D26: no PAD SPACE
    assert c.instance_identity("ab", "c") != c.instance_identity("a", "bc")          # unambiguous


def test_key_flags():
    assert c.key_has_is_tools('{"api_key": "x", "is_tools": false}')
    assert not c.key_has_is_tools("x")
    assert c.key_is_tools_true('{"api_key": "x", "is_tools": true}')
    assert not c.key_is_tools_true('{"api_key": "x", "is_tools": 1}')
    assert c.looks_like_broken_json('{"api_key": "sk-')
    assert not c.looks_like_broken_json('{"api_key": "sk"}')
    assert not c.looks_like_broken_json("sk")


@settings(max_examples=EXAMPLES)
@given(st.one_of(st.none(), st.text(), st.dictionaries(st.text(max_size=5), st.one_of(st.text(), st.booleans(),
                                                                                      st.integers()), max_size=4)))
def test_canonical_key_properties(value):
    key = json.dumps(value) if isinstance(value, dict) else value
    canon = c.canonical_key(key)
    assert isinstance(canon, str)
    if isinstance(value, dict):
        flipped = dict(value, is_tools=not value.get("is_tools", False))
        assert c.canonical_key(json.dumps(flipped)) == canon  # is_tools never matters
        assert c.canonical_key(json.dumps(dict(reversed(list(value.items()))))) == canon  # nor key order


# --- statuses, bits, extras -------------------------------------------------------------------------

def test_status_and_bits():
    assert [c.map_status(s) for s in ("1", "active", "enable", "0", "", None, "2")] == \
        ["active"] * 3 + ["inactive"] * 4
    assert c.type_bit("chat") == 1 and c.type_bit("image2text") == c.type_bit("vision") == 8
    assert c.type_bit("speech2text") == c.type_bit("asr") == 4 and c.type_bit("ocr") == 64
    assert c.type_bit("Chat") == 0 and c.type_bit("") == 0 and c.type_bit(None) == 0


def test_bit_case_sql_lists_every_type():
    sql = c.bit_case_sql("x")
    for name, bit in c.TYPE_BITS.items():
        assert f"WHEN '{name}' THEN {bit}" in sql
    assert "utf8mb4_bin" in sql


def test_extras():
    assert c.legacy_model_extra('{"api_key": "k", "is_tools": true}', 8192) == '{"is_tools": true, "max_tokens": 8192}'
    assert c.legacy_model_extra("k", 0) == "{}"
    assert c.legacy_model_extra(None, None) == "{}"
    assert c.catalog_extra(True, 128000) == '{"is_tools": true, "max_tokens": 128000}'
    assert c.catalog_extra(False, None) == "{}"
    assert c.catalog_extra("true", 0) == '{"max_tokens": 0}'  # is_tools only when exactly true; 0 is set
    assert c.instance_extra(None) == "" and c.instance_extra("http://h:1") == '{"base_url": "http://h:1"}'
    assert c.instance_base_url('{"base_url": "http://h:1", "region": "intl"}') == "http://h:1"
    assert c.instance_base_url("") == "" and c.instance_base_url("{broken") == ""


# --- stage 4 rewrites ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("gpt-4o@OpenAI", ("gpt-4o@default@OpenAI", True)),
    ("x@BAAI", ("x@default@BAAI", True)),           # the provider is not checked
    ("name@q8_0@LM-Studio", ("name@q8_0@LM-Studio", False)),
    ("gpt-4o", ("gpt-4o", False)),
    ("@OpenAI", ("@OpenAI", False)),
    ("gpt-4o@", ("gpt-4o@", False)),
    ("", ("", False)),
    (None, (None, False)),
    (5, (5, False)),
])
def test_rewrite_model_id(value, expected):
    assert c.rewrite_model_id(value) == expected


def test_rewrite_config_rules():
    config = {
        "llm_id": "a@P", "embd_id": "b@default@P", "nested": [{"rerank_id": "r@P", "chat_id": "c@P"}],
        "tts_id": {"llm_id": "inner@P"},          # non-string under a model key: left alone, not descended
        "embedding_model": "e@P", "other": "o@P",
    }
    new, changed = c.rewrite_config(config, ("parser_config",))
    assert changed
    assert new["llm_id"] == "a@default@P" and new["embd_id"] == "b@default@P"
    assert new["nested"][0] == {"rerank_id": "r@default@P", "chat_id": "c@P"}
    assert new["tts_id"] == {"llm_id": "inner@P"}
    assert new["embedding_model"] == "e@default@P" and new["other"] == "o@P"
    assert list(new) == list(config)  # key order kept


def test_rewrite_config_chat_id_under_search_config():
    new, changed = c.rewrite_config({"a": {"chat_id": "c@P"}}, ("search_config",))
    assert changed and new == {"a": {"chat_id": "c@default@P"}}
    new, changed = c.rewrite_config({"search_config": {"chat_id": "c@P"}}, ("dsl",))
    assert changed and new["search_config"]["chat_id"] == "c@default@P"
    assert c.rewrite_config({"chat_id": "c@P"}, ("dsl",)) == ({"chat_id": "c@P"}, False)


def test_dump_config_compact_keeps_non_ascii():
    assert c.dump_config({"llm_id": "模型@P", "x": [1, 2]}) == '{"llm_id":"模型@P","x":[1,2]}'


@settings(max_examples=EXAMPLES)
@given(st.recursive(st.one_of(st.text(alphabet="ab@", max_size=6), st.integers(), st.none()),
                    lambda kids: st.one_of(st.lists(kids, max_size=3),
                                           st.dictionaries(st.sampled_from(["llm_id", "chat_id", "x", "search_config"]),
                                                           kids, max_size=3)), max_leaves=10))
def test_rewrite_config_is_idempotent(value):
    once, _ = c.rewrite_config(value, ("search_config",))
    twice, changed = c.rewrite_config(once, ("search_config",))
    assert twice == once and not changed


# --- stage 7 references ----------------------------------------------------------------------------

def test_parse_reference():
    assert c.parse_reference("gpt-4o@OpenAI") == c.Reference("OpenAI", None, "gpt-4o")
    assert c.parse_reference("gpt-4o@default@OpenAI") == c.Reference("OpenAI", ("gpt-4o", "default"), "gpt-4o@default")
    ref = c.parse_reference("text-embedding-nomic-embed-text-v1.5@q8_0@LM-Studio")
    assert ref.provider == "LM-Studio" and ref.plain == "text-embedding-nomic-embed-text-v1.5@q8_0"
    assert ref.named == ("text-embedding-nomic-embed-text-v1.5", "q8_0")
    assert c.parse_reference("a@b@c@P").named == ("a@b", "c")            # split from the right (D14)
    assert c.parse_reference("BAAI/bge-reranker-v2-m3") is None           # no provider
    assert c.parse_reference("m@") is None and c.parse_reference("@P") is None and c.parse_reference(None) is None
    assert c.parse_reference("@@P") == c.Reference("P", None, "@")


def test_a_lone_surrogate_in_a_json_key_has_an_identity():
    """json.loads keeps "\\ud800" as a lone surrogate, which UTF-8 cannot encode: the identity of such
    a key is still computed (it stopped the staging with UnicodeEncodeError), and differs from others."""
    lone = c.identity_of_key('{"api_key": "\\ud800"}', None)
    assert len(lone) == 16
    assert lone != c.identity_of_key('{"api_key": "\\ud801"}', None)
    assert c.identity_of_key('{"api_key": "\\u00e9"}', None) == c.identity_of_key("é", None)


def test_a_rewritten_config_with_a_lone_surrogate_is_valid_utf8_and_means_the_same():
    value = json.loads('{"llm_id": "m@F", "note": "\\ud800x", "pair": "\\ud83d\\ude00", "k\\udc00": 1}')
    new, changed = c.rewrite_config(value, ("parser_config",))
    text = c.dump_config(new)
    assert changed and text.encode("utf-8")
    assert json.loads(text) == new and new["llm_id"] == "m@default@F"
    assert "😀" in text and "\\ud800x" in text  # a real pair stays a character; the lone one stays escaped
