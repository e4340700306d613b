"""Stage registry, marker comparison, SQL rendering and the DDL the stages issue (no server)."""

from __future__ import annotations

import re

import pytest

from ragflow_migrate.data import ddl, marker, registry, sqlkit
from ragflow_migrate.data.stages.base import IdSequence
from ragflow_migrate.errors import ConfigError
from ragflow_migrate.releases import try_parse_release


def test_stages_in_ragflow_order_with_gates():
    stages = registry.all_stages()
    assert [s.stage for s in stages] == ["tenant_model_provider", "tenant_model_instance", "tenant_model",
                                         "model_id_config", "tenant_model_seeding", "model_type_merge",
                                         "tenant_model_id_migration"]
    assert [s.release for s in stages] == ["v0.26.0"] * 4 + ["v0.27.0"] * 3
    assert all(s.kind == "data" and s.name == f"data {s.stage}" for s in stages)
    assert [s.stage for s in registry.stages_of("v0.27.0")] == list(registry.STAGE_NAMES[4:])


def test_select_keeps_pipeline_order_and_rejects_unknown_names():
    assert [s.stage for s in registry.select(["model_type_merge", "tenant_model_provider"])] == [
        "tenant_model_provider", "model_type_merge"]
    with pytest.raises(ConfigError) as info:
        registry.select(["tenant_model_provider", "nope"])
    assert info.value.details["stages"] == ["nope"]
    with pytest.raises(ValueError):
        registry.stages_of("v0.25.0")


@pytest.mark.parametrize(("value", "gate", "reached"), [
    ("v0.26.0", "v0.26.0", True), ("v0.26.1", "v0.26.0", True), (" V0.27.0 ", "v0.27.0", True),
    ("0.27.0rc1", "v0.27.0", False), ("v0.26.4", "v0.27.0", False), ("garbage", "v0.26.0", False),
    (None, "v0.26.0", False), ("v0.28.0", "v0.27.0", True),
])
def test_marker_comparison(value, gate, reached):
    assert marker.reached(try_parse_release(value), gate) is reached


def test_render_quotes_identifiers_but_not_raw_fragments():
    assert sqlkit.render("SELECT {c} FROM {t} {coll}", c="a`b", t="x", coll=sqlkit.collate("utf8mb4_bin")) == \
        "SELECT `a``b` FROM `x` COLLATE utf8mb4_bin"
    with pytest.raises(ValueError):
        sqlkit.collate("utf8mb4_bin; DROP TABLE x")


def test_range_condition():
    assert sqlkit.range_condition("`id`", None, None) == ("1=1", ())
    assert sqlkit.range_condition("`id`", "a", "b") == ("`id` > %s AND `id` <= %s", ("a", "b"))


def test_id_sequence_format():
    ids = IdSequence()
    assert re.fullmatch(r"[0-9a-f]{16}", ids.prefix)
    assert ids.args() == (ids.prefix, 0)
    ids.advance(5)
    assert ids.args()[1] == 5
    assert "ROW_NUMBER() OVER (ORDER BY x)" in IdSequence.sql("x")
    assert IdSequence().prefix >= ids.prefix[:12]  # later sequences sort after earlier ones


def test_model_table_ddl_is_ragflows():
    sql = ddl.model_table("tenant_model", "utf8mb4_unicode_ci", int_type=True)
    assert "`model_type` INT NOT NULL" in sql and "KEY `tenantmodel_model_type` (`model_type`)" in sql
    assert "COLLATE=utf8mb4_unicode_ci" in sql and "DEFAULT '" not in sql
    bare = ddl.model_table("t", None, int_type=True, indexes=False)
    assert "KEY" not in bare.replace("PRIMARY KEY", "")
    assert ddl.model_indexes("t", int_type=True).count("ADD KEY") == 6
    assert "`model_type` VARCHAR(32) NOT NULL" in ddl.model_table("tenant_model", None, int_type=False)
    assert "UNIQUE KEY `tenantmodelprovider_tenant_id_provider_name`" in ddl.provider_table(None)
