"""The preflight: everything knowable in advance, checked before a run's first write.

A run that cannot finish must change nothing: not half the schema, not three data stages
followed by exit 10 in an initContainer's crash loop. So before the first step (and before the
lock, whose bookkeeping writes), the pending steps are checked, in this order, and the first
class of blocker found stops the run with its exit code:

1. configuration and the catalogue: a pending data stage that has legacy rows to read it for
   needs RAGFlow's ``llm_factories.json``, present and parseable → exit 2;
2. privileges for the pending statements (:mod:`.db.privileges`) → exit 4; a read-only
   server → exit 7;
3. every legacy value against the column it will land in, for every pending data stage in
   release order (:mod:`.data.overflow`) → exit 10, unless ``--widen-columns`` lets the stages
   widen exactly those columns (they then do so right before writing).

``plan`` and ``status`` show the same findings (``blockers``, and the widenings a run with
``--widen-columns`` would make), so an operator sees them before a run meets them.

    findings = check(ctx, plan.steps)   # read-only
    enforce(ctx, plan.steps)            # raises the first class of blocker
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from . import events
from .db import connect as db
from .db import privileges
from .errors import AuthError, ConfigError, DataRejectedError, ExitCode, MigrateError, StepFailedError
from .steps import RunContext, Step

#: What every pending step may run (schema DDL, the journal, the lock's holder table, data DML).
BASE_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP"})
#: The data stages stage legacy rows in session tables.
DATA_PRIVILEGES = frozenset({"CREATE TEMPORARY TABLES"})
#: The stages that read the catalogue, and the tables whose rows make them need it.
CATALOG_STAGES = frozenset({"tenant_model", "tenant_model_seeding", "model_type_merge"})
CATALOG_INPUTS = ("tenant_llm", "tenant_model_instance")


@dataclasses.dataclass
class Blocker:
    kind: str  # catalogue | privileges | read_only | value
    exit_code: int
    message: str
    remedy: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "exit_code": self.exit_code, "message": self.message, "remedy": self.remedy,
                **self.details}


@dataclasses.dataclass
class Findings:
    blockers: list[Blocker] = dataclasses.field(default_factory=list)
    widenings: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # what --widen-columns will widen
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"blockers": [b.as_dict() for b in self.blockers], "widenings": self.widenings,
                "duration_s": round(self.duration_s, 3)}


def check(ctx: RunContext, steps: list[Step]) -> Findings:
    """Read-only: what would stop these steps, in the order the checks run."""
    started = time.monotonic()
    findings = Findings()
    if not steps:
        return findings
    pending = {getattr(s, "stage", None) for s in steps if s.kind == "data"} - {None}
    catalog = _catalogue(ctx, pending, findings)
    ctx.backend.check_server(ctx, steps, bool(pending), findings)
    if pending and not any(b.kind == "catalogue" for b in findings.blockers):
        _values(ctx, pending, catalog, findings)
    findings.duration_s = time.monotonic() - started
    return findings


def enforce(ctx: RunContext, steps: list[Step]) -> Findings:
    """:func:`check`, then raise the first class of blocker (2, then 4 and 7, then 10)."""
    findings = check(ctx, steps)
    ctx.log.info(events.PREFLIGHT_FINISHED, steps=len(steps), blockers=len(findings.blockers),
                 widenings=len(findings.widenings), duration_s=round(findings.duration_s, 3))
    if findings.blockers:
        raise _error(findings.blockers)
    return findings


def enforce_again(ctx: RunContext, checked: list[str], steps: list[Step]) -> None:
    """Under the lock: check again only when the steps differ from those checked before it (another
    runner did some of the work meanwhile, or left other work)."""
    if steps and [s.name for s in steps] != checked:
        enforce(ctx, steps)


def _error(blockers: list[Blocker]) -> MigrateError:
    first = min(blockers, key=lambda b: _ORDER[b.kind])
    same = [b for b in blockers if b.exit_code == first.exit_code]
    message = "preflight: " + "; ".join(b.message for b in same) + "; nothing was changed"
    fields = {"blockers": [b.as_dict() for b in blockers]}
    cls = {ExitCode.CONFIG: ConfigError, ExitCode.AUTH: AuthError, ExitCode.STEP_FAILED: StepFailedError,
           ExitCode.DATA_REJECTED: DataRejectedError}[ExitCode(first.exit_code)]
    return cls(message, hint=first.remedy, **fields)


_ORDER = {"catalogue": 0, "blocking_ddl": 0, "privileges": 1, "read_only": 2, "value": 3}


def mysql_checks(ctx: RunContext, steps: list[Step], data_pending: bool, findings: Findings) -> None:
    """The MySQL backend's server checks: privileges (SHOW GRANTS), read-only, Galera's TOI."""
    _privileges(ctx, data_pending, findings)
    _read_only(ctx, findings)
    _blocking_ddl(ctx, steps, findings)


def _catalogue(ctx: RunContext, pending: set[str], findings: Findings) -> Any:
    from .data import catalog as catalog_module

    if not pending & CATALOG_STAGES:
        return None
    cached = ctx.extras.get(catalog_module.CACHE_KEY)
    if cached is not None:
        return cached
    present = ctx.backend.table_names(ctx.conn, ctx.settings.database)
    needed = any(t in present and db.query_one(ctx.conn, f"SELECT 1 FROM {ctx.backend.quote(t)} LIMIT 1")
                 for t in CATALOG_INPUTS)
    try:
        loaded = catalog_module.load_catalog(ctx.settings.catalog)
    except ConfigError as exc:
        if needed:
            findings.blockers.append(Blocker("catalogue", int(ExitCode.CONFIG), exc.message,
                                             exc.hint or "pass --catalog with RAGFlow's llm_factories.json",
                                             {"file": str(ctx.settings.catalog)}))
        return None
    ctx.extras[catalog_module.CACHE_KEY] = loaded
    return loaded


def _privileges(ctx: RunContext, data_pending: bool, findings: Findings) -> None:
    needed = BASE_PRIVILEGES | (DATA_PRIVILEGES if data_pending else frozenset())
    verdict = privileges.missing(ctx.conn, ctx.settings.database, needed)
    if not verdict.certain:
        ctx.log.debug(events.STEP_NOTICE, step="preflight",
                      message=f"privileges not checked in advance: {verdict.why_uncertain}")
        return
    if verdict.missing:
        missing = sorted(verdict.missing)
        findings.blockers.append(Blocker(
            "privileges", int(ExitCode.AUTH),
            f"the account {ctx.settings.user} lacks {', '.join(missing)} on {ctx.settings.database}",
            f"{privileges.grant_statement(ctx.settings.database, verdict.missing)} (README: Privileges)",
            {"missing": missing}))


def _read_only(ctx: RunContext, findings: Findings) -> None:
    row = db.query_one(ctx.conn, "SELECT @@global.read_only")
    if not (row and int(row[0] or 0)):
        return
    where = f"{ctx.settings.host}:{ctx.settings.port}"
    topo = getattr(ctx.server, "topology", None)
    primary = topo.primary if topo is not None else None
    if primary is not None and topo.role != "PRIMARY":
        findings.blockers.append(Blocker(
            "read_only", int(ExitCode.STEP_FAILED),
            f"the server {where} is a Group Replication secondary (writes go to the primary, {primary.address})",
            f"point MYSQL_HOST/MYSQL_PORT at the group's primary ({primary.address}) or at the operator's "
            "read-write endpoint (README: Locking on clusters)", {"primary": primary.address}))
        return
    findings.blockers.append(Blocker(
        "read_only", int(ExitCode.STEP_FAILED), f"the server {where} is read-only (read_only=ON)",
        "point the tool at the primary; a replica cannot be migrated"))


def _blocking_ddl(ctx: RunContext, steps: list[Step], findings: Findings) -> None:
    from .schema import toi

    if not toi.on_toi(ctx.server) or ctx.settings.allow_blocking_ddl:
        return
    for big in toi.pending_blockers(ctx, steps):
        findings.blockers.append(Blocker(
            "blocking_ddl", int(ExitCode.CONFIG),
            f"{big['step']}: an ALTER of {big['table']} (about {big['estimated_rows']:,} rows) would hold every "
            "Galera node while it runs (TOI)", toi.ALLOW_HINT, big))


def _values(ctx: RunContext, pending: set[str], catalog: Any, findings: Findings) -> None:
    from .data import overflow
    from .data.stages.base import WIDEN_HINT

    predict = getattr(ctx.backend, "data_overflows", None) or overflow.overflows
    for found in predict(ctx.conn, pending, catalog):
        if ctx.settings.widen_columns:
            findings.widenings.append(found.as_dict())
            continue
        findings.blockers.append(Blocker("value", int(ExitCode.DATA_REJECTED), found.describe(), WIDEN_HINT,
                                         found.as_dict()))
