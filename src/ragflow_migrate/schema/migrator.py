"""The migrator the migration files talk to: peewee-migrate's API, with operations that check
the live schema (``operations.py``) instead of running blindly.

A migration file is a plain peewee-migrate migration (``migrate(migrator, database, fake)``)::

    def migrate(migrator, database, *, fake=False):
        migrator.add_fields("tenant_llm", status=pw.CharField(max_length=1, default="1", index=True))
        migrator.change_fields("tenant_llm", api_key=pw.TextField(null=True))

Calling it records operations and updates two pictures of the release: ``migrator.orm`` (the
peewee models, as peewee-migrate keeps them) and ``migrator.expected`` (the normalised schema the
release declares). Nothing touches the database until the runner executes the operations.
"""

from __future__ import annotations

from typing import Any

import peewee as pw

from .dataops import DeduplicateUserEmails, RenameValues
from .operations import (
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
    SurrogatePrimaryKey,
)
from .pwm import Migrator
from .snapshot import Column, Index, Snapshot, column_from_field, indexes_from_model, table_from_model


class SafeMigrator(Migrator):
    def __init__(self, database: pw.Database | None = None, expected: Snapshot | None = None) -> None:
        super().__init__(database if database is not None else pw.MySQLDatabase(None))
        self.expected = expected if expected is not None else Snapshot()
        self.operations: list[Operation] = []

    # -- bookkeeping -----------------------------------------------------------------------

    def _record(self, op: Operation) -> None:
        op.apply_to(self.expected)
        self.operations.append(op)

    def take_operations(self) -> list[Operation]:
        ops, self.operations = self.operations, []
        return ops

    def __call__(self) -> None:  # peewee-migrate's own executor: never used here
        raise RuntimeError("operations are executed by ragflow_migrate.schema.apply, not by the migrator")

    def _model(self, model: str | type[pw.Model]) -> type[pw.Model]:
        return self.__get_model__(model)

    # -- tables ----------------------------------------------------------------------------

    def create_model(self, model: type[pw.Model]) -> type[pw.Model]:
        self.orm.add(model)
        self._record(CreateTable(table_from_model(model)))
        return model

    def retire_model(self, model: str | type[pw.Model]) -> None:
        """The release stops declaring a table; the table and its data stay."""
        model = self._model(model)
        self.orm.remove(model)
        self._record(RetireTable(model._meta.table_name))

    def remove_model(self, model: str | type[pw.Model], *, cascade: bool = True) -> None:
        """Drop a table and its data. Only `schema generate --drop` writes this."""
        model = self._model(model)
        self.orm.remove(model)
        self._record(DropTable(model._meta.table_name))

    # -- columns ---------------------------------------------------------------------------

    def add_fields(self, model: str | type[pw.Model], *, index_names: dict[str, str] | None = None,
                   **fields: pw.Field) -> type[pw.Model]:
        """Add columns; a NOT NULL column's ``default`` fills the existing rows.

        An indexed field gets peewee's index name unless ``index_names`` gives another
        (RAGFlow's upgrade path sometimes names them after the table).
        """
        model = self._model(model)
        meta = model._meta
        for name, field in fields.items():
            meta.add_field(name, field)
            fill = field.default() if callable(field.default) else field.default
            self._record(AddColumn(meta.table_name, column_from_field(field), fill))
            if field.index or field.unique:
                generated = pw.ModelIndex(model, (field,), unique=field.unique)._name
                name_ = (index_names or {}).get(name, generated)
                self._record(AddIndex(meta.table_name, Index(name_, bool(field.unique), ((field.column_name, None),))))
        return model

    def change_fields(self, model: str | type[pw.Model], *, before: dict[str, list[pw.Field]] | None = None,
                      deferred_to: str | None = None, **fields: pw.Field) -> type[pw.Model]:
        """Change column definitions. The change applies to a live column that matches the
        previous declaration (or one of ``before[name]``, states RAGFlow's upgrades leave).
        ``deferred_to`` names the data stage that converts the column instead (its values
        change meaning); the schema step then only declares the new definition."""
        model = self._model(model)
        meta = model._meta
        for name, field in fields.items():
            old = self.expected.column(meta.table_name, meta.fields[name].column_name)
            meta.add_field(name, field)
            prior: list[Column] = [old] if old is not None else []
            prior += [column_from_field(_bind(model, name, f)) for f in (before or {}).get(name, [])]
            self._record(ChangeColumn(meta.table_name, column_from_field(field), tuple(prior), deferred_to))
        return model

    def rename_field(self, model: str | type[pw.Model], old_name: str, new_name: str) -> type[pw.Model]:
        model = self._model(model)
        meta = model._meta
        field = meta.fields[old_name]
        meta.remove_field(old_name)
        field.name = field.column_name = new_name
        meta.add_field(new_name, field)
        self._record(RenameColumn(meta.table_name, old_name, column_from_field(field)))
        return model

    def retire_fields(self, model: str | type[pw.Model], *names: str) -> type[pw.Model]:
        """The release stops declaring columns; they and their data stay."""
        model = self._model(model)
        meta = model._meta
        for name in names:
            meta.remove_field(name)
            self._record(RetireColumn(meta.table_name, name))
        return model

    def remove_fields(self, model: str | type[pw.Model], *names: str, **_: Any) -> type[pw.Model]:
        """Drop columns and their data. Only `schema generate --drop` writes this."""
        model = self._model(model)
        meta = model._meta
        for name in names:
            meta.remove_field(name)
            self._record(DropColumn(meta.table_name, name))
        return model

    # -- indexes ---------------------------------------------------------------------------

    def add_index(self, model: str | type[pw.Model], *columns: str, unique: bool = False,
                  name: str | None = None, prefixes: dict[str, int] | None = None) -> type[pw.Model]:
        model = self._model(model)
        meta = model._meta
        cols = tuple((meta.fields[c].column_name if c in meta.fields else c, (prefixes or {}).get(c))
                     for c in columns)
        if name is None:
            fields_ = [meta.fields[c] for c in columns]
            name = pw.ModelIndex(model, fields_, unique=unique)._name
        self._record(AddIndex(meta.table_name, Index(name, unique, cols)))
        return model

    def rename_index(self, model: str | type[pw.Model], old: str, *columns: str, unique: bool = False) -> type[pw.Model]:
        """Rename index ``old`` to the name peewee gives an index on ``columns``."""
        model = self._model(model)
        meta = model._meta
        fields_ = [meta.fields[c] for c in columns]
        index = Index(pw.ModelIndex(model, fields_, unique=unique)._name, unique,
                      tuple((f.column_name, None) for f in fields_))
        self._record(RenameIndex(meta.table_name, old, index))
        return model

    def drop_index(self, model: str | type[pw.Model], name: str) -> type[pw.Model]:  # type: ignore[override]
        model = self._model(model)
        self._record(DropIndex(model._meta.table_name, name))
        return model

    # -- RAGFlow-specific operations -------------------------------------------------------

    def surrogate_primary_key(self, model: str | type[pw.Model], column: str, unique_name: str) -> type[pw.Model]:
        model = self._model(model)
        meta = model._meta
        old = self.expected.tables[meta.table_name].primary_key
        field = pw.AutoField()
        meta.add_field(column, field)
        meta.primary_key = field
        self._record(SurrogatePrimaryKey(meta.table_name, column_from_field(field),
                                         Index(unique_name, True, old.columns)))
        return model

    def rename_values(self, table: str, column: str, renames: dict[str, str]) -> None:
        self._record(RenameValues(table, column, tuple(renames.items())))

    def deduplicate_user_emails(self) -> None:
        self._record(DeduplicateUserEmails())


def _bind(model: type[pw.Model], name: str, field: pw.Field) -> pw.Field:
    field.model, field.name = model, name
    field.column_name = field.column_name or name
    return field


def declared_indexes(model: type[pw.Model]) -> list[Index]:
    return indexes_from_model(model)
