"""The migration chain declares exactly the schema each RAGFlow release creates.

Pure: the chain is replayed without a database and compared with RAGFlow's own fresh schemas
(``shared/ragflow-schema``, both servers), and with the target models.
"""

from __future__ import annotations

import json

import pytest

from ragflow_migrate.releases import KNOWN_RELEASES
from ragflow_migrate.schema import chain
from ragflow_migrate.schema.diff import compare
from ragflow_migrate.schema.models import MODELS
from ragflow_migrate.schema.snapshot import from_models, from_reference_json
from servers.harness import schema_root

SCHEMAS = schema_root()
SERVERS = ("mysql-9.7", "mariadb-10.11")


def reference(server: str, release: str):
    return from_reference_json(json.loads((SCHEMAS / server / f"fresh-{release}.json").read_text()))


def test_one_migration_per_release_in_order():
    names = chain.migration_names()
    assert [chain.release_of(n) for n in names] == list(KNOWN_RELEASES)
    assert [chain.migration_name(r) for r in KNOWN_RELEASES] == list(names)


@pytest.mark.parametrize("server_folder", SERVERS)
@pytest.mark.parametrize("release", KNOWN_RELEASES)
def test_declared_schema_equals_ragflows_fresh_schema(server_folder, release):
    differences = compare(chain.expected_schema(release), reference(server_folder, release))
    assert differences == []


@pytest.mark.parametrize("server_folder", SERVERS)
def test_target_models_equal_fresh_v0_27_0_including_column_order(server_folder):
    ref = reference(server_folder, "v0.27.0")
    models = from_models(MODELS)
    assert compare(models, ref) == []
    for name, table in ref.tables.items():
        assert list(models.tables[name].columns) == list(table.columns), name


def test_target_models_equal_the_end_of_the_chain():
    assert compare(from_models(MODELS), chain.expected_schema("v0.27.0")) == []


def test_install_schema_of_an_old_release_is_its_declared_schema():
    assert compare(chain.install_schema("v0.22.0"), chain.expected_schema("v0.22.0")) == []


def test_retired_objects_are_declared_no_more_but_never_dropped():
    ops = [op for m in chain.replay() for op in m.operations]
    retired = {(type(op).__name__, op.table, getattr(op, "column", None)) for op in ops
               if type(op).__name__ in ("RetireTable", "RetireColumn")}
    assert ("RetireColumn", "document", "meta_fields") in retired
    assert {t for kind, t, _ in retired if kind == "RetireTable"} == {
        "evaluation_cases", "evaluation_datasets", "evaluation_results", "evaluation_runs"}
    assert not any(type(op).__name__.startswith("Drop") and "Column" in type(op).__name__ for op in ops)


def test_data_owned_columns_are_left_to_the_data_stages():
    deferred = {(op.table, op.column.name, op.deferred_to) for m in chain.replay() for op in m.operations
                if getattr(op, "deferred_to", None)}
    assert ("tenant_model", "model_type", "data model_type_merge") in deferred
    assert len([d for d in deferred if d[2] == "data tenant_model_id_migration"]) == 11
