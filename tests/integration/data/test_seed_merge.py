"""The merge's execution writes the groups made only of seeded rows straight into the new table
(``SeedMerge.split``), and only the seeded rows that join a group of existing rows go through the
page table. The result must be, row for row and id for id, what the general path makes (every seeded
row through the page table and the merge's GROUP BY, as the dry run counts them), on data planted to
sit on every boundary between the two: names equal to a catalogue model but for case or a trailing
space, unsupported and inactive groups, a row whose provider is not its instance's, a NULL name, a
catalogue model of two types with one present, and an instance without any model. The same holds
when the pages are worked on several sessions at once (:mod:`ragflow_migrate.data.lanes`)."""

from __future__ import annotations

import collections
import time

import data_support as ds
import pytest

from ragflow_migrate.data import lanes, registry
from ragflow_migrate.data.stages import base, seed_merge

#: (model_name, model_type, status, extra) planted into OpenAI instances, one variant per instance
VARIANTS = [
    [("GPT-4O", "chat", "active", "{}")],  # case twin of a catalogue model: gpt-4o is not seeded
    [("gpt-4o-mini ", "image2text", "inactive", "[1]")],  # trailing space: chat seeded, inactive (D10)
    [("gpt-4o-mini", "chat", "unsupported", "{}")],  # the seeded image2text joins this group
    [("GPT-4O-MINI", "chat", "active", '{"max_tokens": 77}')],  # image2text seeded with this extra (D11)
    [("o1", "chat", "inactive", '{"max_tokens": 5}'), ("O1", "embedding", "active", "x")],
    [(None, "chat", "active", "{}"), ("tts-1", "TTS", "active", "{}")],  # NULL name; a type not in our spelling
    [("whisper-1", "chat", "active", "{}")],  # planted under another provider (below)
    [("my-own", "chat", "active", "{}"), ("my-own", "embedding", "active", "{}")],  # two existing rows: one kept
]


def _pin(monkeypatch) -> None:
    """Same ids and times on every run (the ids of seeded rows are new on each run otherwise)."""
    def ids(self):
        self.prefix, self.next = "0" * 16, 0

    def clock(self):
        self.s = 1_700_000_000
        self.ms = self.s * 1000
        self.date = base.datetime.fromtimestamp(self.s, tz=base.UTC).replace(tzinfo=None)

    monkeypatch.setattr(base.IdSequence, "__init__", ids)
    monkeypatch.setattr(base.Clock, "__init__", clock)


def _plant(legacy) -> None:
    insts = legacy.q("SELECT i.id, i.provider_id FROM tenant_model_instance i JOIN tenant_model_provider p "
                     "ON p.id = i.provider_id WHERE p.provider_name = 'OpenAI' ORDER BY i.id")
    assert len(insts) > len(VARIANTS) + 1, insts
    other = legacy.q("SELECT id FROM tenant_model_provider WHERE provider_name <> 'OpenAI' ORDER BY id LIMIT 1")[0][0]
    n = 0
    for (inst, prov), rows in zip(insts, VARIANTS, strict=False):
        for name, mtype, status, extra in rows:
            n += 1
            provider = other if name == "whisper-1" else prov
            ds.insert(legacy.conn, "tenant_model", id=f"{n:032x}", model_name=name, provider_id=provider,
                      instance_id=inst, model_type=mtype, status=status, extra=extra)
    # an instance without any model: everything it gets is seeded
    tenant_of = legacy.q("SELECT tenant_id FROM tenant_model_provider WHERE id = %s", (insts[-1][1],))[0][0]
    ds.insert(legacy.conn, "tenant_model_instance", id="f" * 32, provider_id=insts[-1][1], instance_name="bare",
              api_key="sk-bare", status="active", extra="{}")
    assert tenant_of


def _merged(legacy) -> list[tuple]:
    return legacy.q("SELECT id, create_time, create_date, update_time, update_date, CAST(model_name AS BINARY), "
                    "provider_id, instance_id, model_type, status, extra FROM tenant_model ORDER BY id")


def _merge(legacy, monkeypatch, *, split: bool, **flags) -> tuple[list[tuple], dict]:
    monkeypatch.setattr(seed_merge.SeedMerge, "split", split)
    written: list[int] = []
    original = seed_merge.SeedMerge._write_seeded_groups

    def spy(self, *args):
        written.append(original(self, *args))
        return written[-1]

    monkeypatch.setattr(seed_merge.SeedMerge, "_write_seeded_groups", spy)
    merge = next(s for s in registry.stages_of("v0.27.0") if s.stage == "model_type_merge")
    result = merge.apply(legacy.ctx(**flags))
    assert bool(written) == split and (not split or sum(written) > 0), written
    return _merged(legacy), result.details


@pytest.mark.parametrize("mapping", [False, True], ids=["plain", "group-mapping"])
def test_seeded_groups_written_directly_equal_the_general_path(legacy, monkeypatch, mapping):
    c = legacy.conn
    ds.rich_rows(c, tenants=10, seed=3)
    ctx = legacy.ctx()
    ds.run_gate(ctx, "v0.26.0")
    for stage in registry.stages_of("v0.27.0"):
        if stage.stage == "model_type_merge":
            break
        stage.apply(ctx)
    _plant(legacy)
    if mapping:  # D25: the remap reads the page table's window; existing rows only
        legacy.q("INSERT INTO tenant_model_group_mapping (create_time, update_time, group_id, provider_id, "
                 "instance_id, model_id, weight, status) SELECT 0, 0, 'g1', provider_id, instance_id, id, 1, "
                 "'active' FROM tenant_model ORDER BY id")
        legacy.q("CREATE TABLE gm_keep AS SELECT * FROM tenant_model_group_mapping")
    _pin(monkeypatch)
    general, general_details = _merge(legacy, monkeypatch, split=False)
    mapping_general = legacy.q("SELECT group_id, provider_id, instance_id, model_id FROM tenant_model_group_mapping "
                               "ORDER BY model_id, instance_id") if mapping else []
    # the split path on one session (big pages), then on three sessions with pages of ~1 instance
    previous = general_details
    for flags in ({"sessions": 1}, {"sessions": 3, "batch_size": 1}):
        _unmerge(legacy, previous["backup"], mapping)
        sessions = _count_sessions(monkeypatch)
        direct, direct_details = _merge(legacy, monkeypatch, split=True, **flags)
        previous = direct_details
        assert max(sessions) == flags["sessions"], sessions
        assert direct == general, _first_difference(direct, general)
        for key in ("rows_after", "models_seeded", "group_mapping_remapped"):
            assert direct_details[key] == general_details[key], (flags, key)
        if mapping:
            assert legacy.q("SELECT group_id, provider_id, instance_id, model_id FROM tenant_model_group_mapping "
                            "ORDER BY model_id, instance_id") == mapping_general, flags
    # the planted boundaries are really there
    rows = {(r[7], bytes(r[5]) if r[5] is not None else None): r for r in direct}
    assert any(name == b"gpt-4o-mini" and r[8] == 9 for (_i, name), r in rows.items()), "no merged mixed group"
    assert ("f" * 32, b"tts-1") in rows  # the bare instance got the catalogue


def _unmerge(legacy, backup: str, mapping: bool) -> None:
    """Back to the unmerged tenant_model (the merge's backup) and the group mapping as planted."""
    legacy.q("DROP TABLE tenant_model")
    legacy.q(f"RENAME TABLE `{backup}` TO tenant_model")
    if mapping:
        legacy.q("DELETE FROM tenant_model_group_mapping")
        legacy.q("INSERT INTO tenant_model_group_mapping SELECT * FROM gm_keep")


def _count_sessions(monkeypatch) -> list[int]:
    """How many lanes each run of the merge's pages works on (appended to the returned list). The
    first lane waits a little after each page, so that every other lane gets pages to work on too
    (checked), although the pages of this small database take milliseconds."""
    seen: list[int] = [0]
    original = lanes.run

    def spy(ctx, step, pages, *, setup, work, **kw):
        lane_of: dict[int, int] = {}
        done: collections.Counter[int] = collections.Counter()

        def setup_spy(lane_ctx, i):
            state = setup(lane_ctx, i)
            lane_of[id(state)] = i
            return state

        def work_spy(state, page):
            work(state, page)
            done[lane_of[id(state)]] += 1
            if lane_of[id(state)] == 0:
                time.sleep(0.05)

        states = original(ctx, step, pages, setup=setup_spy, work=work_spy, **kw)
        assert sorted(done) == list(range(len(states))), f"pages done per lane: {dict(done)}"
        seen.append(len(states))
        return states

    monkeypatch.setattr(lanes, "run", spy)
    return seen


def _first_difference(a: list[tuple], b: list[tuple]) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"split {x}\n general {y}"
    return f"{len(a)} rows (split) vs {len(b)} (general)"


def test_instances_that_change_while_another_session_prepares_stop_the_merge(legacy, monkeypatch):
    """Each other session rebuilds the instances to seed with the work connection's statement; if
    tenant_model_instance changed in between (a different count or checksum), the merge stops before
    the swap, tenant_model unchanged, and the next run merges."""
    from ragflow_migrate.data.stages import seeding
    from ragflow_migrate.errors import StepFailedError

    ds.rich_rows(legacy.conn, tenants=6, seed=5)
    ctx = legacy.ctx()
    ds.run_gate(ctx, "v0.26.0")
    for stage in registry.stages_of("v0.27.0"):
        if stage.stage == "model_type_merge":
            break
        stage.apply(ctx)
    before = _merged(legacy)
    real = seeding.seed_fingerprint
    calls = []

    def drifting(conn):
        calls.append(conn)
        value = real(conn)
        return value if len(calls) == 1 else (value[0] + 1, *value[1:])  # the other session sees one more

    monkeypatch.setattr(seeding, "seed_fingerprint", drifting)
    merge = next(s for s in registry.stages_of("v0.27.0") if s.stage == "model_type_merge")
    with pytest.raises(StepFailedError, match="tenant_model_instance changed while the merge was being prepared"):
        merge.apply(legacy.ctx(sessions=2, batch_size=1))
    assert len(calls) == 2
    assert _merged(legacy) == before
    assert legacy.q("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                    "AND TABLE_NAME = 'tenant_model' AND COLUMN_NAME = 'model_type'")[0][0] == "varchar"
    monkeypatch.setattr(seeding, "seed_fingerprint", real)
    merge.apply(legacy.ctx(sessions=2, batch_size=1))
    assert legacy.q("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                    "AND TABLE_NAME = 'tenant_model' AND COLUMN_NAME = 'model_type'")[0][0] == "int"
