"""Pure rules of the PostgreSQL backend's concurrent index builds and widenings (no server): which
index builds of a migration may run CONCURRENTLY before its transaction, how they are written,
and the type ``--widen-columns`` gives a column."""

from __future__ import annotations

import pytest

from ragflow_migrate.backends.postgres import ddl
from ragflow_migrate.backends.postgres.data.widen import VARCHAR_MAX, widened_type
from ragflow_migrate.backends.postgres.migration import early_builds
from ragflow_migrate.schema.operations import AddColumn, AddIndex, DropIndex, RenameIndex
from ragflow_migrate.schema.snapshot import Column, Index, Snapshot, Table


class Sizes:
    """Stands in for indexes.Sizes: the names of the big tables."""

    def __init__(self, *big: str) -> None:
        self.tables = set(big)

    def big(self, table: str | None) -> bool:
        return table in self.tables


def _col(name: str) -> Column:
    return Column(name, "character varying(32)", True, None, False, None)


def _live() -> Snapshot:
    snap = Snapshot()
    for name in ("document", "task"):
        snap.tables[name] = Table(name, {c: _col(c) for c in ("id", "kb_id", "name")},
                                  {"PRIMARY": Index("PRIMARY", True, (("id", None),), f"{name}_pkey")})
    return snap


def _declared_col(name: str) -> Column:
    """A column as the chain's operations carry it (MySQL's normal form)."""
    return Column(name, "varchar(32)", True, None, False, None)


def _index(name: str, *columns: str, unique: bool = False) -> Index:
    return Index(name, unique, tuple((c, None) for c in columns))


def _expected(*indexes: tuple[str, Index]) -> Snapshot:
    snap = _live()
    snap.tables["document"].columns["hash"] = _col("hash")
    for table, index in indexes:
        snap.tables[table].indexes[index.name] = index
    return snap


def test_an_add_index_renders_an_index_build_that_can_be_made_concurrent():
    index = _index("document_kb_id", "kb_id", unique=True)
    (build,) = ddl.statements(AddIndex("document", index), _live(), _expected(("document", index)))
    assert isinstance(build, ddl.IndexBuild)
    assert build.sql == 'CREATE UNIQUE INDEX "document_kb_id" ON "document" ("kb_id")'
    assert build.concurrent_sql() == 'CREATE UNIQUE INDEX CONCURRENTLY "document_kb_id" ON "document" ("kb_id")'


def test_builds_on_existing_columns_of_big_tables_go_before_the_transaction():
    kb, name = _index("document_kb_id", "kb_id"), _index("task_name", "name")
    ops = [AddIndex("document", kb), AddIndex("task", name)]
    found = early_builds(None, ops, _live(), _expected(("document", kb), ("task", name)), Sizes("document"))
    assert [b.name for b in found] == ["document_kb_id"]  # task is small: in the transaction


def test_a_build_that_needs_the_migrations_work_first_does_not():
    hashed, kb = _index("document_hash", "hash"), _index("document_kb_id", "kb_id")
    expected = _expected(("document", hashed), ("document", kb))
    # its column is added by the migration
    ops = [AddColumn("document", _declared_col("hash")), AddIndex("document", hashed)]
    assert early_builds(None, ops, _live(), expected, Sizes("document")) == []
    # an earlier operation changes its table
    ops = [AddColumn("document", _declared_col("hash")), AddIndex("document", kb)]
    assert early_builds(None, ops, _live(), expected, Sizes("document")) == []
    # another operation names the index (names are schema-wide)
    ops = [AddIndex("document", kb), DropIndex("task", "document_kb_id")]
    assert early_builds(None, ops, _live(), expected, Sizes("document")) == []
    # an index replaced under its own name is built, dropped and renamed in the transaction
    live = _live()
    live.tables["document"].indexes["document_kb_id"] = _index("document_kb_id", "kb_id", "name")
    assert early_builds(None, [AddIndex("document", kb)], live, expected, Sizes("document")) == []


def test_a_rename_that_falls_back_to_a_build_counts_as_one():
    kb = _index("document_kb_id", "kb_id")
    found = early_builds(None, [RenameIndex("document", "document_kbid", kb)], _live(), _expected(("document", kb)),
                         Sizes("document"))
    assert [b.sql for b in found] == ['CREATE INDEX "document_kb_id" ON "document" ("kb_id")']


@pytest.mark.parametrize(("chars", "want"), [(513, "varchar(513)"), (2400, "varchar(2400)"),
                                              (VARCHAR_MAX, f"varchar({VARCHAR_MAX})"), (VARCHAR_MAX + 1, "text")])
def test_the_widened_type_is_the_smallest_varchar_else_text(chars, want):
    assert widened_type(chars) == want
