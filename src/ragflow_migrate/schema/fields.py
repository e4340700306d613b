"""Building blocks of the model definitions: base classes and field types RAGFlow's schema uses.

Index names follow peewee's rule for these models (``<modelclass lowercased>_<columns>``), which
is how RAGFlow's own ``create_table`` names them; model class names are chosen accordingly
(``TenantLLM`` → ``tenantllm_…``). No field has a server-side default: RAGFlow keeps defaults in
Python, and so do these models (a ``default`` on a field is the value a migration fills into
existing rows when it adds a NOT NULL column).
"""

from __future__ import annotations

import peewee as pw


class LongTextField(pw.TextField):
    field_type = "LONGTEXT"


class BaseModel(pw.Model):
    class Meta:
        legacy_table_names = True  # index names from the class name, as RAGFlow's models


class DataBaseModel(BaseModel):
    """RAGFlow's common columns: creation and update time (ms) and date, each indexed."""

    create_time = pw.BigIntegerField(null=True, index=True)
    create_date = pw.DateTimeField(null=True, index=True)
    update_time = pw.BigIntegerField(null=True, index=True)
    update_date = pw.DateTimeField(null=True, index=True)


def prefix_index(column: str, length: int) -> pw.SQL:
    """An index part on the first ``length`` characters of ``column``.

    RAGFlow's releases up to v0.26.4 index VARCHAR(2048) columns; MySQL can only do that with a
    prefix (768 characters of utf8mb4 = 3072 bytes). RAGFlow's non-strict session let MySQL pick
    the prefix silently; in a strict session it must be explicit.
    """
    return pw.SQL(f"`{column}`({int(length)})")


def add_named_index(model: type[pw.Model], *parts, name: str, unique: bool = False) -> None:
    """Declare an index whose name peewee would not generate (e.g. ``chat_channel_dialog_id``)."""
    model._meta.indexes.append(pw.ModelIndex(model, parts, unique=unique, name=name))
