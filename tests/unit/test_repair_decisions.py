"""Drift repair's pure decisions: which column changes keep every value, which need a count of
the rows, and which could change values whatever the data; recorded widenings in `compare`."""

from __future__ import annotations

import dataclasses

import pytest

from ragflow_migrate.releases import NEWEST_RELEASE
from ragflow_migrate.schema import chain
from ragflow_migrate.schema.diff import compare, drift, render
from ragflow_migrate.schema.repair import holds_every_value, unfit_condition
from ragflow_migrate.schema.snapshot import Column
from ragflow_migrate.schema.widenings import Widening


@pytest.mark.parametrize(("live", "want", "keeps"), [
    ("varchar(64)", "varchar(255)", True),  # widening back
    ("varchar(255)", "text", True),
    ("text", "mediumtext", True),
    ("varchar(512)", "varchar(255)", False),  # narrowing: the data decide
    ("text", "varchar(255)", False),
    ("varchar(32)", "char(32)", False),  # CHAR drops trailing spaces
    ("smallint", "int", True),
    ("bigint", "int", False),
    ("int unsigned", "int", False),
    ("int", "varchar(32)", True),  # every INT fits in 11 characters
    ("bigint", "varchar(10)", False),
    ("varchar(20)", "int", False),
    ("float", "double", True),
    ("datetime", "varchar(32)", False),
])
def test_which_type_changes_keep_every_value(live, want, keeps):
    assert holds_every_value(live, want) is keeps


def _col(type_: str, nullable: bool = True) -> Column:
    return Column("c", type_, nullable)


def test_a_widening_back_needs_no_count_of_the_rows():
    assert unfit_condition("c", _col("varchar(64)"), _col("varchar(255)")) == "FALSE"
    assert unfit_condition("c", _col("varchar(100)", nullable=False), _col("varchar(100)")) == "FALSE"


def test_a_narrowing_or_a_conversion_counts_the_rows_that_would_not_fit():
    assert unfit_condition("c", _col("varchar(512)"), _col("varchar(255)")) == "(CHAR_LENGTH(`c`) > 255)"
    assert unfit_condition("c", _col("longtext"), _col("text")) == "(LENGTH(`c`) > 65535)"
    assert unfit_condition("c", _col("int"), _col("int", nullable=False)) == "(`c` IS NULL)"
    to_int = unfit_condition("c", _col("varchar(20)"), _col("int"))
    assert "REGEXP '^(0|-?[1-9][0-9]*)$'" in to_int and "BETWEEN -2147483648 AND 2147483647" in to_int


def test_a_conversion_no_count_can_prove_is_lossy():
    assert unfit_condition("c", _col("varchar(32)"), _col("datetime")) is None
    assert unfit_condition("c", _col("double"), _col("float")) is None


def test_the_models_declare_the_newest_release_as_the_chain_does():
    # The no-op path reads the declared schema from the models (no replay of the chain).
    assert compare(chain.expected_schema(NEWEST_RELEASE), chain.install_schema(NEWEST_RELEASE)) == []


def test_a_column_that_holds_its_recorded_widening_is_not_drift():
    expected = chain.install_schema(NEWEST_RELEASE)
    live = expected.copy()
    table = live.tables["tenant_llm"]
    table.columns["api_base"] = dataclasses.replace(table.columns["api_base"], type="varchar(1024)")
    widening = Widening("tenant_llm", "api_base", "varchar(255)", "varchar(1024)", "long URLs", "r1", "2026-01-01")

    assert [d.kind for d in drift(compare(expected, live))] == ["column"]
    differences = compare(expected, live, widened={("tenant_llm", "api_base"): widening})
    assert [(d.kind, d.is_drift) for d in differences] == [("widened", False)]
    assert render(differences).startswith("note   widened column: tenant_llm.api_base")

    stale = dataclasses.replace(widening, after="varchar(2048)")  # the column changed again since
    assert [d.kind for d in compare(expected, live, widened={("tenant_llm", "api_base"): stale})] == ["column"]
    table.columns["api_base"] = dataclasses.replace(table.columns["api_base"], nullable=False)
    assert [d.kind for d in compare(expected, live, widened={("tenant_llm", "api_base"): widening})] == ["column"]


@pytest.mark.parametrize(("change", "breaking"), [
    ({"type": "varchar(64)"}, True),  # narrower
    ({"type": "int"}, True),  # another type
    ({"nullable": False}, True),  # NOT NULL where the target allows NULL
    ({"type": "varchar(1024)"}, False),  # wider: RAGFlow reads and writes it as before
    ({"type": "text"}, False),
    ({"default": "x"}, False),  # a default, a collation: listed by `schema diff`, not drift for status
    ({"collation": "utf8mb4_bin"}, False),
])
def test_only_differences_that_break_ragflow_make_a_database_drifted(change, breaking):
    from ragflow_migrate.schema.state import breaks

    expected = chain.install_schema(NEWEST_RELEASE)
    live = expected.copy()
    column = live.tables["tenant_llm"].columns["api_base"]
    assert column.type == "varchar(255)" and column.nullable
    live.tables["tenant_llm"].columns["api_base"] = dataclasses.replace(column, **change)
    (difference,) = drift(compare(expected, live))
    assert breaks(expected, live, difference) is breaking
    missing = expected.copy()
    del missing.tables["tenant_llm"].columns["api_base"]
    assert all(breaks(expected, missing, d) for d in drift(compare(expected, missing)))
