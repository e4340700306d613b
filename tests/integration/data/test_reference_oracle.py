"""Stage 7's resolution agrees, reference by reference, with the rule written out in Python
(``data_support.ReferenceOracle``): on a mixed legacy data set, then on values planted afterwards that
name every model of the migrated database every way (plain, ``@default@``, an explicit instance, the
instance in another case, another case, a trailing space, an unknown instance, empty parts, no provider),
with a twin of every model named in upper case beside it (the exact-case name wins)."""

from __future__ import annotations

import collections

import data_support as ds

from ragflow_migrate.data import registry
from ragflow_migrate.data.references import TARGETS

#: legacy column → type bit (the same in every table that has the column)
BITS = {legacy: bit for targets in TARGETS.values() for _target, legacy, bit in targets}


def _plant(c) -> int:
    rows = ds._q(c, "SELECT p.tenant_id, p.provider_name, i.instance_name, m.model_name FROM tenant_model m "
                 "JOIN tenant_model_instance i ON i.id = m.instance_id JOIN tenant_model_provider p "
                 "ON p.id = m.provider_id ORDER BY p.tenant_id, p.provider_name, i.instance_name, m.model_name")
    values: dict[str, set[str]] = collections.defaultdict(set)
    for tenant, prov, inst, model in rows[:: max(1, len(rows) // 120)]:
        values[tenant] |= {f"{model}@{prov}", f"{model}@default@{prov}", f"{model}@{inst}@{prov}",
                           f"{model.upper()}@{prov.lower()}", f"{model}@{prov} ", f"{model}@nosuch@{prov}",
                           f"{model}@@{prov}", f"@{prov}", f"{model}@{prov}@", model,
                           f"{model}@{inst.upper()}@{prov}"}
    n = 0
    for tenant, names in sorted(values.items()):
        for value in sorted(names):
            n += 1
            ds.insert(c, "dialog", id=f"pd{n:05d}", tenant_id=tenant, llm_id=value, rerank_id=value, llm_setting="{}",
                      prompt_type="simple", prompt_config="{}", similarity_threshold=0.2,
                      vector_similarity_weight=0.3, top_n=6, top_k=1024, do_refer="1", kb_ids="[]")
            ds.insert(c, "knowledgebase", id=f"pk{n:05d}", tenant_id=tenant, name="kb", permission="me",
                      created_by=tenant, parser_id="naive", embd_id=value, parser_config="{}")
    return n


def _case_twins(c) -> None:
    """Give every model a twin named in upper case in the same instance: a name then matches two rows,
    and the exact-case one must win (ids sort either way round: the twin's id is the original's with
    its first character changed)."""
    cols = [r[0] for r in ds._q(c, "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                "DATABASE() AND table_name = 'tenant_model' AND column_name NOT IN ('id', "
                                "'model_name') ORDER BY ordinal_position")]
    names = ", ".join(f"`{col}`" for col in cols)
    ds._q(c, f"INSERT INTO tenant_model (id, model_name, {names}) SELECT CONCAT(IF(LEFT(id, 1) = '0', 'f', '0'), "
          f"SUBSTRING(id, 2)), UPPER(model_name), {names} FROM tenant_model "
          "WHERE model_name <> UPPER(model_name) COLLATE utf8mb4_bin")


def _compare(c, only: tuple[str, ...] = ()) -> collections.Counter[str]:
    oracle = ds.ReferenceOracle(c)
    tenants = {("tenant", r[0]): r[0] for r in ds._q(c, "SELECT id FROM tenant")}
    for table in ("knowledgebase", "dialog", "memory"):
        tenants.update({(table, rid): tid for rid, tid in ds._q(c, f"SELECT id, tenant_id FROM `{table}`")})
    wrong, seen = [], collections.Counter()
    for (table, rid, col), (legacy, value) in sorted(ds.references(c).items()):
        if not legacy or (only and not rid.startswith(only)):
            continue
        want = oracle.resolve(tenants[(table, rid)], legacy, BITS[col])
        seen["resolved" if want else "unresolved"] += 1
        if value != want:
            wrong.append((table, rid, col, legacy, value, want))
    assert not wrong, f"{len(wrong)} differ, e.g. {wrong[:5]}"
    return seen


def test_resolution_matches_the_rule_reference_by_reference(legacy):
    c = legacy.conn
    ds.rich_rows(c, tenants=24, seed=11)
    legacy.run()
    first = _compare(c)
    assert first["resolved"] > 20 and first["unresolved"] > 5, first
    # the migration names every instance 'default'; users name theirs (v0.26+): the explicit-instance path
    legacy.q("UPDATE tenant_model_instance SET instance_name = 'alt' WHERE api_key LIKE '%-alt'")
    legacy.q("UPDATE tenant_model_instance SET instance_name = 'Keyless' WHERE api_key = ''")
    _case_twins(c)
    planted = _plant(c)
    assert planted > 300
    registry.stages_of("v0.27.0")[-1].apply(legacy.ctx())
    seen = _compare(c, only=("pd", "pk"))  # rows resolved before the renames keep their ids, as they should
    assert seen["resolved"] > 100 and seen["unresolved"] > 300, seen
    # the explicit-instance path was taken: a value naming a non-default instance resolved
    explicit = ds._q(c, "SELECT COUNT(*) FROM dialog d JOIN tenant_model m ON m.id = d.tenant_llm_id "
                     "JOIN tenant_model_instance i ON i.id = m.instance_id "
                     "WHERE i.instance_name <> 'default' AND d.llm_id LIKE CONCAT('%@', i.instance_name, '@%')")
    assert explicit[0][0] > 0
