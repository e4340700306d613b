"""Where a database stands: empty, adopted from RAGFlow, partly migrated, up to date, or newer.

Cheap by design: the history table and the list of tables (metadata only). The chain is
replayed (a few milliseconds) only when something is pending or the release must be guessed.
When nothing is pending, :func:`schema_drift` takes the one look at the live schema that tells
whether someone changed it by hand (information_schema only, compared with the declared schema
the models give without a replay).
"""

from __future__ import annotations

import dataclasses

from ..releases import KNOWN_RELEASES
from ..steps import RunContext, Step
from . import chain, history, widenings
from .diff import OWN_PREFIX, Difference, compare, drift
from .repair import holds_every_value, shape
from .snapshot import Snapshot
from .steps import InstallStep, MigrationStep


@dataclasses.dataclass
class SchemaState:
    state: str  # "empty" | "adopt" | "pending" | "up_to_date" | "newer"
    release: str | None  # the release the schema is at (history), or the closest one (adopted)
    pending: list[MigrationStep | InstallStep]
    notes: list[str]
    applied: list[str] | None


def schema_state(ctx: RunContext, target: str) -> SchemaState:
    applied = history.applied(ctx.conn, ctx.backend)
    wanted = chain.names_up_to(target)
    known = set(chain.migration_names())
    notes: list[str] = []

    if applied:
        unknown = [n for n in applied if n not in known]
        if unknown:
            return SchemaState("newer", _release_label(unknown[-1]), [], [
                f"the history holds migrations this tool does not know: {', '.join(unknown)}"], applied)
        beyond = [n for n in applied if n not in wanted]
        if beyond:
            return SchemaState("newer", chain.release_of(max(applied)), [], [
                f"the database is at {chain.release_of(max(applied))}, past the target {target}; "
                "downgrades are not supported"], applied)
        done = set(applied)
        missing = [n for n in wanted if n not in done]
        release = chain.release_of(max(applied))
        if missing and any(n < max(applied) for n in missing):
            notes.append("the history has gaps (" + ", ".join(missing) + "); they are applied now, "
                         "each operation checking the live schema first")
        if not missing:
            return SchemaState("up_to_date", release, [], notes, applied)
        by_name = {m.name: m for m in chain.replay()}
        return SchemaState("pending", release, [MigrationStep(by_name[n]) for n in missing], notes, applied)

    tables = {t for t in ctx.backend.table_names(ctx.conn, ctx.settings.database) if not t.startswith(OWN_PREFIX)}
    if not tables:
        return SchemaState("empty", None, [InstallStep(target)], notes, applied)
    release = detect_release(ctx)
    notes.append(f"no migration history: adopting a database RAGFlow created or upgraded itself "
                 f"(closest release: {release}); every migration checks the live schema first")
    steps = [MigrationStep(m) for m in chain.replay() if m.name in wanted]
    return SchemaState("adopt", release, steps, notes, applied)


#: Differences that break RAGFlow (issue 15): something missing, or a column that cannot hold what the
#: target's can. A table's collation, an index defined otherwise, a column's default: ``schema diff``
#: reports them; they are not worth a repair on every start (nor a failed run over them).
BREAKING_KINDS = frozenset({"missing_table", "missing_column", "missing_index"})


def schema_drift(ctx: RunContext, target: str, *,
                 skip_columns: frozenset[tuple[str, str]] = frozenset()) -> list[Difference]:
    """Where the live schema differs from ``target``'s in a way that breaks RAGFlow, recorded
    widenings aside."""
    expected = ctx.declared(chain.install_schema(target))  # the models for the newest release: no replay
    live = ctx.live_schema()
    found = drift(compare(expected, live, skip_columns=skip_columns))
    if any(d.kind == "column" for d in found):  # only then is a widening worth a query
        found = drift(compare(expected, live, skip_columns=skip_columns, widened=widenings.recorded(ctx.conn)))
    return [d for d in found if breaks(expected, live, d)]


def breaks(expected: Snapshot, live: Snapshot, difference: Difference) -> bool:
    if difference.kind in BREAKING_KINDS:
        return True
    if difference.kind != "column":
        return False
    want = expected.tables[difference.table].columns[difference.name]
    have = live.tables[difference.table].columns[difference.name]
    if want.nullable and not have.nullable:
        return True
    if shape(want.type)[0] != shape(have.type)[0]:
        return True  # another type (an INT made VARCHAR, …)
    return not holds_every_value(want.type, have.type)  # narrower (a wider one breaks nothing)


def recorded_deviations(ctx: RunContext) -> list[widenings.Widening]:
    """Recorded widenings the live columns still hold (``status`` shows them)."""
    recorded = widenings.recorded(ctx.conn)
    if not recorded:
        return []
    live = ctx.live_schema(tables=sorted({t for t, _ in recorded}))
    return [w for (table, column), w in sorted(recorded.items())
            if (col := live.column(table, column)) is not None and widenings.holds(w, col.type)]


def detect_release(ctx: RunContext) -> str:
    """The known release whose declared schema is closest to the live one."""
    live = ctx.live_schema()
    best: tuple[int, int] | None = None
    label = KNOWN_RELEASES[0]
    for index, migration in enumerate(chain.replay()):
        score = len(compare(ctx.declared(migration.expected), live))
        if best is None or (score, -index) < best:
            best, label = (score, -index), migration.release
    return label if best and best[0] == 0 else f"{label} (closest)"


def _release_label(name: str) -> str:
    try:
        return chain.release_of(name)
    except IndexError:
        return name


def pending_names(steps: list[Step]) -> list[str]:
    return [s.name for s in steps]
