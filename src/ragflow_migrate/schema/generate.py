"""``schema generate``: write the migration of a new RAGFlow release, for maintainers.

The workflow: let the new RAGFlow release create its schema in a scratch database, then run
``schema generate --version vX.Y.Z`` against it. The differences between what the chain
declares today (its newest release) and that database become a migration file in the
package (``schema/migrations/NNN_vX_Y_Z.py``): new tables, columns and indexes are added,
changed columns changed, vanished indexes dropped. Tables and columns the new release no longer
has are *retired* (kept, with their data) unless ``--drop`` is given. Review the file (defaults
for NOT NULL columns, renames that look like drop+add), and update ``schema/models.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..releases import KNOWN_RELEASES, parse_release
from .diff import OWN_PREFIX
from .snapshot import Column, Index, Snapshot, Table

_FIELD_BY_TYPE = {
    "int": "pw.IntegerField",
    "bigint": "pw.BigIntegerField",
    "smallint": "pw.SmallIntegerField",
    "tinyint(1)": "pw.BooleanField",
    "float": "pw.FloatField",
    "double": "pw.DoubleField",
    "datetime": "pw.DateTimeField",
    "date": "pw.DateField",
    "text": "pw.TextField",
    "longtext": "LongTextField",
}


def render_field(col: Column, *, index: Index | None = None, primary: bool = False) -> str:
    match = re.fullmatch(r"(var)?char\((\d+)\)", col.type)
    args: list[str] = []
    if col.auto_increment:
        cls = "pw.AutoField"
    elif match:
        cls = "pw.CharField" if match.group(1) else "pw.FixedCharField"
        args.append(f"max_length={match.group(2)}")
    elif col.type in _FIELD_BY_TYPE:
        cls = _FIELD_BY_TYPE[col.type]
    else:
        raise ValueError(f"column {col.name}: no peewee field for type {col.type!r}; write this one by hand")
    if primary and not col.auto_increment:
        args.append("primary_key=True")
    if col.nullable:
        args.append("null=True")
    if index is not None:
        args.append("unique=True" if index.unique else "index=True")
    return f"{cls}({', '.join(args)})"


def _class_name(table: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in table.split("_") if part)


def _single_index(table: Table, column: str) -> Index | None:
    prefix = table.name.replace("_", "")
    for index in table.indexes.values():
        if not index.primary and index.columns == ((column, None),) and index.name == f"{prefix}_{column}":
            return index
    return None


def render_create(table: Table) -> list[str]:
    cls = _class_name(table.name)
    pk = table.primary_key.column_names if table.primary_key else ()
    lines = [f"class {cls}(BaseModel):"]
    for col in table.columns.values():
        field = render_field(col, index=_single_index(table, col.name), primary=pk == (col.name,))
        lines.append(f"    {col.name} = {field}")
    lines += ["", "    class Meta:", f'        table_name = "{table.name}"']
    if len(pk) > 1:
        lines.append(f"        primary_key = pw.CompositeKey({', '.join(repr(c) for c in pk)})")
    lines.append("")
    lines.append(f"migrator.create_model({cls})")
    for index in table.indexes.values():
        if index.primary or _single_index(table, index.column_names[0]) is index:
            continue
        lines.append(_render_add_index(table.name, index))
    return lines


def _render_add_index(table: str, index: Index) -> str:
    cols = ", ".join(repr(c) for c, _ in index.columns)
    extra = f", unique={index.unique}" if index.unique else ""
    prefixes = {c: n for c, n in index.columns if n}
    if prefixes:
        extra += f", prefixes={prefixes!r}"
    return f"migrator.add_index({table!r}, {cols}{extra}, name={index.name!r})"


def migration_body(declared: Snapshot, live: Snapshot, *, drop: bool) -> list[str]:
    """The ``migrate()`` body that turns the declared schema into the live one."""
    out: list[str] = []
    live_tables = {n: t for n, t in live.tables.items() if not n.startswith(OWN_PREFIX)}
    for name in sorted(set(live_tables) - set(declared.tables)):
        out += render_create(live_tables[name]) + [""]
    for name in sorted(set(declared.tables) - set(live_tables)):
        out.append(f"migrator.remove_model({name!r})  # drops the table and its data" if drop
                   else f"migrator.retire_model({name!r})  # kept, with its data")
    for name in sorted(set(declared.tables) & set(live_tables)):
        want, have = declared.tables[name], live_tables[name]
        for col in have.columns.values():
            if col.name not in want.columns:
                if not col.nullable and not col.auto_increment:
                    out.append(f"# TODO {name}.{col.name} is NOT NULL: add default=<value existing rows get>")
                out.append(f"migrator.add_fields({name!r}, {col.name}={render_field(col)})")
            elif not want.columns[col.name].same_definition(col):
                out.append(f"migrator.change_fields({name!r}, {col.name}={render_field(col)})"
                           f"  # was {want.columns[col.name].describe()}")
        gone = [c for c in want.columns if c not in have.columns]
        if gone:
            call = "remove_fields" if drop else "retire_fields"
            note = "drops the columns and their data" if drop else "kept, with their data"
            out.append(f"migrator.{call}({name!r}, {', '.join(repr(c) for c in gone)})  # {note}")
        for index in want.indexes.values():
            if index.name not in have.indexes and not index.primary:
                out.append(f"migrator.drop_index({name!r}, {index.name!r})")
        for index in have.indexes.values():
            if index.primary:
                continue
            old = want.indexes.get(index.name)
            if old is None or not old.same_definition(index):
                out.append(_render_add_index(name, index))
    return out


def write_migration(declared: Snapshot, live: Snapshot, *, version: str, drop: bool, directory: Path) -> Path:
    release = parse_release(version)
    newest = parse_release(KNOWN_RELEASES[-1])
    if not newest < release:
        raise ValueError(f"{version} is not newer than the newest known release {KNOWN_RELEASES[-1]}")
    existing = sorted(directory.glob("[0-9][0-9][0-9]_*.py"))
    number = int(existing[-1].name[:3]) + 1 if existing else 1
    path = directory / f"{number:03d}_{release.text.replace('.', '_')}.py"
    body = migration_body(declared, live, drop=drop) or ["pass  # no schema change"]
    text = (
        f'"""RAGFlow {release.text}: generated by `ragflow-migrate schema generate`. Review before use:\n'
        "defaults of NOT NULL columns, renames that appear as add + retire, indexes named by hand.\n"
        '"""\n\n'
        "import peewee as pw\n\n"
        "from ragflow_migrate.schema.fields import BaseModel, DataBaseModel, LongTextField  # noqa: F401\n\n\n"
        "def migrate(migrator, database, *, fake=False):\n"
        + "\n".join(("    " + line) if line else "" for line in body)
        + "\n\n\ndef rollback(migrator, database, *, fake=False):\n"
        '    raise NotImplementedError("downgrades are not supported: restore a backup instead")\n'
    )
    path.write_text(text, encoding="utf-8")
    return path
