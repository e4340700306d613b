"""What every data stage shares: the Step contract, our stage record, the marker, dry runs.

A stage is split in two:

* ``analyse(ctx, work)``: reads the database (and fills session-scoped staging tables), and
  records in ``work`` what would change: counts, sample rows, and rows that cannot be migrated
  without loss (``reject``). It never writes a real table.
* ``write(ctx, work)``: does the work in batches, one transaction each, ``ctx.checkpoint()``
  between them.

``plan()`` runs ``analyse`` only (a dry run changes nothing, not even DDL: staging tables are
temporary and dropped at the end), so it reports exactly the counts ``apply()`` then applies.
``apply()`` records the stage as started, runs ``analyse``, stops with :class:`DataRejectedError`
before anything is written if a value does not fit, runs ``write``, records the stage as
finished and, once every stage of its gate is finished, writes RAGFlow's marker.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from ...errors import ConfigError, DataRejectedError, StepFailedError
from ...steps import RunContext, Step, StepPlan, StepResult
from .. import catalog as catalog_module
from .. import gates, marker, sqlkit, staging, state, widen
from ..sqlkit import Meta

SAMPLE_ROWS = 5


@dataclasses.dataclass
class Rejection:
    table: str
    column: str
    limit: int | None
    count: int
    rows: list[Any]
    reason: str
    #: Longest value in characters and bytes: set where ``--widen-columns`` may widen the column.
    needed: tuple[int, int] | None = None


#: What an operator reads when a value fits no lossless form of its column.
WIDEN_HINT = ("to keep every value byte for byte, let the tool widen exactly these columns: --widen-columns "
              "(RAGFLOW_MIGRATE_WIDEN_COLUMNS=true; chart value migrate.widenColumns=true); the widening is "
              "recorded and reported by `schema diff` and `status`")


@dataclasses.dataclass
class Work:
    """What a stage found: counts (also what ``apply`` reports), samples, notes, rejections."""

    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    samples: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    rejections: list[Rejection] = dataclasses.field(default_factory=list)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)  # stage-private, for write()
    executing: bool = False  # analyse() runs for apply(), not for a dry run

    def reject(self, table: str, column: str, limit: int | None, count: int, rows: list[Any],
               reason: str = "too long for the column", *, needed: tuple[int, int] | None = None) -> None:
        if count:
            self.rejections.append(Rejection(table, column, limit, count, rows, reason, needed))


#: Ordinals per key in :meth:`IdSequence.sql_keyed` (catalogue rows, here).
ORDINALS = 2**20


class IdSequence:
    """Ids of new rows: 32 lower-case hex characters, like RAGFlow's ``uuid1().hex``, but increasing.

    A prefix (the time in ms, 12 hex, and 16 random bits) and a 16-hex counter: the rows one stage
    writes land at the end of the primary key in the order they are written, instead of at random
    places, which keeps large inserts (and the merge that reads them back) sequential.
    """

    def __init__(self) -> None:
        self.prefix = f"{int(time.time() * 1000):012x}{secrets.randbits(16):04x}"
        self.next = 0

    @staticmethod
    def sql(order_by: str) -> str:
        """The id expression of an INSERT … SELECT; its two parameters are :meth:`args`."""
        return f"LOWER(CONCAT(%s, LPAD(HEX(%s + ROW_NUMBER() OVER (ORDER BY {order_by})), 16, '0')))"

    @staticmethod
    def sql_keyed(seq: str, ordinal: str) -> str:
        """Like :meth:`sql` for rows keyed by a number and an ordinal below 2**20 (no window, no sort
        needed): unique while those pairs are, increasing in their order, the same on every page."""
        return f"LOWER(CONCAT(%s, LPAD(HEX(%s + {seq} * {ORDINALS} + {ordinal}), 16, '0')))"

    def args(self) -> tuple[str, int]:
        return (self.prefix, self.next)

    def advance(self, rows: int) -> None:
        self.next += rows


class Clock:
    """One timestamp per stage (spec §2): ``*_time`` in ms and ``*_date`` in the session's UTC."""

    def __init__(self) -> None:
        self.s = int(time.time())
        self.ms = self.s * 1000
        self.date = datetime.fromtimestamp(self.s, tz=UTC).replace(tzinfo=None)


class DataStage(Step):
    kind = "data"
    stage: str = ""
    gate: str = ""
    description: str = ""
    #: Tables this stage needs to exist before it can run (else it fails with a clear hint).
    requires: tuple[str, ...] = ()
    #: Tables ``--create-table-only`` creates when missing (with RAGFlow's own definition).
    creates: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.name = f"data {self.stage}"
        self.release = self.gate

    # -- the Step contract ------------------------------------------------------------------------

    def plan(self, ctx: RunContext) -> StepPlan:
        meta = self.meta(ctx)
        work = Work()
        try:
            if self._ready(meta, work):
                self.analyse(ctx, meta, work)
        except BaseException:
            self.drop_session_tables(ctx)
            raise
        finally:
            self.cleanup(ctx)
        notes = list(work.notes)
        for r in work.rejections:
            notes.append(f"REJECTED: {r.count} row(s) cannot be written to {r.table}.{r.column}"
                         f"{f' (limit {r.limit})' if r.limit else ''}: {r.reason}; rows {r.rows}")
        return StepPlan(step=self.name, summary=self.description, counts=dict(work.counts),
                        samples=work.samples[:SAMPLE_ROWS], notes=notes)

    def apply(self, ctx: RunContext) -> StepResult:
        started = time.monotonic()
        state.mark_started(ctx, self.stage, self.gate, ctx.run_id)
        meta = self.meta(ctx)
        work = Work(executing=True)
        try:
            if not self._ready(meta, work, strict=True):
                result = StepResult(details={"skipped": "; ".join(work.notes)})
            else:
                self.analyse(ctx, meta, work)
                widened = self.settle_rejections(ctx, meta, work)
                if widened:  # the stage's session tables took the old definitions: analyse again
                    self.cleanup(ctx)
                    meta.forget()
                    work = Work(executing=True)
                    self.analyse(ctx, meta, work)
                    self.raise_rejections(work)
                result = self.write(ctx, meta, work)
                if widened:
                    result.details["widened"] = widened
        except BaseException:
            self.drop_session_tables(ctx)  # a failure may leave them half-built
            raise
        finally:
            self.cleanup(ctx)
        result.details.setdefault("counts", dict(work.counts))
        state.mark_finished(ctx.conn, self.stage, time.monotonic() - started, result.rows, result.changes,
                            result.details)
        self.complete_gate(ctx)
        return result

    # -- what differs between backends (MySQL here; backends/postgres/data overrides) ---------------

    def meta(self, ctx: RunContext) -> Any:
        """The live schema's metadata, read once per stage."""
        return Meta(ctx.conn)

    def drop_session_tables(self, ctx: RunContext) -> None:
        """Forget every session (staging) table: a failure may leave them half-built."""
        staging.drop_all(ctx)

    # -- to implement -------------------------------------------------------------------------------

    def analyse(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        raise NotImplementedError

    def write(self, ctx: RunContext, meta: Meta, work: Work) -> StepResult:
        raise NotImplementedError

    def probe(self, ctx: RunContext, meta: Meta) -> bool:
        """Cheap check, on a database RAGFlow already migrated (marker at the gate, no record of
        ours): is there damage this stage repairs? Index-backed reads only."""
        return False

    def cleanup(self, ctx: RunContext) -> None:
        """Drop this stage's own session tables; the shared staging tables stay for the next stage."""

    # -- shared helpers --------------------------------------------------------------------------------

    def _ready(self, meta: Meta, work: Work, *, strict: bool = False) -> bool:
        missing = [t for t in self.requires if not meta.has_table(t)]
        if not missing:
            return True
        if strict and any(t != "tenant_llm" for t in missing):
            raise StepFailedError(
                f"{self.name}: table(s) {', '.join(missing)} do not exist",
                hint="apply the schema first (`ragflow-migrate run`), or create them with "
                "`ragflow-migrate data --create-table-only`",
            )
        work.notes.append(f"nothing to do: table(s) {', '.join(missing)} do not exist (yet)")
        return False

    def settle_rejections(self, ctx: RunContext, meta: Meta, work: Work) -> list[dict[str, Any]]:
        """Values that fit no lossless form of their column: widen the columns when the operator said so
        (``--widen-columns``) and every rejection can be widened away; else stop, nothing written."""
        if not work.rejections:
            return []
        if getattr(ctx.settings, "widen_columns", False) and all(r.needed for r in work.rejections):
            done = []
            for r in work.rejections:
                assert r.needed is not None
                reason = f"{r.count} value(s) of up to {r.needed[0]} characters ({r.reason}), e.g. {r.rows[:5]}"
                change = widen.widen(ctx, self.name, meta, r.table, r.column, r.needed[0], r.needed[1], reason)
                if change:
                    done.append(change)
            work.rejections.clear()
            return done
        self.raise_rejections(work)
        return []

    def raise_rejections(self, work: Work) -> None:
        if not work.rejections:
            return
        first = work.rejections[0]
        parts = [f"{r.table}.{r.column}: {r.count} row(s) {r.reason}"
                 + (f" (limit {r.limit} characters)" if r.limit else "") + f", e.g. {r.rows}"
                 for r in work.rejections]
        widenable = all(r.needed for r in work.rejections)
        raise DataRejectedError(
            f"{self.name}: legacy values that fit no lossless form of their column; nothing was written: "
            + "; ".join(parts),
            hint=WIDEN_HINT if widenable else "the values are named above; correct the source (the catalogue "
            "or the rows) so that they fit, then run again",
            table=first.table, column=first.column, rows=first.rows, count=first.count,
        )

    def complete_gate(self, ctx: RunContext) -> None:
        """Write RAGFlow's marker once every stage of this gate has finished (never backwards)."""
        records = state.read(ctx.conn)
        if all(state.finished(records, name) for name in gates.STAGES[self.gate]):
            marker.write(ctx, self.gate, self.name)

    #: The table whose rows make this stage need the catalogue (none: nothing to read it for).
    catalog_input = "tenant_llm"

    def catalog(self, ctx: RunContext) -> catalog_module.Catalog:
        """RAGFlow's catalogue. Missing or malformed, it is an error only when the stage has rows
        to read it for: a fresh install or an empty ``tenant_llm`` never needs one."""
        cached = ctx.extras.get(catalog_module.CACHE_KEY)
        if cached is None:
            try:
                cached = catalog_module.load_catalog(ctx.settings.catalog)
            except ConfigError:
                if sqlkit.query(ctx.conn, f"SELECT 1 FROM {self.catalog_input} LIMIT 1"):
                    raise
                return catalog_module.Catalog(str(ctx.settings.catalog), [], frozenset())
            ctx.extras[catalog_module.CACHE_KEY] = cached
        return cached

    def batch(self, ctx: RunContext) -> int:
        """Rows per transaction: ``--batch-size``, within a Galera cluster's write-set limits."""
        size = max(1, int(getattr(ctx.settings, "batch_size", 5000) or 5000))
        topo = getattr(ctx.server, "topology", None)
        return topo.cap_batch(size) if topo is not None else size

    def sample(self, ctx: RunContext, sql: str, args: Any = None, columns: tuple[str, ...] = ()) -> list[dict]:
        rows = sqlkit.query(ctx.conn, sql + f" LIMIT {SAMPLE_ROWS}", args)
        return [dict(zip(columns, row, strict=False)) for row in rows]
