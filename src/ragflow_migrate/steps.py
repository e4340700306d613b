"""The step interface that schema migrations and data stages plug into, and the run context.

A :class:`Step` is one unit of work in release order (``schema v0.26.0``, ``data
tenant_model_provider``, ``verify``). The orchestrator (:mod:`runner`) decides when steps run;
a step only knows how to describe (``plan``) and do (``apply``) its own work, and calls
``ctx.checkpoint()`` between statements or batches so that a lost lock or a SIGTERM stops it
at a safe point.

A :class:`Planner` looks at the database (cheaply: no data scans) and returns a :class:`Plan`:
the state the database is in and the steps still pending, in order.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Callable
from typing import Any, Protocol

from . import events, interrupt


@dataclasses.dataclass
class StepResult:
    rows: int = 0  # rows read or written, for rates
    changes: int = 0  # statements that changed something, or rows changed
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StepPlan:
    """What a step would do: SQL it would run and/or counts of what would change."""

    step: str
    summary: str
    sql: list[str] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    samples: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Step(abc.ABC):
    name: str
    kind: str  # "schema" | "data" | "verify"
    release: str | None = None
    journaled: bool = True  # recorded in the journal table (read-only checks are not)

    @abc.abstractmethod
    def plan(self, ctx: RunContext) -> StepPlan:
        """Describe the work without changing anything (no DDL either)."""

    @abc.abstractmethod
    def apply(self, ctx: RunContext) -> StepResult:
        """Do the work. Must be safe to run again after a kill at any point."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


@dataclasses.dataclass
class Plan:
    """The database as found, and what remains to be done to reach the target."""

    state: str  # "empty" | "up_to_date" | "pending" | "newer"
    target: str
    release: str | None = None  # release the database is at (detected), when known
    steps: list[Step] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def pending(self) -> list[str]:
        return [s.name for s in self.steps]


class Planner(Protocol):
    def __call__(self, ctx: RunContext) -> Plan: ...


class Progress:
    """Throttled ``step.progress`` events: done/total, percent, rate, elapsed, ETA after 1%.

    Each event is logged once: :meth:`emit` does nothing when done and total are those of the
    last event, so a stage may end with ``emit()`` (to log its final count) whether or not the
    last ``advance`` already logged it. Nothing counted yet is not progress: a step that found
    nothing to do logs no ``step.progress`` at all (its ``step.skipped`` says so).
    """

    def __init__(self, ctx: RunContext, step: str, total: int | None, unit: str = "rows",
                 every_s: float = 2.0) -> None:
        self.ctx, self.step, self.total, self.unit, self.every_s = ctx, step, total, unit, every_s
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._emitted: tuple[int, int | None] | None = None  # (done, total) of the last event

    def advance(self, n: int, *, force: bool = False) -> None:
        self.done += n
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self.emit(now)

    def emit(self, now: float | None = None) -> None:
        """Log the current count, unless the last event already said it."""
        if self._emitted == (self.done, self.total) or (self._emitted is None and not self.done):
            return
        now = time.monotonic() if now is None else now
        self._last = now
        self._emitted = (self.done, self.total)
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        fields: dict[str, Any] = {
            "step": self.step,
            "done": self.done,
            "total": self.total,
            "unit": self.unit,
            "elapsed_s": round(elapsed, 2),
            "rate_per_s": round(rate, 1),
        }
        if self.total:
            fraction = min(1.0, self.done / self.total)
            fields["percent"] = round(100 * fraction, 1)
            if fraction >= 0.01 and rate > 0:
                fields["eta_s"] = round((self.total - self.done) / rate, 1)
        self.ctx.log.info(events.STEP_PROGRESS, **fields)


@dataclasses.dataclass
class RunContext:
    """Everything a step may use. Built by the runner; steps never open their own sessions."""

    settings: Any  # config.Settings
    log: Any
    run_id: str
    server: Any = None  # dialect.ServerInfo
    conn: Any = None  # the work connection (pymysql)
    lock: Any = None  # db.lock.AdvisoryLock while held
    dry_run: bool = False
    #: Opens another session like ``conn`` (same settings and session variables), for the data
    #: stages that work pages on several sessions at once (:mod:`.data.lanes`); None: one session.
    open_session: Callable[[], Any] | None = None
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    _checkpoint_hooks: list[Callable[[], None]] = dataclasses.field(default_factory=list)

    @property
    def backend(self) -> Any:
        """The :class:`~.backends.base.Backend` of ``settings.db_type``."""
        from .backends import get

        return get(self.settings)

    def live_schema(self, tables: list[str] | None = None) -> Any:
        """The live schema (of just ``tables``, when given) in the backend's normal form."""
        return self.backend.live_snapshot(self.conn, self.settings.database, tables=tables, server=self.server)

    def declared(self, snapshot: Any) -> Any:
        """A declared schema (the chain's models) in the backend's normal form."""
        return self.backend.declared(snapshot)

    def checkpoint(self) -> None:
        """Between statements and batches: stop if interrupted or if the lock is lost."""
        interrupt.check()
        if self.lock is not None:
            self.lock.verify()
        for hook in self._checkpoint_hooks:
            hook()

    def progress(self, step: str, total: int | None, unit: str = "rows") -> Progress:
        return Progress(self, step, total, unit)

    def notice(self, step: str, message: str, **fields: Any) -> None:
        self.log.warning(events.STEP_NOTICE, step=step, message=message, **fields)
