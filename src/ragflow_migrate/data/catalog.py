"""RAGFlow's model catalogue (``llm_factories.json``), read the way the migration needs it.

The catalogue is RAGFlow's configuration, not ours: it is read from ``settings.catalog``
(default ``/ragflow/conf/llm_factories.json``, where RAGFlow's image keeps it) and only when a
stage needs it, so a missing file never stops a run that has nothing to seed. A missing or
malformed file is a :class:`ConfigError` naming the file and the line or key.

What the stages take from it:

* :attr:`Catalog.empty_llm_factories`: factories whose ``llm`` is ``[]`` (Ollama, VLLM, ...);
  their models are the user's own, migrated by stage 3;
* :meth:`Catalog.seed_rows`: one row per catalogue (factory, model, type), for seeding;
* :meth:`Catalog.model_names`: which models a factory lists (stage 3 migrates the others, D17).

The SiliconFlow split: factory ``siliconflow_intl`` seeds the ``SILICONFLOW`` providers' instances
whose ``extra`` says ``"region": "intl"``; ``SILICONFLOW`` seeds the others.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import canonical

INTL_FACTORY = "siliconflow_intl"
INTL_PROVIDER = "SILICONFLOW"
#: ``ctx.extras`` key of the catalogue loaded for this run (by the preflight or the first stage).
CACHE_KEY = "data.catalog"


@dataclasses.dataclass(frozen=True)
class CatalogModel:
    factory: str
    llm_name: str
    types: tuple[str, ...]
    is_tools: Any
    max_tokens: Any


@dataclasses.dataclass(frozen=True)
class SeedRow:
    """One catalogue (provider, model, type) to seed. ``intl`` selects SiliconFlow's intl instances."""

    provider_name: str
    intl: int
    llm_name: str
    type_str: str
    bit: int
    extra: str
    order: int


@dataclasses.dataclass
class Catalog:
    path: str
    models: list[CatalogModel]
    empty_llm_factories: frozenset[str]

    def factories_with_models(self) -> set[str]:
        return {m.factory for m in self.models}

    def model_names(self, factory: str) -> set[str]:
        return {m.llm_name for m in self.models if m.factory == factory}

    def seed_rows(self) -> list[SeedRow]:
        """Catalogue rows to seed, once per (factory, model, type), in catalogue order.

        A model listed twice (FuturMix's gpt-4o) is seeded once per type; its ``extra`` comes from
        its first listing, so every row of one model carries the same ``extra`` and the merge's
        pick cannot depend on generated ids.
        """
        rows: list[SeedRow] = []
        seen: set[tuple[str, str, str]] = set()
        first_extra: dict[tuple[str, str], str] = {}
        for model in self.models:
            key = (model.factory, model.llm_name)
            extra = first_extra.setdefault(key, canonical.catalog_extra(model.is_tools, model.max_tokens))
            provider, intl = (INTL_PROVIDER, 1) if model.factory == INTL_FACTORY else (model.factory, 0)
            for type_str in model.types:
                if (model.factory, model.llm_name, type_str) in seen:
                    continue
                seen.add((model.factory, model.llm_name, type_str))
                rows.append(SeedRow(provider, intl, model.llm_name, type_str, canonical.type_bit(type_str),
                                    extra, len(rows)))
        return rows


def load_catalog(path: str | Path) -> Catalog:
    """Read and check the catalogue; ConfigError names the file and the line or key at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"model catalogue {path} does not exist",
                          hint="pass --catalog (RAGFLOW_MIGRATE_CATALOG) with RAGFlow's llm_factories.json",
                          file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError(f"model catalogue {path}: cannot read: {reason}", file=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"model catalogue {path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}",
                          file=str(path)) from None
    return parse_catalog(data, str(path))


def parse_catalog(data: Any, path: str = "<catalogue>") -> Catalog:
    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(f"model catalogue {path}: {where}: {problem}", file=path, key=where)

    if not isinstance(data, dict):
        raise fail("(top level)", f"expected an object, got {type(data).__name__}")
    infos = data.get("factory_llm_infos")
    if not isinstance(infos, list):
        raise fail("factory_llm_infos", "missing, or not a list")

    empty: set[str] = set()
    for _key, value in data.items():  # every top-level list, as RAGFlow reads it (spec §2)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and item.get("llm") == [] and isinstance(item.get("name"), str):
                    empty.add(item["name"])

    models: list[CatalogModel] = []
    for i, factory in enumerate(infos):
        where = f"factory_llm_infos[{i}]"
        if not isinstance(factory, dict):
            raise fail(where, f"expected an object, got {type(factory).__name__}")
        name = factory.get("name")
        if not isinstance(name, str) or not name:
            raise fail(f"{where}.name", "missing or not a string")
        llms = factory.get("llm", [])
        if not isinstance(llms, list):
            raise fail(f"{where}.llm", f"expected a list, got {type(llms).__name__}")
        for j, entry in enumerate(llms):
            ewhere = f"{where}.llm[{j}]"
            if not isinstance(entry, dict):
                raise fail(ewhere, f"expected an object, got {type(entry).__name__}")
            llm_name = entry.get("llm_name")
            if llm_name in (None, ""):
                continue  # RAGFlow skips entries without a name
            if not isinstance(llm_name, str):
                raise fail(f"{ewhere}.llm_name", "not a string")
            raw_type = entry.get("model_type", "chat")
            if isinstance(raw_type, str):
                types: tuple[str, ...] = (raw_type,)
            elif isinstance(raw_type, list) and all(isinstance(t, str) for t in raw_type):
                types = tuple(raw_type)
            else:
                raise fail(f"{ewhere}.model_type", "expected a string or a list of strings")
            max_tokens = entry.get("max_tokens")
            if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, float))):
                raise fail(f"{ewhere}.max_tokens", "expected a number")
            models.append(CatalogModel(name, llm_name, types, entry.get("is_tools"), max_tokens))
    return Catalog(path=path, models=models, empty_llm_factories=frozenset(empty))
