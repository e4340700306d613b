"""A normalised, server-independent picture of a schema: tables, columns, indexes.

Three sources produce the same shape, so that they can be compared:

* peewee models (:func:`table_from_model`): what a release declares;
* a live database (``introspect.py``);
* the reference JSON files of ``shared/ragflow-schema`` (:func:`from_reference_json`, tests).

Normal form: integer display widths dropped except ``tinyint(1)`` (MySQL 8 prints ``int``,
MariaDB ``int(11)``); a column default of SQL NULL (MariaDB says the text ``NULL``) is ``None``;
MariaDB's quoted string defaults are unquoted; a column collation equal to its table's is
``None``; indexes are compared by uniqueness, columns and prefix lengths, and named by name.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

_INT_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|bigint)\((\d+)\)(.*)$")


def normalize_type(column_type: str) -> str:
    text = column_type.strip().lower()
    match = _INT_WIDTH.match(text)
    if match:
        base, width, rest = match.groups()
        if base == "tinyint" and width == "1":
            return "tinyint(1)" + rest
        return base + rest
    return text


def normalize_default(default: str | None, is_mariadb_style: bool = False) -> str | None:
    if default is None:
        return None
    if is_mariadb_style:
        if default == "NULL":
            return None
        if len(default) >= 2 and default[0] == "'" and default[-1] == "'":
            return default[1:-1].replace("''", "'")
    if default.lower() in ("current_timestamp()", "current_timestamp"):
        return "CURRENT_TIMESTAMP"
    return default


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: str  # normalised information_schema COLUMN_TYPE, e.g. "varchar(32)", "int", "tinyint(1)"
    nullable: bool
    default: str | None = None
    auto_increment: bool = False
    collation: str | None = None  # None: the table's collation (or not a string column)

    def same_definition(self, other: Column) -> bool:
        return (self.type, self.nullable, self.default, self.auto_increment, self.collation) == (
            other.type, other.nullable, other.default, other.auto_increment, other.collation)

    def describe(self) -> str:
        text = f"{self.type} {'NULL' if self.nullable else 'NOT NULL'}"
        if self.default is not None:
            text += f" DEFAULT {self.default!r}"
        if self.auto_increment:
            text += " AUTO_INCREMENT"
        if self.collation:
            text += f" COLLATE {self.collation}"
        return text


@dataclasses.dataclass(frozen=True)
class Index:
    name: str
    unique: bool
    columns: tuple[tuple[str, int | None], ...]  # (column, prefix length or None)
    # PostgreSQL: the constraint that owns the index ("<table>_pkey", a UNIQUE constraint); None
    # for a plain index and always on MySQL. Informational: not part of the definition.
    constraint: str | None = dataclasses.field(default=None, compare=False)

    @property
    def primary(self) -> bool:
        return self.name == "PRIMARY"

    def same_definition(self, other: Index) -> bool:
        return (self.unique, self.columns) == (other.unique, other.columns)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def describe(self) -> str:
        cols = ", ".join(f"{c}({n})" if n else c for c, n in self.columns)
        kind = "PRIMARY KEY" if self.primary else ("UNIQUE" if self.unique else "INDEX")
        return f"{kind} ({cols})"


@dataclasses.dataclass
class Table:
    name: str
    columns: dict[str, Column] = dataclasses.field(default_factory=dict)  # in table order
    indexes: dict[str, Index] = dataclasses.field(default_factory=dict)
    collation: str | None = None

    @property
    def primary_key(self) -> Index | None:
        return self.indexes.get("PRIMARY")

    def find_equivalent_index(self, index: Index) -> Index | None:
        for other in self.indexes.values():
            if other.name != index.name and not other.primary and other.same_definition(index):
                return other
        return None


@dataclasses.dataclass
class Snapshot:
    tables: dict[str, Table] = dataclasses.field(default_factory=dict)
    collation: str | None = None  # the database's default collation, when known

    def copy(self) -> Snapshot:
        """An independent copy: its tables and their column and index maps are new; the columns
        and indexes themselves are frozen, so they are shared (a deep copy took ~1 s per chain
        replay)."""
        return Snapshot({name: dataclasses.replace(t, columns=dict(t.columns), indexes=dict(t.indexes))
                         for name, t in self.tables.items()}, self.collation)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def column(self, table: str, column: str) -> Column | None:
        t = self.tables.get(table)
        return t.columns.get(column) if t else None

    def without(self, tables: Iterable[str]) -> Snapshot:
        drop = set(tables)
        return Snapshot({k: v for k, v in self.tables.items() if k not in drop}, self.collation)


# --- from peewee models ---------------------------------------------------------------------

_FIELD_TYPES = {
    "INTEGER": "int",
    "INT": "int",
    "BIGINT": "bigint",
    "SMALLINT": "smallint",
    "BOOL": "tinyint(1)",
    "FLOAT": "float",
    "DOUBLE": "double",
    "DATETIME": "datetime",
    "DATE": "date",
    "TEXT": "text",
    "LONGTEXT": "longtext",
    "MEDIUMTEXT": "mediumtext",
    "AUTO": "int",
    "BIGAUTO": "bigint",
}


def column_from_field(field) -> Column:
    """The column a peewee field declares (server-side: no DEFAULT, as RAGFlow's models)."""
    field_type = field.field_type.upper()
    if field_type == "VARCHAR":
        col_type = f"varchar({field.max_length})"
    elif field_type == "CHAR":
        col_type = f"char({field.max_length})"
    elif field_type in _FIELD_TYPES:
        col_type = _FIELD_TYPES[field_type]
    else:
        raise ValueError(f"{field.model.__name__}.{field.name}: unsupported field type {field.field_type}")
    auto = field_type in ("AUTO", "BIGAUTO")
    nullable = bool(field.null) and not field.primary_key and not auto
    return Column(field.column_name, col_type, nullable, None, auto, None)


_PREFIX_SQL = re.compile(r"^`([^`]+)`\((\d+)\)$")


def indexes_from_model(model) -> list[Index]:
    """Every index peewee would create for ``model``, named as peewee names them."""
    import peewee as pw

    meta = model._meta
    out: list[Index] = []
    pk_fields = meta.get_primary_keys()
    if pk_fields and pk_fields[0] is not None and meta.primary_key is not False:
        out.append(Index("PRIMARY", True, tuple((f.column_name, None) for f in pk_fields)))
    for index in meta.fields_to_index():
        cols: list[tuple[str, int | None]] = []
        for expr in index._expressions:
            if isinstance(expr, pw.Field):
                cols.append((expr.column_name, None))
            elif isinstance(expr, pw.SQL):
                match = _PREFIX_SQL.match(expr.sql.strip())
                if not match:
                    raise ValueError(f"{model.__name__}: index expression {expr.sql!r} is not `col`(n)")
                cols.append((match.group(1), int(match.group(2))))
            else:
                raise ValueError(f"{model.__name__}: unsupported index expression {expr!r}")
        out.append(Index(index._name, bool(index._unique), tuple(cols)))
    return out


def table_from_model(model) -> Table:
    meta = model._meta
    table = Table(meta.table_name)
    for field in meta.sorted_fields:
        col = column_from_field(field)
        table.columns[col.name] = col
    for index in indexes_from_model(model):
        table.indexes[index.name] = index
    return table


def from_models(models: Iterable) -> Snapshot:
    snap = Snapshot()
    for model in models:
        table = table_from_model(model)
        snap.tables[table.name] = table
    return snap


# --- from the reference JSON (shared/ragflow-schema/<server>/*.json) ---------------------------


def from_reference_json(data: dict) -> Snapshot:
    """Build a snapshot from one of the reference files (the dump of information_schema)."""
    mariadb = "mariadb" in str(data.get("server_version", "")).lower()
    snap = Snapshot(collation=data.get("database_collation"))
    for row in data["tables"]:
        snap.tables[row["table"]] = Table(row["table"], collation=row["table_collation"])
    return fill_from_rows(snap, data["columns"], data["statistics"], mariadb)


def fill_from_rows(snap: Snapshot, columns: list[dict], statistics: list[dict], mariadb: bool) -> Snapshot:
    for row in sorted(columns, key=lambda r: (r["table"], r["ordinal"])):
        table = snap.tables[row["table"]]
        collation = row.get("collation")
        if collation == table.collation:
            collation = None
        table.columns[row["column"]] = Column(
            row["column"],
            normalize_type(row["column_type"]),
            row["is_nullable"] == "YES",
            normalize_default(row["column_default"], mariadb),
            "auto_increment" in (row.get("extra") or "").lower(),
            collation,
        )
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in statistics:
        grouped.setdefault((row["table"], row["index_name"]), []).append(row)
    for (table_name, index_name), rows in sorted(grouped.items()):
        rows.sort(key=lambda r: r["seq"])
        snap.tables[table_name].indexes[index_name] = Index(
            index_name,
            int(rows[0]["non_unique"]) == 0,
            tuple((r["column"], int(r["sub_part"]) if r["sub_part"] is not None else None) for r in rows),
        )
    return snap
