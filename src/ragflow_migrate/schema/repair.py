"""Drift repair: bring a live schema that was changed by hand back to the target release's, losing nothing.

Planned (``pipeline.py``) when the history says every migration is applied, no data stage is
pending, and the live schema still differs from the target's: a table, column or index dropped,
a column narrowed, converted or made NOT NULL by hand. Each difference gets one decision:

* **repair**: statements that lose nothing, made by the operations the migrations use
  (``CreateTable``, ``AddColumn``, ``AddIndex``, ``MODIFY COLUMN``) and run by the same executor
  (INSTANT/INPLACE/COPY, short metadata-lock waits). A change that could lose data (narrowing,
  a conversion, NOT NULL) is a repair only when a count of the rows proves every value fits;
* **lossy**: the data do not fit (values longer than the target column, text that is not an
  integer, NULLs for a NOT NULL column) or the conversion could change values: listed and left.
  ``schema apply --drop`` runs it with strict mode off for that one statement, so values that do
  not fit are cut or converted: their data is lost;
* **left**: no statement is safe (the table's collation, a primary key's definition, a unique
  index over duplicate values, a column whose values a data stage converts): listed and left.

Recorded widenings (:mod:`.widenings`) are not drift, so they are never narrowed back. The live
schema is read again before each statement: a run killed between two statements carries on.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from .. import events
from ..db import connect as db
from ..db import dialect
from ..db.dialect import quote
from ..steps import RunContext, Step, StepPlan, StepResult
from . import chain, widenings
from .diff import Difference, compare, drift
from .executor import execute_statement
from .operations import AddColumn, AddIndex, CreateTable, Statement, render_column
from .snapshot import Column, Snapshot
from .steps import LEFT_KEY, deferred_columns

# Order of work: a column needs its table, an index its columns.
_PHASE = {"missing_table": 0, "missing_column": 1, "column": 2, "missing_index": 3, "index": 3}


@dataclasses.dataclass
class Decision:
    difference: Difference
    statements: list[Statement] = dataclasses.field(default_factory=list)
    lossy: str | None = None  # why the statements could lose data: only with --drop
    left: str | None = None  # why nothing is done

    def runs(self, drop: bool) -> bool:
        return bool(self.statements) and self.left is None and (self.lossy is None or drop)

    def describe(self) -> str:
        why = self.left or self.lossy
        return self.difference.describe() + (f": {why}" if why else "")


# --- what a column change risks (pure) ---------------------------------------------------------

_INT_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "bigint": 64}
_SIZED = re.compile(r"^(var)?char\((\d+)\)$")
_INT = re.compile(r"^(tinyint|smallint|mediumint|int|bigint)(\(\d+\))?( unsigned)?$")


def shape(column_type: str) -> tuple[str, Any]:
    """``("str", (chars or None, bytes))``, ``("int", (lo, hi))``, ``("float", bytes)`` or ``("other", type)``."""
    text = column_type.lower()
    sized = _SIZED.match(text)
    if sized:
        chars = int(sized.group(2))
        return "str", (chars, 4 * chars)  # utf8mb4: up to 4 bytes a character
    if text in dialect.TEXT_BYTES:
        return "str", (None, dialect.TEXT_BYTES[text])
    match = _INT.match(text)
    if match:
        bits = _INT_BITS[match.group(1)]
        if match.group(3):
            return "int", (0, 2 ** bits - 1)
        return "int", (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if text in ("float", "double"):
        return "float", 4 if text == "float" else 8
    return "other", text


def holds_every_value(live: str, want: str) -> bool:
    """Every value of a ``live`` column is kept as is by a ``want`` column (no data needed to know)."""
    if live == want:
        return True
    (lf, ls), (wf, ws) = shape(live), shape(want)
    if lf == wf == "str":
        if ws[0] is None:  # a TEXT type: its size is in bytes
            return ws[1] >= ls[1]
        # CHAR drops trailing spaces, so only a VARCHAR at least as long keeps every value
        return ls[0] is not None and ws[0] >= ls[0] and want.startswith("varchar")
    if lf == wf == "int":
        return ws[0] <= ls[0] and ws[1] >= ls[1]
    if lf == "int" and wf == "str":
        digits = max(len(str(ls[0])), len(str(ls[1])))
        return ws[0] is None or ws[0] >= digits
    if lf == wf == "float":
        return ws >= ls
    return False


def unfit_condition(column: str, live: Column, want: Column) -> str | None:
    """SQL that is true for a row whose value ``want`` cannot hold as it is; ``None`` when no
    count can tell (the conversion could change values whatever the data)."""
    col = quote(column)
    conditions = []
    if live.nullable and not want.nullable:
        conditions.append(f"{col} IS NULL")
    if not holds_every_value(live.type, want.type):
        (lf, _), (wf, ws) = shape(live.type), shape(want.type)
        if lf == wf == "str":
            chars, size = ws
            conditions.append(f"CHAR_LENGTH({col}) > {chars}" if chars is not None else f"LENGTH({col}) > {size}")
            if want.type.startswith("char("):  # CHAR drops trailing spaces
                conditions.append(f"{col} LIKE '% '")
        elif lf == wf == "int":
            conditions.append(f"{col} NOT BETWEEN {ws[0]} AND {ws[1]}")
        elif lf == "int" and wf == "str":
            conditions.append(f"CHAR_LENGTH(CAST({col} AS CHAR)) > {ws[0]}")
        elif lf == "str" and wf == "int":  # only the canonical decimal form converts back unchanged
            conditions.append(f"NOT ({col} REGEXP '^(0|-?[1-9][0-9]*)$') "
                              f"OR CAST({col} AS DECIMAL(65,0)) NOT BETWEEN {ws[0]} AND {ws[1]}")
        else:
            return None
    return " OR ".join(f"({c})" for c in conditions) if conditions else "FALSE"


def _charset(collation: str | None) -> str | None:
    return collation.split("_", 1)[0] if collation else None


# --- deciding ---------------------------------------------------------------------------------


def _statements(ctx: RunContext, op: Any, live: Snapshot, expected: Snapshot) -> list[Statement]:
    """``op``'s statements in the backend's SQL (``expected`` in the backend's normal form)."""
    return ctx.backend.operation_statements(op, live, expected)


def decide(ctx: RunContext, expected: Snapshot, live: Snapshot, difference: Difference,
           deferred: frozenset[tuple[str, str]], source: Snapshot | None = None) -> Decision:
    """What to do about one drift difference (reads data only to prove a change fits).
    ``expected`` is the target in the backend's normal form, ``source`` the same as the models
    declare it (MySQL's form: what operations are made of); the same snapshot on MySQL."""
    d, table = difference, difference.table
    source = expected if source is None else source
    want_table, declared_table = expected.tables.get(table), source.tables.get(table)
    if d.kind == "missing_table" and declared_table is not None:
        return Decision(d, _statements(ctx, CreateTable(declared_table), live, expected))
    if d.kind == "missing_column" and declared_table is not None:
        column = declared_table.columns[d.name or ""]
        return Decision(d, _statements(ctx, AddColumn(table, column, fill=fill_for(table, column)), live, expected))
    if d.kind == "column" and want_table is not None:
        if getattr(ctx.backend, "transactional_ddl", False):
            return Decision(d, left=f"no automatic repair of a column's definition on {ctx.backend.label} in this "
                            "release; `schema diff` shows the difference")
        return _decide_column(ctx, live, d, want_table.columns[d.name or ""], deferred)
    if d.kind in ("missing_index", "index") and want_table is not None and declared_table is not None:
        index = declared_table.indexes[d.name or ""]
        if d.kind == "index" and index.primary:
            return Decision(d, left="the primary key differs; only a change by hand can say which rows to keep")
        if index.unique and all(live.column(table, c) is not None for c in index.column_names):
            duplicates = _duplicates(ctx, table, index.columns)
            if duplicates:
                return Decision(d, left=f"{duplicates} duplicate key value(s) in ({', '.join(index.column_names)}); "
                                "remove the duplicates, then run again")
        return Decision(d, _statements(ctx, AddIndex(table, index), live, expected))
    return Decision(d, left="change it by hand (a table's collation converts every text column)"
                    if d.kind == "table_collation" else "no repair for this kind of difference")


def _decide_column(ctx: RunContext, live: Snapshot, d: Difference, want: Column,
                   deferred: frozenset[tuple[str, str]]) -> Decision:
    table, name = d.table, d.name or ""
    if (table, name) in deferred:
        return Decision(d, left="a data stage converts this column's values; a type change would not")
    have = live.column(table, name)
    live_table = live.table(table)
    if have is None or live_table is None:
        return Decision(d, left="the column is gone")
    statement = Statement(f"ALTER TABLE {quote(table)} MODIFY COLUMN {render_column(want)}", table, "modify_column")
    from_cs, to_cs = _charset(have.collation or live_table.collation), _charset(want.collation or live_table.collation)
    if from_cs != to_cs and to_cs != dialect.CHARSET:
        return Decision(d, [statement], lossy=f"converting {from_cs} text to {to_cs} could change characters")
    condition = unfit_condition(name, have, want)
    if condition is None:
        return Decision(d, [statement], lossy=f"converting {have.type} to {want.type} could change values")
    if condition != "FALSE":
        count = int(db.query_one(ctx.conn, f"SELECT COUNT(*) FROM {quote(table)} WHERE {condition}")[0])
        if count:
            return Decision(d, [statement], lossy=f"{count} row(s) hold a value {want.describe()} cannot keep "
                            "as it is")
    return Decision(d, [statement])


def _duplicates(ctx: RunContext, table: str, columns: tuple[tuple[str, int | None], ...]) -> int:
    quote = ctx.backend.quote
    parts = [f"LEFT({quote(c)}, {n})" if n else quote(c) for c, n in columns]
    not_null = " AND ".join(f"{quote(c)} IS NOT NULL" for c, _ in columns)
    row = db.query_one(ctx.conn, f"SELECT COUNT(*) FROM (SELECT 1 FROM {quote(table)} WHERE {not_null} "
                                 f"GROUP BY {', '.join(parts)} HAVING COUNT(*) > 1) AS d")
    return int(row[0])


def fill_for(table: str, column: Column) -> Any:
    """The value existing rows get in a re-added NOT NULL column: the one its migration filled
    in, else the type's zero (what MySQL itself puts there)."""
    if column.nullable:
        return None
    for migration in reversed(chain.replay()):
        for op in migration.operations:
            if isinstance(op, AddColumn) and op.table == table and op.column.name == column.name \
                    and op.fill is not None:
                return op.fill
    family = shape(column.type)[0]
    return "" if family == "str" else 0 if family in ("int", "float") else None


# --- the step ---------------------------------------------------------------------------------


class RepairStep(Step):
    """Repair the drift of a database whose migrations are all applied (see the module's docstring)."""

    kind = "schema"

    def __init__(self, target: str, *, drop: bool = False) -> None:
        self.target = target
        self.drop = drop
        self.name = "schema repair"
        self.release = target

    def _differences(self, ctx: RunContext, expected: Snapshot, live: Snapshot,
                     recorded: dict[tuple[str, str], widenings.Widening]) -> list[Difference]:
        found = drift(compare(expected, live, widened=recorded))
        return sorted(found, key=lambda d: (_PHASE.get(d.kind, 9), d.table, d.name or ""))

    def plan(self, ctx: RunContext) -> StepPlan:
        source, live, deferred = chain.install_schema(self.target), self._live(ctx), deferred_columns(self.target)
        expected = ctx.declared(source)
        decisions = [decide(ctx, expected, live, d, deferred, source)
                     for d in self._differences(ctx, expected, live, widenings.recorded(ctx.conn))]
        sql = [s.render() for d in decisions if d.runs(self.drop) for s in d.statements]
        notes = [("forced, data lost: " if d.runs(self.drop) else "left: ") + d.describe()
                 for d in decisions if d.left or d.lossy]
        repaired = sum(d.runs(self.drop) for d in decisions)
        return StepPlan(self.name, f"repair {repaired} of {len(decisions)} difference(s) from RAGFlow "
                        f"{self.target}'s schema", sql=sql, notes=notes)

    def apply(self, ctx: RunContext) -> StepResult:
        source, deferred = chain.install_schema(self.target), deferred_columns(self.target)
        expected = ctx.declared(source)
        recorded = widenings.recorded(ctx.conn)
        seen: set[tuple[str, str, str | None]] = set()
        repaired: list[str] = []
        left: list[Decision] = []
        while True:
            live = self._live(ctx)  # again before each repair: a kill between two carries on
            todo = [d for d in self._differences(ctx, expected, live, recorded)
                    if (d.kind, d.table, d.name) not in seen]
            if not todo:
                break
            seen.add((todo[0].kind, todo[0].table, todo[0].name))
            decision = decide(ctx, expected, live, todo[0], deferred, source)
            if not decision.runs(self.drop):
                left.append(decision)
                continue
            self._run(ctx, decision)
            repaired.append(decision.difference.describe())
        if left:
            ctx.extras[LEFT_KEY] = left
            ctx.notice(self.name, "left as it is (a repair would lose data, or none is safe); "
                       "`ragflow-migrate schema apply --drop` forces the lossy ones", count=len(left),
                       sample=[d.describe() for d in left[:10]])
        return StepResult(changes=len(repaired), details={"repaired": repaired,
                                                          "left": [d.describe() for d in left]})

    def _run(self, ctx: RunContext, decision: Decision) -> None:
        if decision.lossy:
            ctx.notice(self.name, f"forced by --drop, data lost: {decision.describe()}")
        else:
            ctx.log.info(events.STEP_NOTICE, step=self.name, message=f"repairing {decision.difference.describe()}")
        if getattr(ctx.backend, "transactional_ddl", False):
            ctx.backend.run_statements(ctx, self.name, decision.statements)  # one transaction
            return
        for statement in decision.statements:
            ctx.checkpoint()
            if decision.lossy:
                _without_strict_mode(ctx, lambda s=statement: execute_statement(ctx, self.name, s))
            else:
                execute_statement(ctx, self.name, statement)

    def _live(self, ctx: RunContext) -> Snapshot:
        return ctx.live_schema()


def _without_strict_mode(ctx: RunContext, run: Any) -> None:
    """--drop asked for it: a value that does not fit is cut or converted (a warning), not an error."""
    lenient = ",".join(m for m in dialect.SQL_MODE.split(",") if not m.startswith("STRICT_"))
    db.execute(ctx.conn, f"SET SESSION sql_mode = '{lenient}'")
    try:
        run()
    finally:
        db.execute(ctx.conn, f"SET SESSION sql_mode = '{dialect.SQL_MODE}'")
