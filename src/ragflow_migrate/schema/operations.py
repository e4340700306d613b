"""Schema operations that check the live schema before they act.

Every operation has two faces:

* ``apply_to(expected)``: its effect on the declared schema (how the schema of release R is
  computed: replay the chain up to R, running nothing);
* ``statements(live, expected)``: the SQL still needed to get the live database there, given
  what it holds now; ``[]`` when it is there already.

MySQL DDL commits implicitly, so a run can die between any two statements. Because each
operation looks at the live schema first, running the same migration again simply carries on:
no "Duplicate column", no history row to fix by hand. A multi-part change that must not be
seen half-done is one statement (one ALTER TABLE with several clauses is atomic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..db.dialect import quote
from .snapshot import Column, Index, Snapshot, Table


@dataclasses.dataclass
class Statement:
    """One SQL statement a migration will run. ``algorithm_for`` names the kind of ALTER so the
    executor can pick INSTANT/INPLACE/COPY; ``None`` means run as is."""

    sql: str
    table: str | None = None
    algorithm_for: str | None = None
    note: str | None = None
    run: Callable[[Any], int] | None = None  # data statements run by a function (batched DML)
    needed: Callable[[Any], bool] | None = None  # data statements: is there anything to change?

    def render(self) -> str:
        return self.sql


class Operation:
    table: str

    def apply_to(self, expected: Snapshot) -> None:
        raise NotImplementedError

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        raise NotImplementedError

    def notices(self, live: Snapshot) -> list[str]:
        """Things an operator should know about the live state (logged, never fatal)."""
        return []

    def describe(self) -> str:
        return type(self).__name__


# --- rendering --------------------------------------------------------------------------------


def render_column(col: Column, *, fill: Any = None) -> str:
    parts = [quote(col.name), col.type.upper()]
    if col.collation:
        parts.append(f"COLLATE {col.collation}")
    parts.append("NULL" if col.nullable else "NOT NULL")
    if fill is not None:
        parts.append("DEFAULT " + render_literal(fill))
    elif col.default is not None:
        parts.append("DEFAULT " + render_literal(col.default))
    if col.auto_increment:
        parts.append("AUTO_INCREMENT")
    return " ".join(parts)


def render_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "''")
    return f"'{text}'"


def render_index_parts(index: Index) -> str:
    return ", ".join(f"{quote(c)}({n})" if n else quote(c) for c, n in index.columns)


def render_index_clause(index: Index) -> str:
    if index.primary:
        return f"PRIMARY KEY ({render_index_parts(index)})"
    kind = "UNIQUE INDEX" if index.unique else "INDEX"
    return f"{kind} {quote(index.name)} ({render_index_parts(index)})"


def render_create_table(table: Table, collation: str | None = None) -> str:
    lines = [render_column(c) for c in table.columns.values()]
    for index in table.indexes.values():
        if index.primary:
            lines.append(f"PRIMARY KEY ({render_index_parts(index)})")
        else:
            kind = "UNIQUE KEY" if index.unique else "KEY"
            lines.append(f"{kind} {quote(index.name)} ({render_index_parts(index)})")
    body = ",\n  ".join(lines)
    # Normally no CHARSET/COLLATE: the table takes the database's defaults, as RAGFlow's tables do.
    suffix = f" DEFAULT CHARSET={collation.split('_')[0]} COLLATE={collation}" if collation else ""
    return f"CREATE TABLE {quote(table.name)} (\n  {body}\n) ENGINE=InnoDB{suffix}"


def common_collation(live: Snapshot, declared: Snapshot) -> str | None:
    """The collation most of the declared tables that exist have (normally the database's)."""
    counts: dict[str, int] = {}
    for name, table in live.tables.items():
        if name in declared.tables and table.collation:
            counts[table.collation] = counts.get(table.collation, 0) + 1
    return max(counts, key=lambda c: counts[c]) if counts else None


def _alter(table: str, clause: str) -> str:
    return f"ALTER TABLE {quote(table)} {clause}"


# --- tables -----------------------------------------------------------------------------------


@dataclasses.dataclass
class CreateTable(Operation):
    """Create a table with all its indexes in one statement (atomic: never a table without its
    indexes after a kill)."""

    definition: Table
    retired_in: str | None = None  # a later release stops declaring the table

    @property
    def table(self) -> str:  # type: ignore[override]
        return self.definition.name

    def needed_for(self, target: str) -> bool:
        """A table the target no longer declares is not created on a database that lacks it
        (adopted from a newer RAGFlow): nothing would use it."""
        from ..releases import parse_release

        return self.retired_in is None or parse_release(target) < parse_release(self.retired_in)

    def apply_to(self, expected: Snapshot) -> None:
        expected.tables[self.table] = dataclasses.replace(
            self.definition, columns=dict(self.definition.columns), indexes=dict(self.definition.indexes))

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        if live.table(self.table) is not None:
            return []
        # New tables must join on the existing ones: when RAGFlow's tables do not have the
        # database's default collation (it was changed after they were made), follow the tables.
        common = common_collation(live, expected)
        explicit = common if common and live.collation and common != live.collation else None
        return [Statement(render_create_table(self.definition, explicit), self.table)]

    def describe(self) -> str:
        return f"create table {self.table}"


@dataclasses.dataclass
class RetireTable(Operation):
    """The release no longer declares the table. It stays (it may hold data): `schema diff`
    lists it as extra, and only ``--drop`` removes it."""

    table: str

    def apply_to(self, expected: Snapshot) -> None:
        expected.tables.pop(self.table, None)

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        return []

    def describe(self) -> str:
        return f"retire table {self.table} (kept)"


# --- columns ----------------------------------------------------------------------------------


@dataclasses.dataclass
class AddColumn(Operation):
    """Add a column. A NOT NULL column is filled with ``fill`` in the same instant statement
    (``ADD … NOT NULL DEFAULT fill``), then its default is dropped again, since RAGFlow's
    columns have no server-side default."""

    table: str
    column: Column
    fill: Any = None
    superseded_by: str | None = None  # a later release renames the column to this

    def apply_to(self, expected: Snapshot) -> None:
        expected.tables[self.table].columns[self.column.name] = self.column

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        if self.superseded_by and live.column(self.table, self.superseded_by) is not None:
            return []  # a database already past that rename (adopted from a newer RAGFlow)
        existing = live.column(self.table, self.column.name)
        drop_default = Statement(
            _alter(self.table, f"ALTER COLUMN {quote(self.column.name)} DROP DEFAULT"),
            self.table, "drop_default")
        if existing is None:
            fill = self.fill if not self.column.nullable else None
            add = Statement(_alter(self.table, "ADD COLUMN " + render_column(self.column, fill=fill)),
                            self.table, "add_column")
            return [add, drop_default] if fill is not None else [add]
        if existing.default is not None and self.column.default is None and self.fill is not None \
                and existing.type == self.column.type:
            return [drop_default]  # a run stopped between the two statements above
        return []

    def notices(self, live: Snapshot) -> list[str]:
        existing = live.column(self.table, self.column.name)
        if existing is not None and existing.type != self.column.type:
            return [f"{self.table}.{self.column.name} exists as {existing.describe()}; "
                    f"this release declares {self.column.describe()}"]
        return []

    def describe(self) -> str:
        return f"add column {self.table}.{self.column.name}"


@dataclasses.dataclass
class ChangeColumn(Operation):
    """Change a column's definition — only when the live column is what the release changes
    from (``before``). A column already at the new definition is left alone; one in a state this
    release does not know is left alone too, and verification reports it."""

    table: str
    column: Column
    before: tuple[Column, ...]
    deferred_to: str | None = None  # a data stage converts this column (its values change meaning)

    def apply_to(self, expected: Snapshot) -> None:
        expected.tables[self.table].columns[self.column.name] = self.column

    def _live(self, live: Snapshot) -> Column | None:
        return live.column(self.table, self.column.name)

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        existing = self._live(live)
        if self.deferred_to or existing is None or existing.same_definition(self.column):
            return []
        if any(_same_shape(existing, b) for b in self.before):
            return [Statement(_alter(self.table, "MODIFY COLUMN " + render_column(self.column)),
                              self.table, "modify_column")]
        return []

    def notices(self, live: Snapshot) -> list[str]:
        existing = self._live(live)
        if self.deferred_to:
            return []
        if existing is not None and not existing.same_definition(self.column) and \
                not any(_same_shape(existing, b) for b in self.before):
            return [f"{self.table}.{self.column.name} is {existing.describe()}, neither what this release "
                    f"changes from nor {self.column.describe()}; left as it is"]
        return []

    def describe(self) -> str:
        text = f"change column {self.table}.{self.column.name} to {self.column.describe()}"
        return text + (f" (by {self.deferred_to})" if self.deferred_to else "")


def _same_shape(live: Column, declared: Column) -> bool:
    return (live.type, live.nullable, live.auto_increment) == (declared.type, declared.nullable,
                                                                declared.auto_increment)


@dataclasses.dataclass
class RenameColumn(Operation):
    """Rename a column in place (data kept; never drop-and-add)."""

    table: str
    old: str
    column: Column  # the new column

    def apply_to(self, expected: Snapshot) -> None:
        table = expected.tables[self.table]
        table.columns = {(self.column.name if k == self.old else k): (self.column if k == self.old else v)
                         for k, v in table.columns.items()}
        if self.column.name not in table.columns:
            table.columns[self.column.name] = self.column
        for name, index in list(table.indexes.items()):
            if self.old in index.column_names:
                table.indexes[name] = dataclasses.replace(
                    index, columns=tuple((self.column.name if c == self.old else c, n) for c, n in index.columns))

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        old = live.column(self.table, self.old)
        new = live.column(self.table, self.column.name)
        if new is not None:
            return []
        if old is not None:
            return [Statement(_alter(self.table, f"RENAME COLUMN {quote(self.old)} TO {quote(self.column.name)}"),
                              self.table, "rename_column")]
        return [Statement(_alter(self.table, "ADD COLUMN " + render_column(self.column)), self.table, "add_column")]

    def notices(self, live: Snapshot) -> list[str]:
        if live.column(self.table, self.old) is not None and live.column(self.table, self.column.name) is not None:
            return [f"{self.table} has both {self.old} and {self.column.name}; {self.old} is kept as an extra column"]
        return []

    def describe(self) -> str:
        return f"rename column {self.table}.{self.old} to {self.column.name}"


@dataclasses.dataclass
class DropColumn(Operation):
    """Drop a column and its data (only ever from ``--drop``)."""

    table: str
    column: str

    def apply_to(self, expected: Snapshot) -> None:
        RetireColumn(self.table, self.column).apply_to(expected)

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        if live.column(self.table, self.column) is None:
            return []
        return [Statement(_alter(self.table, f"DROP COLUMN {quote(self.column)}"), self.table, "drop_column")]

    def describe(self) -> str:
        return f"drop column {self.table}.{self.column} (data lost)"


@dataclasses.dataclass
class DropTable(Operation):
    """Drop a table and its data (only ever from ``--drop``)."""

    table: str

    def apply_to(self, expected: Snapshot) -> None:
        expected.tables.pop(self.table, None)

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        if live.table(self.table) is None:
            return []
        return [Statement(f"DROP TABLE {quote(self.table)}", self.table)]

    def describe(self) -> str:
        return f"drop table {self.table} (data lost)"


@dataclasses.dataclass
class RetireColumn(Operation):
    """The release no longer declares the column; it stays (it may hold data)."""

    table: str
    column: str

    def apply_to(self, expected: Snapshot) -> None:
        table = expected.tables[self.table]
        table.columns.pop(self.column, None)
        for name, index in list(table.indexes.items()):
            if self.column in index.column_names:
                del table.indexes[name]

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        return []

    def describe(self) -> str:
        return f"retire column {self.table}.{self.column} (kept)"


# --- indexes ----------------------------------------------------------------------------------


@dataclasses.dataclass
class AddIndex(Operation):
    """Make sure an index exists under its declared name.

    An index with the same definition under another name (RAGFlow's upgrade path names them
    ``<table>_<column>`` where a fresh install says ``<modelclass>_<column>``) is renamed, not
    rebuilt; an index with the declared name but another definition is replaced in one statement.
    """

    table: str
    index: Index
    superseded_by: str | None = None  # a later release renames the index to this

    def apply_to(self, expected: Snapshot) -> None:
        expected.tables[self.table].indexes[self.index.name] = self.index

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        table = live.table(self.table)
        if table is None:
            return []
        if self.superseded_by and (self.superseded_by in table.indexes
                                   or any(c not in table.columns for c in self.index.column_names)):
            return []  # a database already past that rename (adopted from a newer RAGFlow)
        existing = table.indexes.get(self.index.name)
        if existing is not None:
            if existing.same_definition(self.index):
                return []
            return [Statement(_alter(self.table, f"DROP INDEX {quote(self.index.name)}, "
                                     f"ADD {render_index_clause(self.index)}"), self.table, "add_index",
                              note=f"replaces {existing.describe()}")]
        declared = set(expected.tables[self.table].indexes) if self.table in expected.tables else set()
        for other in table.indexes.values():
            if other.name not in declared and not other.primary and other.same_definition(self.index):
                return [Statement(_alter(self.table, f"RENAME INDEX {quote(other.name)} TO {quote(self.index.name)}"),
                                  self.table, "rename_index")]
        return [Statement(_alter(self.table, f"ADD {render_index_clause(self.index)}"), self.table, "add_index")]

    def describe(self) -> str:
        return f"add index {self.table}.{self.index.name}"


@dataclasses.dataclass
class RenameIndex(Operation):
    """Rename an index in place (no rebuild); create it when neither name exists."""

    table: str
    old: str
    index: Index

    def apply_to(self, expected: Snapshot) -> None:
        indexes = expected.tables[self.table].indexes
        indexes.pop(self.old, None)
        indexes[self.index.name] = self.index

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        table = live.table(self.table)
        if table is None or self.index.name in table.indexes:
            return []
        if self.old in table.indexes:
            return [Statement(_alter(self.table, f"RENAME INDEX {quote(self.old)} TO {quote(self.index.name)}"),
                              self.table, "rename_index")]
        return AddIndex(self.table, self.index).statements(live, expected)

    def describe(self) -> str:
        return f"rename index {self.table}.{self.old} to {self.index.name}"


@dataclasses.dataclass
class DropIndex(Operation):
    table: str
    name: str

    def apply_to(self, expected: Snapshot) -> None:
        if self.table in expected.tables:
            expected.tables[self.table].indexes.pop(self.name, None)

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        table = live.table(self.table)
        if table is None or self.name not in table.indexes:
            return []
        return [Statement(_alter(self.table, f"DROP INDEX {quote(self.name)}"), self.table, "drop_index")]

    def describe(self) -> str:
        return f"drop index {self.table}.{self.name}"


# --- RAGFlow v0.25: tenant_llm gets a surrogate key ------------------------------------------


@dataclasses.dataclass
class SurrogatePrimaryKey(Operation):
    """Replace a composite primary key by an ``id INT AUTO_INCREMENT`` primary key, keeping the
    old key as a UNIQUE index — in one ALTER TABLE, so there is never a moment without a key.

    Rows are numbered in the order of the old key (the table is rebuilt in primary-key order),
    as RAGFlow's own conversion numbers them. States RAGFlow's own conversion can leave behind
    (a ``temp_id`` column, a dropped primary key, ``temp_id`` already the key) are finished too.
    """

    table: str
    column: Column  # id INT NOT NULL AUTO_INCREMENT
    unique: Index  # the old key's columns, as a unique index

    def apply_to(self, expected: Snapshot) -> None:
        table = expected.tables[self.table]
        table.columns = {self.column.name: self.column, **table.columns}
        table.indexes["PRIMARY"] = Index("PRIMARY", True, ((self.column.name, None),))
        table.indexes[self.unique.name] = self.unique

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        table = live.table(self.table)
        if table is None:
            return []
        pk = table.primary_key
        pk_cols = pk.column_names if pk else ()
        if pk_cols == (self.column.name,):
            return []
        temp = "temp_id"
        if pk_cols == (temp,) and self.column.name not in table.columns:
            return [Statement(_alter(self.table, f"RENAME COLUMN {quote(temp)} TO {quote(self.column.name)}"),
                              self.table, "rename_column", note="finishes RAGFlow's interrupted conversion")]
        clauses = []
        if temp in table.columns:
            clauses.append(f"DROP COLUMN {quote(temp)}")
        if pk is not None:
            clauses.append("DROP PRIMARY KEY")
        if self.column.name in table.columns:
            clauses.append("MODIFY COLUMN " + render_column(self.column))
        else:
            clauses.append("ADD COLUMN " + render_column(self.column) + " FIRST")
        clauses.append(f"ADD PRIMARY KEY ({quote(self.column.name)})")
        if not any(i.same_definition(self.unique) for i in table.indexes.values() if not i.primary):
            clauses.append(f"ADD {render_index_clause(self.unique)}")
        return [Statement(_alter(self.table, ", ".join(clauses)), self.table, "rebuild")]

    def describe(self) -> str:
        return f"give {self.table} a surrogate primary key {self.column.name}"


# --- live-state effects (for plans: what the database looks like after a statement) -----------


def simulate(live: Snapshot, op: Operation, expected_after: Snapshot) -> None:
    """Update ``live`` as if ``op``'s statements had run: the touched table now looks like the
    expected table where the operation acted, and keeps whatever else it had."""
    name = getattr(op, "table", None)
    if name is None or name not in expected_after.tables:
        return
    target = expected_after.tables[name]
    table = live.tables.get(name)
    if table is None:
        live.tables[name] = dataclasses.replace(target, columns=dict(target.columns), indexes=dict(target.indexes))
        return
    if isinstance(op, (AddColumn, ChangeColumn)):
        if not (isinstance(op, ChangeColumn) and not op.statements(live, expected_after)):
            table.columns[op.column.name] = op.column
    elif isinstance(op, RenameColumn):
        if op.column.name not in table.columns:
            table.columns = {(op.column.name if k == op.old else k): v for k, v in table.columns.items()}
            table.columns.setdefault(op.column.name, op.column)
            for iname, index in list(table.indexes.items()):
                table.indexes[iname] = dataclasses.replace(
                    index, columns=tuple((op.column.name if c == op.old else c, n) for c, n in index.columns))
    elif isinstance(op, AddIndex):
        equivalent = [i for i in table.indexes.values()
                      if i.name not in target.indexes and not i.primary and i.same_definition(op.index)]
        if op.index.name not in table.indexes and equivalent:
            table.indexes.pop(equivalent[0].name)
        table.indexes[op.index.name] = op.index
    elif isinstance(op, DropIndex):
        table.indexes.pop(op.name, None)
    elif isinstance(op, RenameIndex):
        if op.index.name not in table.indexes:
            table.indexes.pop(op.old, None)
            table.indexes[op.index.name] = op.index
    elif isinstance(op, SurrogatePrimaryKey):
        table.columns.pop("temp_id", None)
        table.columns = {op.column.name: op.column, **table.columns}
        table.indexes["PRIMARY"] = Index("PRIMARY", True, ((op.column.name, None),))
        if not any(i.same_definition(op.unique) for i in table.indexes.values() if not i.primary):
            table.indexes[op.unique.name] = op.unique
