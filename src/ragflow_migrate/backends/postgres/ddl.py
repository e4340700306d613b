"""PostgreSQL DDL for the chain's dialect-neutral operations (``schema/operations.py``,
``schema/dataops.py``).

:func:`statements` is the PostgreSQL face of ``Operation.statements``: given the live schema and
the declared one, both in the PostgreSQL normal form (``introspect.live_snapshot`` and
``pgform.to_postgres``), it returns the SQL still needed, ``[]`` when there is nothing to do. Each
renderer takes the same decisions as the MySQL operation (rename rather than add, retire = keep,
change a column only from a state the release knows), so both backends adopt the same states.
The operation's own columns and indexes are in MySQL's normal form and are mapped with
:mod:`.pgform` here.

What differs from MySQL:

* index names are schema-wide: a create or rename checks every table of ``live``;
* a type change is ``ALTER COLUMN … TYPE … USING col::type``, nullability ``SET/DROP NOT NULL``;
* an index replaced under its own name is built under a temporary name, then the old one is
  dropped and the new one renamed, so that ``user.email`` (RAGFlow leaves a non-unique
  ``user_email`` on PostgreSQL) is never without an index;
* a change that a data stage owns on MySQL is still made here when it only widens a column to a
  character type (``tenant_*_id`` integer → varchar(32)): the cast cannot fail and the data stage
  re-resolves every value that is not a model id anyway;
* ``tenant_llm``'s surrogate key is a serial: a sequence owned by the column, rows numbered in the
  old key's order, ``setval`` that also works on an empty table (RAGFlow's own converter fails
  there with 22003).

:func:`migration_statements` turns a migration's operations into statements for
:func:`.executor.apply_migration`: each renders its operation against the live schema *inside* the
migration's transaction, so every decision sees what the earlier operations did.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from ...errors import StepFailedError
from ...schema.dataops import DeduplicateUserEmails, RenameValues
from ...schema.operations import (
    AddColumn,
    AddIndex,
    ChangeColumn,
    CreateTable,
    DropColumn,
    DropIndex,
    DropTable,
    Operation,
    RenameColumn,
    RenameIndex,
    RetireColumn,
    RetireTable,
    Statement,
    SurrogatePrimaryKey,
)
from ...schema.snapshot import Column, Index, Snapshot, Table
from . import executor
from .introspect import live_snapshot
from .pgform import MAX_IDENTIFIER, pg_type_of, pk_constraint_name

#: Character types: a change to one of them is a cast that cannot fail (see the module docstring).
_CHARACTER_TYPES = ("character varying", "text", "character(")


# --- rendering --------------------------------------------------------------------------------


def quote(name: str) -> str:
    """A PostgreSQL identifier (``"user"`` is a reserved word, so everything is quoted)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A constant in standard SQL (``standard_conforming_strings``: no backslash escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def pg_column(col: Column) -> Column:
    """A declared (MySQL-form) column in the PostgreSQL normal form."""
    return dataclasses.replace(col, type=pg_type_of(col.type), collation=None,
                               default=None if col.auto_increment else col.default)


def pg_index(index: Index) -> Index:
    """A declared index without prefix lengths (PostgreSQL indexes whole columns)."""
    return dataclasses.replace(index, columns=tuple((c, None) for c in index.column_names))


def column_definition(col: Column, *, fill: Any = None) -> str:
    """``"name" type [NOT NULL] [DEFAULT …]`` of a normal-form column; an auto-increment
    integer is a serial (its sequence ``<table>_<column>_seq``, owned by the column)."""
    col_type = {"integer": "serial", "bigint": "bigserial"}.get(col.type, col.type) if col.auto_increment \
        else col.type
    parts = [quote(col.name), col_type]
    if not col.nullable:
        parts.append("NOT NULL")
    default = fill if fill is not None else col.default
    if default is not None:
        parts.append("DEFAULT " + literal(default))
    return " ".join(parts)


def _columns(index: Index) -> str:
    return ", ".join(quote(c) for c in index.column_names)


def create_index(table: str, index: Index, name: str | None = None, *, concurrently: bool = False) -> str:
    kind = ("UNIQUE INDEX" if index.unique else "INDEX") + (" CONCURRENTLY" if concurrently else "")
    return f"CREATE {kind} {quote(name or index.name)} ON {quote(table)} ({_columns(index)})"


@dataclasses.dataclass
class IndexBuild(Statement):
    """A ``CREATE [UNIQUE] INDEX`` of an index under its own name, which nothing else in its
    operation depends on: on a big table it may be built ``CONCURRENTLY`` outside the migration's
    transaction instead (:mod:`.indexes`)."""

    index: Index | None = None

    @property
    def name(self) -> str:
        assert self.index is not None
        return self.index.name

    def concurrent_sql(self) -> str:
        assert self.table is not None and self.index is not None
        return create_index(self.table, self.index, concurrently=True)


def _alter(table: str, clause: str) -> str:
    return f"ALTER TABLE {quote(table)} {clause}"


def _drop_index(table: str, index: Index) -> str:
    """An index owned by a constraint (a PRIMARY KEY or UNIQUE constraint) goes with it."""
    if index.constraint:
        return _alter(table, f"DROP CONSTRAINT {quote(index.constraint)}")
    return f"DROP INDEX {quote(index.name)}"


# --- schema-wide names ------------------------------------------------------------------------


def _relation_names(live: Snapshot) -> dict[str, str]:
    """Every table and index name of the schema → the table it belongs to (PostgreSQL keeps them
    in one namespace: an index name is taken if any table has it)."""
    names = {name: name for name in live.tables}
    for table in live.tables.values():
        for index in table.indexes.values():
            names[index.constraint if index.primary and index.constraint else index.name] = table.name
    return names


def _require_free(live: Snapshot, name: str, table: str) -> None:
    """Stop before a statement that would fail with 42P07: the name belongs to another table."""
    owner = _relation_names(live).get(name)
    if owner is not None and owner != table:
        raise StepFailedError(
            f"cannot create index {name} on {table}: PostgreSQL index names are schema-wide and "
            f"{'the table' if owner == name else 'an index of table ' + owner} is called {name}",
            hint=f"rename or drop the other {name} (it is not RAGFlow's), then run again")


def _temporary_name(live: Snapshot, name: str) -> str:
    taken = _relation_names(live)
    for n in range(100):
        suffix = f"_rfm{n}" if n else "_rfm"
        candidate = name.encode()[:MAX_IDENTIFIER - len(suffix)].decode(errors="ignore") + suffix
        if candidate not in taken:
            return candidate
    raise StepFailedError(f"no free temporary name for index {name}")


# --- the dispatch -----------------------------------------------------------------------------


@functools.singledispatch
def statements(op: Operation, live: Snapshot, expected: Snapshot) -> list[Statement]:
    """The PostgreSQL statements ``op`` still needs, given ``live`` (``[]``: none)."""
    raise NotImplementedError(f"no PostgreSQL rendering for {type(op).__name__}")


@statements.register
def _(op: RetireTable, live: Snapshot, expected: Snapshot) -> list[Statement]:
    return []


@statements.register
def _(op: RetireColumn, live: Snapshot, expected: Snapshot) -> list[Statement]:
    return []


# --- tables -----------------------------------------------------------------------------------


@statements.register
def _(op: CreateTable, live: Snapshot, expected: Snapshot) -> list[Statement]:
    """The table, its primary key constraint and its indexes (one transaction: never a table
    without its indexes)."""
    if live.table(op.table) is not None:
        return []
    table = op.definition
    lines = [column_definition(pg_column(c)) for c in table.columns.values()]
    if table.primary_key is not None:
        lines.append(f"CONSTRAINT {quote(pk_constraint_name(op.table))} PRIMARY KEY ({_columns(table.primary_key)})")
    out = [Statement(f"CREATE TABLE {quote(op.table)} (\n  " + ",\n  ".join(lines) + "\n)", op.table)]
    for index in table.indexes.values():
        if not index.primary:
            _require_free(live, index.name, op.table)
            out.append(Statement(create_index(op.table, index), op.table))
    return out


@statements.register
def _(op: DropTable, live: Snapshot, expected: Snapshot) -> list[Statement]:
    if live.table(op.table) is None:
        return []
    return [Statement(f"DROP TABLE {quote(op.table)}", op.table)]


# --- columns ----------------------------------------------------------------------------------


@statements.register
def _(op: AddColumn, live: Snapshot, expected: Snapshot) -> list[Statement]:
    """As on MySQL: a NOT NULL column is added with ``DEFAULT fill`` (catalog only on PostgreSQL
    11+), then the default is dropped, since RAGFlow's columns have no server-side default."""
    if op.superseded_by and live.column(op.table, op.superseded_by) is not None:
        return []
    want = pg_column(op.column)
    existing = live.column(op.table, op.column.name)
    drop_default = Statement(_alter(op.table, f"ALTER COLUMN {quote(want.name)} DROP DEFAULT"), op.table)
    if existing is None:
        fill = op.fill if not want.nullable else None
        add = Statement(_alter(op.table, "ADD COLUMN " + column_definition(want, fill=fill)), op.table)
        return [add, drop_default] if fill is not None else [add]
    if existing.default is not None and want.default is None and op.fill is not None and existing.type == want.type:
        return [drop_default]
    return []


def _same_shape(live: Column, declared: Column) -> bool:
    return (live.type, live.nullable, live.auto_increment) == (declared.type, declared.nullable,
                                                                declared.auto_increment)


def _cast_is_safe(change: ChangeColumn) -> bool:
    return pg_type_of(change.column.type).startswith(_CHARACTER_TYPES)


def change_clauses(have: Column, want: Column) -> list[str]:
    """The ``ALTER COLUMN`` clauses that turn ``have`` into ``want`` (type, nullability, default)."""
    name = quote(want.name)
    clauses = []
    if have.type != want.type:
        clauses.append(f"ALTER COLUMN {name} TYPE {want.type} USING {name}::{want.type}")
    if have.nullable != want.nullable:
        clauses.append(f"ALTER COLUMN {name} {'DROP' if want.nullable else 'SET'} NOT NULL")
    if have.default != want.default:
        clauses.append(f"ALTER COLUMN {name} " + ("DROP DEFAULT" if want.default is None
                                                  else f"SET DEFAULT {literal(want.default)}"))
    return clauses


@statements.register
def _(op: ChangeColumn, live: Snapshot, expected: Snapshot) -> list[Statement]:
    """Only from a state the release changes from (``before``), as on MySQL; one ALTER TABLE with
    every clause, so the table is rewritten at most once."""
    existing = live.column(op.table, op.column.name)
    want = pg_column(op.column)
    if existing is None or existing.same_definition(want):
        return []
    if not any(_same_shape(existing, pg_column(b)) for b in op.before):
        return []
    clauses = change_clauses(existing, want)
    if not clauses:  # only auto_increment differs: that is SurrogatePrimaryKey's business
        return []
    statement = Statement(_alter(op.table, ", ".join(clauses)), op.table,
                          note=f"ahead of {op.deferred_to}, which fills the values" if op.deferred_to else None)
    if op.deferred_to and not _cast_is_safe(op):
        # The values change meaning (a type name becomes a number): the data stage owns the
        # conversion (model_type_merge rebuilds the rows with the bitmask and converts the column
        # in the same transaction), as on MySQL, whether or not the table holds rows yet: the
        # seeding and the merge then take the same path on both servers.
        return []
    return [statement]


def _empty(table: str) -> Callable[[Any], bool]:
    def needed(conn: Any) -> bool:
        with conn.cursor() as cur:
            cur.execute(f"SELECT 1 FROM {quote(table)} LIMIT 1")
            return cur.fetchone() is None
    return needed


@statements.register
def _(op: RenameColumn, live: Snapshot, expected: Snapshot) -> list[Statement]:
    if live.column(op.table, op.column.name) is not None:
        return []
    if live.column(op.table, op.old) is not None:
        return [Statement(_alter(op.table, f"RENAME COLUMN {quote(op.old)} TO {quote(op.column.name)}"), op.table)]
    return [Statement(_alter(op.table, "ADD COLUMN " + column_definition(pg_column(op.column))), op.table)]


@statements.register
def _(op: DropColumn, live: Snapshot, expected: Snapshot) -> list[Statement]:
    if live.column(op.table, op.column) is None:
        return []
    return [Statement(_alter(op.table, f"DROP COLUMN {quote(op.column)}"), op.table)]


# --- indexes ----------------------------------------------------------------------------------


def _replace_index(live: Snapshot, table: str, old: Index, new: Index) -> list[Statement]:
    """``old`` gives way to ``new`` under ``new``'s name: build, drop, rename, so there is an
    index on the columns at every moment (and the build fails, on duplicates, before anything
    is dropped)."""
    temporary = _temporary_name(live, new.name)
    return [Statement(create_index(table, new, temporary), table, note=f"replaces {old.describe()}"),
            Statement(_drop_index(table, old), table),
            Statement(f"ALTER INDEX {quote(temporary)} RENAME TO {quote(new.name)}", table)]


def _adopt_index(live: Snapshot, table: str, other: Index, new: Index) -> list[Statement]:
    """An equivalent index under another name is renamed (no rebuild); one that a UNIQUE
    constraint owns (``uk_tenant_llm``, left by RAGFlow v0.25's converter) is rebuilt as the plain
    index RAGFlow's fresh install has, then the constraint is dropped."""
    if other.constraint:
        return [Statement(create_index(table, new), table, note=f"replaces constraint {other.constraint}"),
                Statement(_drop_index(table, other), table)]
    return [Statement(f"ALTER INDEX {quote(other.name)} RENAME TO {quote(new.name)}", table)]


@statements.register
def _(op: AddIndex, live: Snapshot, expected: Snapshot) -> list[Statement]:
    table = live.table(op.table)
    if table is None:
        return []
    if op.superseded_by and (op.superseded_by in table.indexes
                             or any(c not in table.columns for c in op.index.column_names)):
        return []
    want = pg_index(op.index)
    existing = table.indexes.get(want.name)
    if existing is not None:
        return [] if existing.same_definition(want) else _replace_index(live, op.table, existing, want)
    _require_free(live, want.name, op.table)
    declared = set(expected.tables[op.table].indexes) if op.table in expected.tables else set()
    for other in table.indexes.values():
        if other.name not in declared and not other.primary and other.same_definition(want):
            return _adopt_index(live, op.table, other, want)
    return [IndexBuild(create_index(op.table, want), op.table, index=want)]


@statements.register
def _(op: RenameIndex, live: Snapshot, expected: Snapshot) -> list[Statement]:
    table = live.table(op.table)
    if table is None or op.index.name in table.indexes:
        return []
    if op.old in table.indexes:
        _require_free(live, op.index.name, op.table)
        return [Statement(f"ALTER INDEX {quote(op.old)} RENAME TO {quote(op.index.name)}", op.table)]
    return statements(AddIndex(op.table, op.index), live, expected)


@statements.register
def _(op: DropIndex, live: Snapshot, expected: Snapshot) -> list[Statement]:
    table = live.table(op.table)
    if table is None or op.name not in table.indexes:
        return []
    return [Statement(_drop_index(op.table, table.indexes[op.name]), op.table)]


# --- tenant_llm's surrogate key (RAGFlow v0.25) ------------------------------------------------


@statements.register
def _(op: SurrogatePrimaryKey, live: Snapshot, expected: Snapshot) -> list[Statement]:
    """Make ``id`` a serial primary key, from whatever RAGFlow left: the composite key (v0.20 to
    v0.24 chains on PostgreSQL), its converter's variant (``id`` last, already the key,
    ``uk_tenant_llm``), or its MySQL-style ``temp_id``. The old key's unique index comes from here
    unless an equivalent exists (then ``AddIndex`` adopts it)."""
    table = live.table(op.table)
    if table is None:
        return []
    want = pg_column(op.column)
    have = table.columns.get(want.name)
    pk = table.primary_key
    keyed = pk is not None and pk.column_names == (want.name,)
    if keyed and have is not None and have.same_definition(want):
        return []
    out = _temp_id(op, table, have)
    if have is None and "temp_id" in table.columns and pk is not None and pk.column_names == ("temp_id",):
        have, keyed = dataclasses.replace(table.columns["temp_id"], name=want.name), True
    if have is None:
        out.append(_alter(op.table, f"ADD COLUMN {quote(want.name)} {want.type}"))
    if have is None or not have.auto_increment:
        out += _serial(op, want)
    if have is not None and have.nullable:
        out.append(_alter(op.table, f"ALTER COLUMN {quote(want.name)} SET NOT NULL"))
    if not any(i.same_definition(pg_index(op.unique)) for i in table.indexes.values() if not i.primary):
        _require_free(live, op.unique.name, op.table)
        out.append(create_index(op.table, pg_index(op.unique)))
    if not keyed:
        drop = f"DROP CONSTRAINT {quote(pk.constraint)}, " if pk is not None and pk.constraint else ""
        out.append(_alter(op.table, f"{drop}ADD CONSTRAINT {quote(pk_constraint_name(op.table))} "
                                    f"PRIMARY KEY ({quote(want.name)})"))
    return [Statement(sql, op.table) for sql in out]


def _temp_id(op: SurrogatePrimaryKey, table: Table, have: Column | None) -> list[str]:
    """RAGFlow's MySQL converter works through ``temp_id``: finish it (rename) or, when ``id``
    exists as well, drop the leftover; a primary key on it goes along."""
    if "temp_id" not in table.columns:
        return []
    pk = table.primary_key
    if have is None and pk is not None and pk.column_names == ("temp_id",):
        return [_alter(op.table, f"RENAME COLUMN {quote('temp_id')} TO {quote(op.column.name)}")]
    return [_alter(op.table, f"DROP COLUMN {quote('temp_id')}")]


def _serial(op: SurrogatePrimaryKey, want: Column) -> list[str]:
    """Sequence owned by the column, every row without an id numbered after the highest id in
    the old key's order, the sequence moved past them (``is_called`` false on an empty table:
    ``setval(…, 0)`` is out of range), then the default."""
    column, table = quote(want.name), quote(op.table)
    sequence = f"{op.table}_{want.name}_seq"
    regclass = literal(quote(sequence))
    order = ", ".join(quote(c) for c in op.unique.column_names)
    return [
        f"CREATE SEQUENCE IF NOT EXISTS {quote(sequence)} AS {want.type}",
        f"ALTER SEQUENCE {quote(sequence)} OWNED BY {table}.{column}",
        f"UPDATE {table} t SET {column} = n.base + n.rn FROM (SELECT ctid, "
        f"row_number() OVER (ORDER BY {order}) AS rn, (SELECT coalesce(max({column}), 0) FROM {table}) AS base "
        f"FROM {table} WHERE {column} IS NULL) n WHERE t.ctid = n.ctid",
        f"SELECT setval({regclass}, coalesce(max({column}), 1), max({column}) IS NOT NULL) FROM {table}",
        _alter(op.table, f"ALTER COLUMN {column} SET DEFAULT nextval({regclass}::regclass)"),
    ]


# --- data operations --------------------------------------------------------------------------


def _exists(sql: str) -> Callable[[Any], bool]:
    def needed(conn: Any) -> bool:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone() is not None
    return needed


@statements.register
def _(op: RenameValues, live: Snapshot, expected: Snapshot) -> list[Statement]:
    """One UPDATE per rename, the constants cast to the column's type (PostgreSQL converts
    nothing implicitly between integer and text). Not batched: the migration is one transaction."""
    existing = live.column(op.table, op.column)
    if existing is None:
        return []
    table, column = quote(op.table), quote(op.column)

    def value(text: str) -> str:
        return f"{literal(text)}::{existing.type}"

    return [Statement(f"UPDATE {table} SET {column} = {value(new)} WHERE {column} = {value(old)}", op.table,
                      needed=_exists(f"SELECT 1 FROM {table} WHERE {column} = {value(old)} LIMIT 1"))
            for old, new in op.renames]


#: DeduplicateUserEmails's rule: per address (compared as the unique index will compare it:
#: exactly), the superuser, else the oldest account keeps it; the others become
#: ``<email>_DUPLICATE_<first 8 characters of the user id>``. The NULLS clauses give MySQL's order.
DEDUPLICATE_EMAILS = (
    'UPDATE "user" u SET email = d.email || \'_DUPLICATE_\' || left(u.id, 8) FROM ('
    " SELECT id, email, row_number() OVER (PARTITION BY email"
    " ORDER BY is_superuser DESC NULLS LAST, create_time ASC NULLS FIRST, id) AS rn"
    ' FROM "user" WHERE email IN (SELECT email FROM "user" GROUP BY email HAVING count(*) > 1)'
    ") d WHERE d.id = u.id AND d.rn > 1"
)


@statements.register
def _(op: DeduplicateUserEmails, live: Snapshot, expected: Snapshot) -> list[Statement]:
    table = live.table(op.table)
    if table is None or "email" not in table.columns:
        return []
    if any(i.unique and i.column_names == ("email",) for i in table.indexes.values()):
        return []
    return [Statement(DEDUPLICATE_EMAILS, op.table, note="duplicate e-mail addresses renamed <email>_DUPLICATE_<id>",
                      needed=_exists('SELECT 1 FROM "user" GROUP BY email HAVING count(*) > 1 LIMIT 1'))]


# --- a migration ------------------------------------------------------------------------------


def pending(found: list[Statement], conn: Any) -> list[Statement]:
    """The statements whose ``needed`` check (data statements) says there is work."""
    return [s for s in found if s.needed is None or s.needed(conn)]


def migration_statements(operations: list[Operation], expected: Snapshot, *, log: Any = None,
                         step: str = "", hold: Callable[[Statement], bool] | None = None,
                         held: list[IndexBuild] | None = None) -> list[Statement]:
    """One statement per operation for :func:`.executor.apply_migration`. The first reads the
    live schema in the migration's transaction (again on every retry); each operation then runs
    what it still needs and re-reads the table it touched, as the MySQL step does.

    ``hold``: index builds it says yes to are not run but appended to ``held`` (emptied on every
    attempt), to be built ``CONCURRENTLY`` once the transaction has committed; the operations after
    them see the index as present."""
    state: dict[str, Snapshot] = {}
    held = [] if held is None else held

    def read(conn: Any) -> int:
        state["live"] = live_snapshot(conn)
        held.clear()
        return 0

    def run(op: Operation, conn: Any) -> int:
        live = state["live"]
        found = pending(statements(op, live, expected), conn)
        later = [s for s in found if isinstance(s, IndexBuild) and hold is not None and hold(s)]
        for statement in found:
            if not any(statement is h for h in later):
                executor.run_statement(conn, statement, log=log, step=step)
        held.extend(later)
        name = getattr(op, "table", None)
        if len(found) > len(later) and name:
            fresh = live_snapshot(conn, tables=[name])
            live.tables.pop(name, None)
            live.tables.update(fresh.tables)
        for build in held:  # built after the commit: present for what follows
            if build.table in live.tables and build.index is not None:
                live.tables[build.table].indexes[build.name] = build.index
        return len(found) - len(later)

    out = [Statement("-- read the live schema", run=read)]
    out += [Statement(f"-- {op.describe()}", getattr(op, "table", None), run=functools.partial(run, op))
            for op in operations]
    return out


# --- plans: what the database looks like after an operation ------------------------------------


def simulate(live: Snapshot, op: Operation, expected: Snapshot) -> None:
    """Update ``live`` as if ``op``'s statements had run (``plan`` and ``status`` change nothing,
    so later operations are planned against this picture): what the operation touches now looks
    as ``expected`` (the migration's declared schema, PostgreSQL form) has it."""
    name = getattr(op, "table", None)
    if name is None:
        return
    want = expected.tables.get(name)
    have = live.tables.get(name)
    if want is None or isinstance(op, (DropTable, RetireTable)):
        if isinstance(op, (DropTable, RetireTable)):
            live.tables.pop(name, None)
        return
    if have is None or isinstance(op, (CreateTable, SurrogatePrimaryKey)):
        live.tables[name] = dataclasses.replace(want, columns=dict(want.columns), indexes=dict(want.indexes))
        return
    column = getattr(op, "column", None)
    if isinstance(op, (DropColumn, RetireColumn)):
        have.columns.pop(column if isinstance(column, str) else column.name, None)
    elif isinstance(column, Column) and column.name in want.columns:
        if isinstance(op, RenameColumn):
            have.columns.pop(op.old, None)
        have.columns[column.name] = want.columns[column.name]
    index = getattr(op, "index", None)
    if isinstance(op, DropIndex):
        have.indexes.pop(op.name, None)
    elif isinstance(index, Index) and index.name in want.indexes:
        if isinstance(op, RenameIndex):
            have.indexes.pop(op.old, None)
        have.indexes[index.name] = want.indexes[index.name]


def plan_migration(live: Snapshot, operations: list[Operation], expected: Snapshot) -> list[str]:
    """The SQL a migration still needs, operation by operation against ``live`` (updated as the
    plan goes: :func:`simulate`). Data statements are listed as they would run."""
    sql: list[str] = []
    for op in operations:
        found = statements(op, live, expected)
        sql += [s.render() for s in found]
        if found:
            simulate(live, op, expected)
    return sql
