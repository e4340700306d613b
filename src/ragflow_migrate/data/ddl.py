"""RAGFlow's own definitions of the model tables, for the two places that create them.

* ``--create-table-only`` creates a missing ``tenant_model_provider``, ``tenant_model_instance``
  or ``tenant_model`` exactly as RAGFlow's v0.26 startup does (never RAGFlow's script DDL, whose
  defaults, index names and collation differ);
* the merge builds the new ``tenant_model`` (INT ``model_type``) as fresh v0.27.0 defines it,
  in the collation of ``tenant_model_provider`` (FIX D1), and swaps it in.

:func:`deviations` compares a live ``tenant_model`` with that definition (columns, indexes,
collation), to recognise a table RAGFlow's own merge built (D1) that needs rebuilding.
"""

from __future__ import annotations

from typing import Any

from . import sqlkit
from .sqlkit import Meta

_TIMES = ("  `create_time` BIGINT NULL,\n  `create_date` DATETIME NULL,\n"
          "  `update_time` BIGINT NULL,\n  `update_date` DATETIME NULL,\n")


def _time_keys(prefix: str) -> str:
    return "".join(f"  KEY `{prefix}_{c}` (`{c}`),\n" for c in ("create_time", "create_date", "update_time",
                                                                    "update_date"))


def _table(name: str, body: str, collation: str | None) -> str:
    tail = " DEFAULT CHARSET=utf8mb4" + (f" COLLATE={collation}" if collation else "")
    sqlkit.collate(collation or "utf8mb4_bin")  # validates the name
    return f"CREATE TABLE `{name}` (\n{body}\n) ENGINE=InnoDB{tail}"


def provider_table(collation: str | None) -> str:
    body = ("  `id` VARCHAR(32) NOT NULL,\n" + _TIMES
            + "  `provider_name` VARCHAR(128) NOT NULL,\n  `tenant_id` VARCHAR(32) NOT NULL,\n"
            "  PRIMARY KEY (`id`),\n"
            "  UNIQUE KEY `tenantmodelprovider_tenant_id_provider_name` (`tenant_id`, `provider_name`),\n"
            + _time_keys("tenantmodelprovider") + "  KEY `tenantmodelprovider_tenant_id` (`tenant_id`)")
    return _table("tenant_model_provider", body, collation)


def instance_table(collation: str | None) -> str:
    body = ("  `id` VARCHAR(32) NOT NULL,\n" + _TIMES
            + "  `instance_name` VARCHAR(128) NOT NULL,\n  `provider_id` VARCHAR(32) NOT NULL,\n"
            "  `api_key` VARCHAR(512) NOT NULL,\n  `status` VARCHAR(32) NOT NULL,\n"
            "  `extra` VARCHAR(512) NOT NULL,\n  PRIMARY KEY (`id`),\n" + _time_keys("tenantmodelinstance").rstrip(",\n"))
    return _table("tenant_model_instance", body, collation)


#: Column types of ``tenant_model`` that ``--widen-columns`` may have widened (a rebuild keeps them).
MODEL_WIDENABLE = {"model_name": "varchar(128)", "extra": "varchar(1024)"}


def model_table(name: str, collation: str | None, *, int_type: bool, indexes: bool = True,
                widened: dict[str, str] | None = None) -> str:
    """``indexes=False``: the primary key only; :func:`model_indexes` adds the others afterwards (a
    sorted index build after a bulk fill is much faster than maintaining them row by row).
    ``widened``: column → type for the columns ``--widen-columns`` widened (:data:`MODEL_WIDENABLE`)."""
    types = {**MODEL_WIDENABLE, **{c: t for c, t in (widened or {}).items() if c in MODEL_WIDENABLE}}
    body = ("  `id` VARCHAR(32) NOT NULL,\n" + _TIMES
            + f"  `model_name` {types['model_name'].upper()} NULL,\n  `provider_id` VARCHAR(32) NOT NULL,\n"
            "  `instance_id` VARCHAR(32) NOT NULL,\n"
            + ("  `model_type` INT NOT NULL,\n" if int_type else "  `model_type` VARCHAR(32) NOT NULL,\n")
            + f"  `status` VARCHAR(32) NOT NULL,\n  `extra` {types['extra'].upper()} NOT NULL,\n  PRIMARY KEY (`id`)")
    if indexes:
        body += ",\n" + ",\n".join("  " + k for k in _model_keys(int_type))
    return _table(name, body, collation)


def _model_keys(int_type: bool) -> list[str]:
    keys = [f"KEY `tenantmodel_{c}` (`{c}`)" for c in ("create_time", "create_date", "update_time", "update_date",
                                                       "instance_id")]
    return keys + (["KEY `tenantmodel_model_type` (`model_type`)"] if int_type else [])


def model_indexes(name: str, *, int_type: bool) -> str:
    """The secondary indexes of ``tenant_model``, in RAGFlow's order, as one ALTER."""
    return f"ALTER TABLE `{name}` " + ", ".join("ADD " + k for k in _model_keys(int_type))


def create_missing(ctx: Any, meta: Meta, tables: tuple[str, ...]) -> list[str]:
    """``--create-table-only``: create the missing tables in the collation of RAGFlow's existing tables
    (the database's default when there are none), so that joins with them never mix collations."""
    db_collation = (meta.table_collation("tenant_llm") or meta.table_collation("tenant")
                    or sqlkit.scalar(ctx.conn, "SELECT @@collation_database"))
    created = []
    for table in tables:
        if meta.has_table(table):
            continue
        if table == "tenant_model_provider":
            sql = provider_table(db_collation)
        elif table == "tenant_model_instance":
            sql = instance_table(db_collation)
        elif table == "tenant_model":
            sql = model_table("tenant_model", db_collation, int_type=False)
        else:
            continue
        sqlkit.logged(ctx, "data --create-table-only", sql, level="info")
        created.append(table)
    meta.forget()
    return created


# --- the v0.27.0 tenant_model, for recognising a table that needs rebuilding ---------------------

EXPECTED_COLUMNS: tuple[tuple[str, str, int | None, bool], ...] = (
    ("id", "varchar", 32, False),
    ("create_time", "bigint", None, True),
    ("create_date", "datetime", None, True),
    ("update_time", "bigint", None, True),
    ("update_date", "datetime", None, True),
    ("model_name", "varchar", 128, True),
    ("provider_id", "varchar", 32, False),
    ("instance_id", "varchar", 32, False),
    ("model_type", "int", None, False),
    ("status", "varchar", 32, False),
    ("extra", "varchar", 1024, False),
)
EXPECTED_INDEXES: dict[str, tuple[bool, tuple[str, ...]]] = {
    "PRIMARY": (True, ("id",)),
    "tenantmodel_create_time": (False, ("create_time",)),
    "tenantmodel_create_date": (False, ("create_date",)),
    "tenantmodel_update_time": (False, ("update_time",)),
    "tenantmodel_update_date": (False, ("update_date",)),
    "tenantmodel_instance_id": (False, ("instance_id",)),
    "tenantmodel_model_type": (False, ("model_type",)),
}


def deviations(ctx: Any, meta: Meta, table: str, collation: str | None) -> list[str]:
    """How a live INT ``tenant_model`` differs from fresh v0.27.0 (empty list: it does not)."""
    found: list[str] = []
    if collation and meta.table_collation(table) != collation:
        found.append(f"collation {meta.table_collation(table)} (expected {collation}, as tenant_model_provider)")
    rows = sqlkit.query(ctx.conn, "SELECT column_name, data_type, character_maximum_length, is_nullable, "
                        "column_default, collation_name FROM information_schema.columns WHERE table_schema = "
                        "DATABASE() AND table_name = %s ORDER BY ordinal_position", (table,))
    live = [(str(r[0]), str(r[1]).lower(), int(r[2]) if r[2] is not None else None, r[3] == "YES") for r in rows]
    # a column --widen-columns widened is as expected when the record says so (schema/widenings.py)
    from ..schema import widenings

    recorded = widenings.recorded(ctx.conn)
    live = [next((e for e in EXPECTED_COLUMNS if e[0] == c[0]), c)
            if (table, c[0]) in recorded and c[0] in MODEL_WIDENABLE else c for c in live]
    if live != list(EXPECTED_COLUMNS):
        found.append("columns differ from v0.27.0")
    for r in rows:
        default = r[4]
        if default is not None and str(default).upper() != "NULL":
            found.append(f"column {r[0]} has a default")
        if r[5] and collation and r[5] != collation:
            found.append(f"column {r[0]} collation {r[5]}")
    stats = sqlkit.query(ctx.conn, "SELECT index_name, non_unique, column_name FROM information_schema.statistics "
                         "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY index_name, seq_in_index",
                         (table,))
    indexes: dict[str, tuple[bool, tuple[str, ...]]] = {}
    for name, non_unique, column in stats:
        unique, cols = indexes.get(str(name), (not int(non_unique), ()))
        indexes[str(name)] = (unique, (*cols, str(column)))
    if indexes != EXPECTED_INDEXES:
        found.append("indexes differ from v0.27.0: " + ", ".join(sorted(set(indexes) ^ set(EXPECTED_INDEXES)))
                     if set(indexes) != set(EXPECTED_INDEXES) else "index columns differ from v0.27.0")
    return found
