"""The PostgreSQL normal form of a :class:`~ragflow_migrate.schema.snapshot.Snapshot`, and the
mapping of a declared schema (MySQL's normal form, computed from peewee models) into it.

The chain and the models are dialect-neutral and speak MySQL's normal form ("varchar(32)",
"longtext", "int", "tinyint(1)", "float", "datetime", prefix lengths, ``PRIMARY``).
:func:`to_postgres` turns that into exactly what RAGFlow's peewee creates on PostgreSQL, so
that ``diff.compare(to_postgres(declared), live_snapshot(conn))`` is the PostgreSQL drift check.

Normal form (what ``introspect.live_snapshot`` reads and :func:`to_postgres` produces):

* ``Column.type``: ``format_type(atttypid, atttypmod)`` in lower case: "character varying(32)",
  "character(n)", "text", "integer", "bigint", "smallint", "boolean", "real",
  "double precision", "timestamp without time zone", "date", ...
* ``Column.collation``: always ``None``. The database's collation is ``Snapshot.collation``,
  informational only; ``Table.collation`` is ``None``.
* ``Column.auto_increment``: ``True`` when the column's default is ``nextval()`` of a sequence
  owned by that column (a serial), or when it is an identity column (RAGFlow has none); its
  ``Column.default`` is then ``None``. Any other default is
  the text of ``pg_get_expr`` as PostgreSQL prints it. The declared schema has no server-side
  default (RAGFlow's defaults live in Python), so the only one in practice is the serial.
* ``Table.indexes`` keyed by index name, with two exceptions of naming: the primary key is keyed
  and named ``PRIMARY`` (as on MySQL, so ``Table.primary_key`` works), and carries the name of
  its constraint in ``Index.constraint`` ("<table>_pkey"). An index owned by a UNIQUE
  constraint keeps its own name (the constraint's) and has ``constraint`` set too; a plain
  index (``CREATE [UNIQUE] INDEX``, all of RAGFlow's others) has ``constraint`` ``None``.
  ``constraint`` is not part of ``Index.same_definition``.
* Index columns have prefix ``None``: PostgreSQL has no prefix indexes, so MySQL's
  ``api_key(768)`` becomes a full btree index on ``api_key``, as RAGFlow's peewee makes it.
* Expression or partial indexes (RAGFlow has none): a column entry is the expression's text
  (``pg_get_indexdef(index, n, true)``) and a partial index's predicate is not represented; they
  are read by name only so that they show up in a comparison rather than vanish.

The type table is peewee's ``PostgresqlDatabase.field_types`` (peewee 3.17/3.19, which
RAGFlow's tags lock) over its base ``FIELD`` table. Verified against the fresh reference
dumps (``shared/ragflow-schema/postgres-15/fresh-*.json``): varchar, text, longtext, int,
bigint, float, datetime, tinyint(1) and the serial. char, smallint, date, double and mediumtext
appear in no release's declared schema and follow peewee's table.
"""

from __future__ import annotations

import dataclasses
import re

from ...schema.snapshot import Column, Index, Snapshot, Table

_FIXED = {
    "text": "text",
    "longtext": "text",  # peewee's LongTextField is TEXT on PostgreSQL
    "mediumtext": "text",
    "int": "integer",
    "bigint": "bigint",
    "smallint": "smallint",
    "tinyint(1)": "boolean",  # BooleanField: BOOL, tinyint(1) on MySQL, BOOLEAN on PostgreSQL
    "float": "real",  # FloatField: FLOAT -> REAL (peewee's base table), float4
    "double": "double precision",
    "datetime": "timestamp without time zone",  # DATETIME -> TIMESTAMP
    "date": "date",
}
_SIZED = re.compile(r"^(varchar|char)\((\d+)\)$")
_SIZED_PG = {"varchar": "character varying", "char": "character"}

#: PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
MAX_IDENTIFIER = 63


def pg_type_of(column_type: str) -> str:
    """The PostgreSQL normal-form type of one MySQL normal-form type ("varchar(32)" →
    "character varying(32)"); ValueError for a type RAGFlow's models never declare."""
    text = column_type.strip().lower()
    sized = _SIZED.match(text)
    if sized:
        return f"{_SIZED_PG[sized.group(1)]}({sized.group(2)})"
    try:
        return _FIXED[text]
    except KeyError:
        raise ValueError(f"no PostgreSQL mapping for column type {column_type!r}") from None


def pk_constraint_name(table: str) -> str:
    """The name PostgreSQL gives the primary key constraint of ``CREATE TABLE`` (and its index):
    ``<table>_pkey``, the table part cut so that the whole fits 63 bytes (makeObjectName)."""
    suffix = "_pkey"
    room = MAX_IDENTIFIER - len(suffix)
    head = table.encode()[:room].decode(errors="ignore")
    return head + suffix


def _column(col: Column) -> Column:
    # A serial's default is folded into auto_increment (see the module docstring).
    return dataclasses.replace(col, type=pg_type_of(col.type), collation=None,
                               default=None if col.auto_increment else col.default)


def _index(table: str, index: Index) -> Index:
    columns = tuple((name, None) for name, _prefix in index.columns)
    constraint = pk_constraint_name(table) if index.primary else None
    return Index(index.name, index.unique, columns, constraint)


def to_postgres(declared: Snapshot) -> Snapshot:
    """The declared schema as RAGFlow's peewee creates it on PostgreSQL (a new snapshot; the
    argument is not changed). ``Snapshot.collation`` is dropped: it is the database's, which
    the declared schema does not know."""
    out = Snapshot()
    for name, table in declared.tables.items():
        pg = Table(name)
        for col_name, col in table.columns.items():
            pg.columns[col_name] = _column(col)
        for idx_name, index in table.indexes.items():
            pg.indexes[idx_name] = _index(name, index)
        out.tables[name] = pg
    return out
