"""The PostgreSQL normal form of a declared schema (pure: no server).

The mapping is checked against RAGFlow's own fresh PostgreSQL schemas as recorded in the
reference JSON (``shared/ragflow-schema/postgres-15/fresh-*.json``: information_schema columns,
pg_indexes, constraints, sequences), release by release.
"""

from __future__ import annotations

import json

import pytest

from ragflow_migrate.backends.postgres.pgform import pg_type_of, pk_constraint_name, to_postgres
from ragflow_migrate.schema import chain
from ragflow_migrate.schema.models import MODELS
from ragflow_migrate.schema.snapshot import Column, Index, Snapshot, Table, from_models
from servers.harness import schema_root

REFERENCE = schema_root() / "postgres-15"
FRESH = ("v0.20.0", "v0.22.0", "v0.23.0", "v0.24.0", "v0.25.0", "v0.25.6", "v0.26.0", "v0.26.4", "v0.27.0")


@pytest.mark.parametrize(("mysql", "pg"), [
    ("varchar(32)", "character varying(32)"), ("VARCHAR(2048)", "character varying(2048)"),
    ("char(8)", "character(8)"), ("text", "text"), ("longtext", "text"), ("mediumtext", "text"),
    ("int", "integer"), ("bigint", "bigint"), ("smallint", "smallint"), ("tinyint(1)", "boolean"),
    ("float", "real"), ("double", "double precision"), ("datetime", "timestamp without time zone"),
    ("date", "date"),
])
def test_pg_type_of(mysql, pg):
    assert pg_type_of(mysql) == pg


@pytest.mark.parametrize("mysql", ["tinyint", "int unsigned", "enum('a')", "json"])
def test_pg_type_of_refuses_what_no_model_declares(mysql):
    with pytest.raises(ValueError, match="no PostgreSQL mapping"):
        pg_type_of(mysql)


def test_pk_constraint_name_fits_postgres_identifiers():
    assert pk_constraint_name("tenant_llm") == "tenant_llm_pkey"
    assert pk_constraint_name("t" * 70) == "t" * 58 + "_pkey"


def test_to_postgres_maps_columns_indexes_and_leaves_its_argument():
    declared = Snapshot({"t": Table("t", {
        "id": Column("id", "int", False, None, True),
        "key": Column("key", "varchar(2048)", True, None, False, "utf8mb4_bin"),
        "on": Column("on", "tinyint(1)", False),
    }, {
        "PRIMARY": Index("PRIMARY", True, (("id", None),)),
        "t_key": Index("t_key", False, (("key", 768),)),
    }, "utf8mb4_unicode_ci")}, "utf8mb4_unicode_ci")
    before = declared.copy()
    pg = to_postgres(declared)
    table = pg.tables["t"]
    assert table.columns == {"id": Column("id", "integer", False, None, True),
                             "key": Column("key", "character varying(2048)", True),
                             "on": Column("on", "boolean", False)}
    assert table.primary_key.constraint == "t_pkey" and table.primary_key.columns == (("id", None),)
    assert table.indexes["t_key"] == Index("t_key", False, (("key", None),)) and table.indexes["t_key"].constraint is None
    assert table.collation is None and pg.collation is None
    assert declared == before


def test_constraint_is_no_part_of_an_index_definition():
    a = Index("PRIMARY", True, (("id", None),), "t_pkey")
    b = Index("PRIMARY", True, (("id", None),))
    assert a == b and a.same_definition(b)
    assert all(i.constraint is None for t in from_models(MODELS).tables.values() for i in t.indexes.values())


def _reference(release: str) -> Snapshot:
    """RAGFlow's fresh PostgreSQL schema from the reference JSON, in the normal form."""
    data = json.loads((REFERENCE / f"fresh-{release}.json").read_text())
    owned = {(s["owned_by_table"], s["owned_by_column"]): s["sequence"] for s in data["sequences"]}
    pkeys = {c["table"]: c["name"] for c in data["constraints"] if c["type"] == "p"}
    snap = Snapshot({r["table"]: Table(r["table"]) for r in data["tables"]})
    for r in sorted(data["columns"], key=lambda r: (r["table"], r["ordinal"])):
        pg_type = r["data_type"]
        if r["character_maximum_length"] is not None:
            pg_type += f"({r['character_maximum_length']})"
        sequence = owned.get((r["table"], r["column"]))
        serial = sequence is not None and r["column_default"] == f"nextval('{sequence}'::regclass)"
        snap.tables[r["table"]].columns[r["column"]] = Column(
            r["column"], pg_type, r["is_nullable"] == "YES", None if serial else r["column_default"], serial)
    for r in data["indexes"]:
        name = "PRIMARY" if r["primary"] else r["index_name"]
        constraint = pkeys[r["table"]] if r["primary"] else None
        snap.tables[r["table"]].indexes[name] = Index(name, r["unique"], tuple((c, None) for c in r["columns"]),
                                                      constraint)
    return snap


@pytest.mark.parametrize("release", FRESH)
def test_declared_schema_in_postgres_form_is_ragflows_fresh_postgres_schema(release):
    ref = _reference(release)
    pg = to_postgres(chain.expected_schema(release))
    as_sets = lambda s: (  # noqa: E731
        {(t.name, c) for t in s.tables.values() for c in t.columns.values()},
        {(t.name, i, i.constraint) for t in s.tables.values() for i in t.indexes.values()})
    assert as_sets(pg) == as_sets(ref)


def test_every_declared_type_is_seen_in_the_references():
    """The types that occur in some release are exactly the ones verified above."""
    seen = {c.type for r in FRESH for t in chain.expected_schema(r).tables.values() for c in t.columns.values()}
    assert {t if not t.startswith("varchar(") else "varchar(n)" for t in seen} == {
        "varchar(n)", "text", "longtext", "int", "bigint", "float", "datetime", "tinyint(1)"}


def test_a_serial_has_no_default_of_its_own():
    """nextval() is the serial itself: folded into auto_increment, as introspection reads it."""
    col = Column("id", "bigint", False, "0", True)
    assert to_postgres(Snapshot({"t": Table("t", {"id": col})})).column("t", "id") == Column("id", "bigint", False, None, True)
