"""The model catalogue: parsing, errors naming the file and key, the seeding rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragflow_migrate.data.catalog import load_catalog, parse_catalog
from ragflow_migrate.errors import ConfigError
from servers.harness import shared_root

SMALL = Path(__file__).resolve().parents[1] / "data" / "llm_factories.small.json"
REAL = shared_root() / "ragflow-data"


def test_small_catalogue():
    cat = load_catalog(SMALL)
    assert {"Ollama", "VolcEngine", "Xinference", "LM-Studio", "OpenAI-API-Compatible"} <= cat.empty_llm_factories
    assert "OpenAI" not in cat.empty_llm_factories
    assert cat.model_names("OpenAI") >= {"gpt-4o", "o1", "whisper-1"}
    rows = cat.seed_rows()
    # FuturMix lists gpt-4o twice: one row per type; the extra of the first listing everywhere
    futur = [(r.llm_name, r.type_str, r.extra) for r in rows if r.provider_name == "FuturMix" and r.llm_name == "gpt-4o"]
    assert sorted(futur) == [("gpt-4o", "chat", '{"is_tools": true, "max_tokens": 128000}'),
                             ("gpt-4o", "image2text", '{"is_tools": true, "max_tokens": 128000}')]
    # a missing model_type means chat; max_tokens null and is_tools false give {}
    assert [(r.type_str, r.bit, r.extra) for r in rows if r.llm_name == "plain-default"] == [("chat", 1, "{}")]
    # siliconflow_intl seeds SILICONFLOW's intl instances
    assert {(r.provider_name, r.intl) for r in rows if r.llm_name == "deepseek-ai/DeepSeek-V3"} == {("SILICONFLOW", 1)}
    assert [r.order for r in rows] == list(range(len(rows)))


@pytest.mark.skipif(not (REAL / "llm_factories-v0.27.0.json").is_file(), reason="RAGFlow's catalogue not available")
def test_real_catalogues_match_the_spec():
    v27 = load_catalog(REAL / "llm_factories-v0.27.0.json")
    assert len({m.factory for m in v27.models}) + len(v27.empty_llm_factories) == 71
    assert len(v27.models) == 1005
    raw = json.loads((REAL / "llm_factories-v0.27.0.json").read_text())["factory_llm_infos"]
    assert sum(isinstance(e.get("model_type"), list) for f in raw for e in f["llm"]) == 173
    assert v27.empty_llm_factories == {
        "Ollama", "ModelScope", "LocalAI", "OpenAI-API-Compatible", "MWS", "VLLM", "FastEmbed", "Xinference",
        "FunASR", "VolcEngine", "Bedrock", "OpenRouter", "LM-Studio", "TogetherAI", "BaiduYiyan", "Fish Audio",
        "Tencent Cloud", "Google Cloud", "HuggingFace", "GPUStack", "RAGcon", "New API"}
    v264 = load_catalog(REAL / "llm_factories-v0.26.4.json")
    assert len(v264.empty_llm_factories) == 24
    assert {"MinerU", "PaddleOCR", "OpenDataLoader", "SoMark"} <= v264.empty_llm_factories
    assert not {"MWS", "FunASR"} & v264.empty_llm_factories


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_catalog(tmp_path / "nope.json")
    assert str(tmp_path / "nope.json") in info.value.message


def test_malformed_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "factory_llm_infos": [\n    {"name": "X",, }\n  ]\n}\n')
    with pytest.raises(ConfigError, match=r"bad\.json:3:\d+: malformed JSON"):
        load_catalog(path)


@pytest.mark.parametrize(("data", "where"), [
    ([], r"\(top level\)"),
    ({"factory_llm_infos": {}}, "factory_llm_infos: missing, or not a list"),
    ({"factory_llm_infos": [1]}, r"factory_llm_infos\[0\]: expected an object"),
    ({"factory_llm_infos": [{"llm": []}]}, r"factory_llm_infos\[0\]\.name"),
    ({"factory_llm_infos": [{"name": "X", "llm": {}}]}, r"factory_llm_infos\[0\]\.llm: expected a list"),
    ({"factory_llm_infos": [{"name": "X", "llm": [{"llm_name": "m", "model_type": 3}]}]},
     r"factory_llm_infos\[0\]\.llm\[0\]\.model_type"),
    ({"factory_llm_infos": [{"name": "X", "llm": [{"llm_name": "m", "max_tokens": "8k"}]}]},
     r"llm\[0\]\.max_tokens: expected a number"),
])
def test_malformed_structure_names_the_key(data, where):
    with pytest.raises(ConfigError, match=where):
        parse_catalog(data, "cat.json")


def test_entries_without_a_name_are_skipped():
    cat = parse_catalog({"factory_llm_infos": [{"name": "X", "llm": [{"llm_name": ""}, {"model_type": "chat"}]}]})
    assert cat.models == [] and cat.empty_llm_factories == frozenset()


def test_small_catalogue_is_ours_not_a_copy():
    assert json.loads(SMALL.read_text())["factory_llm_infos"][0]["name"] == "OpenAI"
    assert len(load_catalog(SMALL).models) < 30
