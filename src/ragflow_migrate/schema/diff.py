"""Compare a declared schema with a live one.

Differences are of two kinds:

* **drift**: something the release declares is missing or different (a table, a column's type,
  length, nullability, default or collation, an index's uniqueness, columns or prefixes);
* **extra**: something the release does not declare: tables and columns of earlier releases
  (kept: they may hold data), or added by hand. Extras are reported, never fatal; ``--drop``
  removes them;
* **widened**: a column the operator had widened (``--widen-columns``, recorded in
  :mod:`.widenings`) and that still has its recorded type: a recorded deviation, not drift
  (``--strict`` counts it, like extras).

Column order is not compared. The tool's own tables (``ragflow_migrate_*``) are left out;
backups it made (``ragflow_migrate_bak_*``) are listed as ``backup``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .operations import common_collation
from .snapshot import Column, Snapshot
from .widenings import Widening, holds

OWN_PREFIX = "ragflow_migrate_"
BACKUP_PREFIX = "ragflow_migrate_bak_"


@dataclasses.dataclass(frozen=True)
class Difference:
    kind: str  # missing_table | extra_table | backup_table | missing_column | extra_column | column
    #            | missing_index | extra_index | index | table_collation | widened
    table: str
    name: str | None = None  # column or index
    expected: str | None = None
    actual: str | None = None

    @property
    def is_drift(self) -> bool:
        return self.kind not in ("extra_table", "extra_column", "extra_index", "backup_table", "widened")

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["drift"] = self.is_drift
        return data

    def describe(self) -> str:
        where = f"{self.table}.{self.name}" if self.name else self.table
        if self.kind == "widened":
            return f"widened column: {where} (declared {self.expected}, widened to {self.actual} by --widen-columns)"
        text = f"{self.kind.replace('_', ' ')}: {where}"
        if self.expected or self.actual:
            text += f" (expected {self.expected or 'nothing'}, found {self.actual or 'nothing'})"
        return text


def compare(expected: Snapshot, live: Snapshot, *, skip_columns: frozenset[tuple[str, str]] = frozenset(),
            widened: dict[tuple[str, str], Widening] | None = None) -> list[Difference]:
    """Differences between the declared schema and the live one, drift first. ``widened``: the
    recorded widenings (:func:`.widenings.recorded`); a column that still holds one is ``widened``."""
    widened = widened or {}
    out: list[Difference] = []
    for name in sorted(live.tables):
        if name.startswith(BACKUP_PREFIX):
            out.append(Difference("backup_table", name))
        elif name not in expected.tables and not name.startswith(OWN_PREFIX):
            out.append(Difference("extra_table", name))
    declared_collation = common_collation(live, expected) or live.collation
    for name, want in sorted(expected.tables.items()):
        have = live.tables.get(name)
        if have is None:
            out.append(Difference("missing_table", name))
            continue
        if declared_collation and have.collation and have.collation != declared_collation:
            out.append(Difference("table_collation", name, None, declared_collation, have.collation))
        for col_name, col in want.columns.items():
            live_col = have.columns.get(col_name)
            if live_col is None:
                out.append(Difference("missing_column", name, col_name, col.describe()))
            elif (name, col_name) not in skip_columns and not live_col.same_definition(col):
                kind = "widened" if _holds_widening(widened.get((name, col_name)), col, live_col) else "column"
                out.append(Difference(kind, name, col_name, col.describe(), live_col.describe()))
        for col_name, col in have.columns.items():
            if col_name not in want.columns:
                out.append(Difference("extra_column", name, col_name, None, col.describe()))
        for idx_name, idx in want.indexes.items():
            live_idx = have.indexes.get(idx_name)
            if live_idx is None:
                out.append(Difference("missing_index", name, idx_name, idx.describe()))
            elif not live_idx.same_definition(idx):
                if any((name, c) in skip_columns for c in idx.column_names):
                    continue
                out.append(Difference("index", name, idx_name, idx.describe(), live_idx.describe()))
        for idx_name, idx in have.indexes.items():
            if idx_name not in want.indexes:
                out.append(Difference("extra_index", name, idx_name, None, idx.describe()))
    out.sort(key=lambda d: (not d.is_drift, d.table, d.kind, d.name or ""))
    return out


def _holds_widening(widening: Widening | None, declared: Column, live: Column) -> bool:
    # Only the type may differ: a widened column made NOT NULL by hand is still drift.
    return widening is not None and holds(widening, live.type) and live.same_definition(
        dataclasses.replace(declared, type=live.type))


def drift(differences: list[Difference]) -> list[Difference]:
    return [d for d in differences if d.is_drift]


def render(differences: list[Difference]) -> str:
    if not differences:
        return "in sync\n"
    lines = []
    for d in differences:
        label = "DRIFT" if d.is_drift else ("note" if d.kind == "widened" else "extra")
        lines.append(f"{label:<6} " + d.describe())
    return "\n".join(lines) + "\n"
