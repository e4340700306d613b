"""Concurrency: 20 runner processes against one old RAGFlow database. Exactly one applies the
steps; the others wait for the advisory lock (every ``lock.waiting`` names the holder: its
connection, and its pod name since it is one of ours) and finish as no-ops with exit 0; the
database ends exactly as after a single run. Then again with the runners started while a
migration is already in progress."""

from __future__ import annotations

import pytest
import relkit
from relkit import BEFORE_MODELS, OLDEST

from ragflow_migrate import events

RUNNERS = 20


def _pod(i: int) -> str:
    return f"ragflow-7c9f-{i:02d}"


def _check(results: list[relkit.Result], database, want: dict, *, all_wait: bool) -> None:
    for i, r in enumerate(results):
        assert r.code == 0, f"runner {i}: {r.explain()}"
    migrated = [i for i, r in enumerate(results) if r.summary["outcome"] == "migrated"]
    assert len(migrated) == 1, f"runners that migrated: {migrated}"
    winner = results[migrated[0]]
    assert winner.summary["steps"], winner.explain()
    # who held the lock on which connection: the winner first, then the others in turn (each
    # re-plans under the lock, finds nothing to do, and passes it on)
    pod_of = {e["connection_id"]: _pod(i) for i, r in enumerate(results) for e in r.named(events.LOCK_ACQUIRED)}
    waited = 0
    for i, r in enumerate(results):
        if i == migrated[0]:
            continue
        assert r.summary["outcome"] == "noop" and not r.summary.get("steps"), f"runner {i}: {r.explain()}"
        assert not r.named(events.STEP_STARTED) and not r.named(events.STEP_STATEMENT), f"runner {i} did work"
        waits = r.named(events.LOCK_WAITING)
        for w in waits:
            holder = w["holder"]
            assert holder["connection_id"] in pod_of, f"runner {i} names a holder that never held the lock: {w}"
            assert holder["instance"] == pod_of[holder["connection_id"]] and holder["tool"] == "ragflow-migrate", w
            assert holder.get("user") and holder.get("host"), w
        waited += bool(waits)
        if all_wait:
            assert waits, f"runner {i} started during the migration but never said it waits:\n{r.stdout[-2000:]}"
    assert waited >= (RUNNERS - 1 if all_wait else RUNNERS // 2), f"only {waited} runners waited"
    first_waits = [r.named(events.LOCK_WAITING)[0] for r in results if r.named(events.LOCK_WAITING)]
    assert any(pod_of[w["holder"]["connection_id"]] == _pod(migrated[0]) for w in first_waits), \
        "nobody named the runner that migrated"
    relkit.assert_same_end_state(database.server, database.name, want, "after concurrent runners")


@pytest.mark.slow
def test_twenty_runners_at_once(old_db, reference, forkrun):
    want = reference(BEFORE_MODELS)
    database = old_db(BEFORE_MODELS)
    children = [forkrun.spawn({**database.env, "POD_NAME": _pod(i)}, "run") for i in range(RUNNERS)]
    results = [c.wait(300) for c in children]
    _check(results, database, want, all_wait=False)


@pytest.mark.slow
def test_twenty_runners_join_a_migration_in_progress(old_db, reference, forkrun):
    want = reference(OLDEST)
    database = old_db(OLDEST)
    first = forkrun.spawn({**database.env, "POD_NAME": _pod(0)}, "run")
    first.wait_for_event(lambda e: e.get("event") == events.STEP_STARTED)
    late = [forkrun.spawn({**database.env, "POD_NAME": _pod(i)}, "run") for i in range(1, RUNNERS)]
    results = [first.wait(300)] + [c.wait(300) for c in late]
    assert results[0].summary["outcome"] == "migrated"
    _check(results, database, want, all_wait=True)
