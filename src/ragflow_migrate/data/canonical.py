"""Pure rules of the model-data migration: no database, no I/O, unit-tested on their own.

These are the places where a re-implementation must agree with itself everywhere (the
canonical API key is computed for ``tenant_llm`` rows and for existing instances alike),
so each rule lives here exactly once:

* :func:`canonical_key` and :func:`instance_identity`: which legacy rows share an instance;
* :func:`is_valid_status`, :func:`type_bit`: RAGFlow's status and model-type vocabularies;
* :func:`legacy_model_extra`, :func:`catalog_extra`: the ``extra`` JSON of a model row;
* :func:`rewrite_model_id`, :func:`rewrite_config`: ``m@p`` → ``m@default@p`` (stage 4);
* :func:`parse_reference`: how stage 7 reads a legacy ``model@instance@provider`` value.

>>> canonical_key('{"api_key": "sk-A", "is_tools": true}')
'sk-A'
>>> rewrite_model_id("gpt-4o@OpenAI")
('gpt-4o@default@OpenAI', True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

# --- statuses and types (spec §2) --------------------------------------------------------------

VALID_STATUSES = frozenset({"1", "active", "enable"})
ACTIVE, INACTIVE, UNSUPPORTED = "active", "inactive", "unsupported"

#: RAGFlow's model-type bits; the legacy spellings (speech2text, image2text) share a bit.
TYPE_BITS: dict[str, int] = {
    "chat": 1,
    "embedding": 2,
    "asr": 4,
    "speech2text": 4,
    "vision": 8,
    "image2text": 8,
    "rerank": 16,
    "tts": 32,
    "ocr": 64,
}


def is_valid_status(status: Any) -> bool:
    """Legacy ``tenant_llm.status``: ``'1'`` (or ``active``/``enable``) is valid, anything else disabled."""
    return isinstance(status, str) and status in VALID_STATUSES


def map_status(status: Any) -> str:
    return ACTIVE if is_valid_status(status) else INACTIVE


def type_bit(model_type: Any) -> int:
    """The bit of a type string; any other value (``''``, NULL, unknown) is 0. Exact match, like RAGFlow."""
    return TYPE_BITS.get(model_type, 0) if isinstance(model_type, str) else 0


def bit_case_sql(column: str) -> str:
    """The same mapping as SQL, comparing bytes (``Chat`` is not ``chat``)."""
    whens = " ".join(f"WHEN '{name}' THEN {bit}" for name, bit in TYPE_BITS.items())
    return f"(CASE {column} COLLATE utf8mb4_bin {whens} ELSE 0 END)"


# --- API keys ----------------------------------------------------------------------------------


def _parse_object(text: str) -> dict[str, Any] | None:
    """The JSON object a string holds, or None (not JSON, or JSON that is not an object)."""
    if not text.lstrip()[:1] == "{":
        return None  # cheap: only objects matter, and most keys are plain strings
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def looks_like_broken_json(text: str | None) -> bool:
    """A key that starts like a JSON object but does not parse (truncated or corrupted: D6, D7)."""
    return bool(text) and text.lstrip()[:1] == "{" and _parse_object(text) is None  # type: ignore[union-attr]


def canonical_key(api_key: str | None) -> str:
    """The key two legacy rows must share to use one instance (spec §2).

    NULL and empty are ``''`` (FIX D9); a plain string is itself; ``{api_key, is_tools}`` is its
    ``api_key``; any other object is itself without ``is_tools``, with sorted keys.
    """
    if not api_key:
        return ""
    obj = _parse_object(api_key)
    if obj is None:
        return api_key
    if set(obj) <= {"api_key", "is_tools"}:
        value = obj.get("api_key")
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    rest = {k: v for k, v in obj.items() if k != "is_tools"}
    return json.dumps(rest, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def key_has_is_tools(api_key: str | None) -> bool:
    obj = _parse_object(api_key) if api_key else None
    return obj is not None and "is_tools" in obj


def key_is_tools_true(api_key: str | None) -> bool:
    obj = _parse_object(api_key) if api_key else None
    return obj is not None and obj.get("is_tools") is True


def instance_identity(canonical: str, base_url: str | None) -> bytes:
    """16-byte identity of an instance: its canonical key and its base URL (FIX D15 splits on it).

    The first half of SHA-256 of ``<length>:<canonical key><base url>``: :func:`identity_sql` computes
    the same on the server (MySQL 9.7 has no MD5 any more), for the keys it stages itself.
    """
    base = base_url or ""
    text = f"{len(canonical)}:{canonical}{base}"
    # surrogatepass: a JSON key may hold a lone surrogate ("\\ud800"), which json.loads keeps as such
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


def identity_sql(canonical_sql: str, base_sql: str) -> str:
    """:func:`instance_identity` as a SQL expression (for plain keys, whose canonical form is themselves)."""
    return (f"UNHEX(LEFT(SHA2(CONCAT(CHAR_LENGTH({canonical_sql}), ':', {canonical_sql}, {base_sql}), 256), 32))")


def identity_of_key(api_key: str | None, base_url: str | None) -> bytes:
    return instance_identity(canonical_key(api_key), base_url)


def staged_key_row(info: dict[str, Any], seq: int, api_key: str | None, api_base: str | None, max_tokens: Any,
                   src_id: Any, tenant_id: Any, factory: Any, llm_name: Any) -> tuple:
    """A legacy row the server could not stage itself: (seq, identity, has_is_tools, model extra,
    instance extra, broken_json); a key that looks like broken JSON is counted in ``info``
    (``broken_json``, and up to 10 ``broken_sample``: its id, else its natural key)."""
    broken = looks_like_broken_json(api_key)
    if broken:
        info["broken_json"] += 1
        if len(info["broken_sample"]) < 10:
            info["broken_sample"].append(src_id if src_id is not None else
                                         {"tenant_id": tenant_id, "llm_factory": factory, "llm_name": llm_name})
    return (seq, identity_of_key(api_key, api_base), int(key_has_is_tools(api_key)),
            legacy_model_extra(api_key, max_tokens), instance_extra(api_base), int(broken))


def instance_base_url(extra: str | None) -> str:
    """The ``base_url`` an instance's ``extra`` holds ('' when none or when extra is not an object)."""
    obj = _parse_object(extra) if extra else None
    value = obj.get("base_url") if obj else None
    return value if isinstance(value, str) else ""


def instance_extra(api_base: str | None) -> str:
    """``extra`` of a migrated instance: the legacy ``api_base`` as ``base_url`` (FIX D15), else ''."""
    if not api_base:
        return ""
    return json.dumps({"base_url": api_base}, ensure_ascii=False)


# --- model extra -------------------------------------------------------------------------------


def legacy_model_extra(api_key: str | None, max_tokens: Any) -> str:
    """``extra`` of a row migrated by stage 3: ``is_tools`` from the key, ``max_tokens`` (FIX D16)."""
    extra: dict[str, Any] = {}
    if key_is_tools_true(api_key):
        extra["is_tools"] = True
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0:
        extra["max_tokens"] = max_tokens
    return json.dumps(extra) if extra else "{}"


def catalog_extra(is_tools: Any, max_tokens: Any) -> str:
    """``extra`` of a seeded catalog model: ``is_tools`` only when exactly true, ``max_tokens`` when set."""
    extra: dict[str, Any] = {}
    if is_tools is True:
        extra["is_tools"] = True
    if max_tokens is not None:
        extra["max_tokens"] = max_tokens
    return json.dumps(extra) if extra else "{}"


def is_json_object(text: str | None) -> bool:
    return bool(text) and _parse_object(text) is not None  # type: ignore[arg-type]


# --- stage 4: m@p → m@default@p ----------------------------------------------------------------

MODEL_ID_KEYS = frozenset({"llm_id", "embd_id", "embedding_model", "rerank_id", "asr_id", "img2txt_id",
                           "tts_id", "ocr_id"})
SEARCH_CONFIG_KEYS = frozenset({"chat_id"})


def rewrite_model_id(value: Any) -> tuple[Any, bool]:
    """``m@p`` → ``m@default@p`` when the value splits on ``@`` into exactly two non-empty parts."""
    if not isinstance(value, str) or not value:
        return value, False
    parts = value.split("@")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return value, False
    return f"{parts[0]}@default@{parts[1]}", True


def rewrite_config(value: Any, path: tuple[str, ...] = ()) -> tuple[Any, bool]:
    """Rewrite model ids inside a parsed JSON config (spec §3.4); returns (value, changed).

    ``path`` starts with the column name, so every ``chat_id`` under ``search.search_config`` counts.
    A non-string value under a model-id key is left alone and not descended into.
    """
    if isinstance(value, dict):
        changed = False
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key in MODEL_ID_KEYS or (key in SEARCH_CONFIG_KEYS and "search_config" in path):
                new, hit = rewrite_model_id(item)
            else:
                new, hit = rewrite_config(item, (*path, str(key)))
            out[key] = new
            changed = changed or hit
        return (out, True) if changed else (value, False)
    if isinstance(value, list):
        changed = False
        items = []
        for index, item in enumerate(value):
            new, hit = rewrite_config(item, (*path, str(index)))
            items.append(new)
            changed = changed or hit
        return (items, True) if changed else (value, False)
    return value, False


def dump_config(value: Any) -> str:
    """Compact, non-ASCII kept, key order kept: how a rewritten config is stored. A lone surrogate (a
    ``"\\ud800"`` escape json.loads kept as such) stays escaped: the text must be valid UTF-8."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


# --- stage 7: reading a legacy reference ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reference:
    """A legacy ``model[@instance]@provider`` value, read from the right (as the app does).

    ``named`` is the reading with an explicit instance (``None`` for two-part values);
    ``plain`` is the reading where everything before the provider is the model name. Which
    one holds depends on the data: the middle part is an instance only when the provider has
    an instance of that name (FIX D14).
    """

    provider: str
    named: tuple[str, str] | None  # (model, instance)
    plain: str | None  # model


def parse_reference(value: Any) -> Reference | None:
    """None when the value cannot name a model of a provider (no ``@``, empty parts)."""
    if not isinstance(value, str) or "@" not in value:
        return None
    parts = value.split("@")
    provider = parts[-1]
    if not provider:
        return None
    plain = "@".join(parts[:-1]) or None
    named = None
    if len(parts) >= 3:
        model, instance = "@".join(parts[:-2]), parts[-2]
        if model and instance:
            named = (model, instance)
    if plain is None and named is None:
        return None
    return Reference(provider=provider, named=named, plain=plain)
