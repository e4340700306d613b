"""The stages in order, their gates, and which of them are pending for a database.

``data_steps(ctx, gate)`` is what the pipeline calls after the schema of ``gate`` is applied.
It must be cheap on the no-op path (every runner of every pod calls it), so it reads only:

1. our own stage record (:mod:`.state`): every stage of the gate finished → nothing pending;
2. RAGFlow's marker (:mod:`.marker`): below the gate (or absent) → the gate's stages from the
   first unfinished one on are pending;
3. marker at or above the gate but no record of ours (RAGFlow's own script ran): each stage's
   ``probe`` (a few index-backed reads) says whether RAGFlow's run left damage that stage
   repairs (D1, D4, the ``tenant_*_id`` columns); pending from the first such stage on.

Once a stage is pending, every later stage of its gate is too: they consume its output.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..steps import RunContext, Step, StepPlan, StepResult
from . import gates, marker, state
from .sqlkit import Meta
from .stages.base import DataStage
from .stages.id_migration import IdMigrationStage
from .stages.instance import InstanceStage
from .stages.legacy_models import LegacyModelStage
from .stages.merge import MergeStage
from .stages.model_ids import ModelIdStage
from .stages.provider import ProviderStage
from .stages.seeding import SeedingStage

STAGE_CLASSES: tuple[type[DataStage], ...] = (
    ProviderStage, InstanceStage, LegacyModelStage, ModelIdStage, SeedingStage, MergeStage, IdMigrationStage,
)
GATES: tuple[str, ...] = gates.GATES
STAGE_NAMES: tuple[str, ...] = tuple(cls.stage for cls in STAGE_CLASSES)
assert {g: tuple(c.stage for c in STAGE_CLASSES if c.gate == g) for g in GATES} == gates.STAGES, \
    "data/gates.py must list the stage classes' names, gate by gate, in order"


def stage_classes(ctx: RunContext | None = None) -> tuple[type[DataStage], ...]:
    """The stage classes of ``ctx``'s backend (MySQL's above unless the backend brings its own:
    ``backend.data_stage_classes()``), same names, gates and order."""
    backend = getattr(ctx, "backend", None) if ctx is not None else None
    own = getattr(backend, "data_stage_classes", None)
    if own is None:
        return STAGE_CLASSES
    classes = tuple(own())
    assert tuple((c.stage, c.gate) for c in classes) == tuple((c.stage, c.gate) for c in STAGE_CLASSES), \
        f"{backend.name}'s data stages must have the names, gates and order of MySQL's"
    return classes


def all_stages(ctx: RunContext | None = None) -> list[DataStage]:
    return [cls() for cls in stage_classes(ctx)]


def stages_of(gate: str, ctx: RunContext | None = None) -> list[DataStage]:
    if gate not in GATES:
        raise ValueError(f"unknown data gate {gate!r}; known: {', '.join(GATES)}")
    return [cls() for cls in stage_classes(ctx) if cls.gate == gate]


def select(names: list[str], ctx: RunContext | None = None) -> list[DataStage]:
    """Stages by RAGFlow's names, in pipeline order; an unknown name is a configuration error (FIX D19)."""
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise ConfigError(f"unknown data stage(s): {', '.join(unknown)}",
                          hint=f"known stages, in order: {', '.join(STAGE_NAMES)}", stages=unknown)
    wanted = set(names)
    return [s for s in all_stages(ctx) if s.stage in wanted]


def data_steps(ctx: RunContext, gate: str, *, schema_pending: bool = False) -> list[Step]:
    """The stages of ``gate`` still pending on this database, in order ([] when none).

    ``schema_pending`` (the gate's schema step is about to run) needs no special case: without a
    record or a marker at the gate every stage is pending, and each stage looks at the tables
    only when it runs; the probes of a database RAGFlow migrated find nothing to repair in tables
    that do not exist yet.
    """
    stages = stages_of(gate, ctx)
    records = state.read(ctx.conn)
    first = next((i for i, s in enumerate(stages) if not state.finished(records, s.stage)), None)
    if first is None:
        # Every stage finished; a run killed right after the last one may not have written
        # RAGFlow's marker yet (it is written after the gate's stages, never before).
        return [] if marker.reached(marker.version(ctx.conn), gate) else [MarkerStep(gate)]
    if not marker.reached(marker.version(ctx.conn), gate):
        return stages[first:]
    if any(s.stage in records for s in stages):
        # We ran this gate before and were interrupted; finish what we started.
        return stages[first:]
    meta = stages[0].meta(ctx) if stages else Meta(ctx.conn)
    for i, stage in enumerate(stages):
        if stage.probe(ctx, meta):
            return stages[i:]
    return []


class MarkerStep(Step):
    """Write RAGFlow's marker for a gate whose stages all finished (a run died in between)."""

    kind = "data"

    def __init__(self, gate: str) -> None:
        self.gate = gate
        self.release = gate
        self.name = f"data marker {gate}"

    def plan(self, ctx: RunContext) -> StepPlan:
        return StepPlan(self.name, f"set RAGFlow's marker {marker.NAME} to {self.gate}")

    def apply(self, ctx: RunContext) -> StepResult:
        written = marker.write(ctx, self.gate, self.name)
        return StepResult(changes=int(bool(written)))


def nothing_pending(ctx: RunContext, gates: tuple[str, ...] = GATES) -> bool:
    return all(not data_steps(ctx, gate) for gate in gates)
