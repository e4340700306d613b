"""Crash and resume: SIGKILL at random moments over the whole pipeline, then a plain re-run; the
database always converges to the end state of one uninterrupted run (normalised schema, row digest
of every table, migration history).

Kill points are drawn over the whole run: at a random SQL statement of all the statements an
uninterrupted run sends (waiting for MySQL, the pre-check, the lock, every schema step, every data
stage and batch; one in six among the first statements,
which are few but cover the wait, the lock and the plan), either after the server answered or
mid-statement (sent, answer never read); or at a random time. Runs of a trial are chained: a
resumed run may be killed again (up to 4 kills) before the final, clean run.

Kills per server and start release are in ``KILLS`` (>= 100 in all);
``RAGFLOW_MIGRATE_CRASH_SCALE=3`` triples them, ``RAGFLOW_MIGRATE_CRASH_SEED`` fixes the draw.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import time

import pytest
import relkit
from relkit import BEFORE_MODELS, OLDEST

SCALE = float(os.environ.get("RAGFLOW_MIGRATE_CRASH_SCALE", "1"))
SEED = int(os.environ.get("RAGFLOW_MIGRATE_CRASH_SEED", str(int(time.time()))))
#: kills per (server, start release): 102 in all by default
KILLS = {("mariadb", OLDEST): 16, ("mariadb", BEFORE_MODELS): 50,
         ("mysql", OLDEST): 8, ("mysql", BEFORE_MODELS): 28}
BATCH = "3"  # tiny data batches: many transactions to land in
EARLY = 40  # statements of the wait, the unlocked pre-check, the lock and the plan (about)
FIRST = 8  # surely before the first step: the wait and the pre-check


@pytest.mark.slow
@pytest.mark.parametrize("release", [OLDEST, BEFORE_MODELS])
def test_sigkill_anywhere_then_rerun_converges(server, old_db, reference, forkrun, release):
    want = reference(release)
    total, duration = want["statements"], want["duration_s"]
    kills_wanted = max(1, round(KILLS[(server.flavor, release)] * SCALE))
    rnd = random.Random(f"{SEED}-{server.flavor}-{release}")
    landed: collections.Counter[str] = collections.Counter()
    kills = chains = 0
    while kills < kills_wanted:
        chains += 1
        database = old_db(release)
        env = {**database.env, "RAGFLOW_MIGRATE_BATCH_SIZE": BATCH}
        story = []
        for _ in range(rnd.choice([1, 2, 3, 4])):
            draw = rnd.random() if kills else 0.0  # the first kill of a test is always an early one
            if draw < 0.75:
                # a sixth of the statement kills among the first ones: waiting, pre-check, lock, plan
                at = rnd.randint(1, FIRST if not kills else EARLY) if draw < 0.125 else rnd.randint(1, total)
                mode = rnd.choice(["done", "sent"])
                child = forkrun.spawn(env, "run", kill_at=at, kill_mode=mode)
                what = f"statement {at} ({mode})"
            else:
                child = forkrun.spawn(env, "run")
                pause = rnd.uniform(0, duration)
                time.sleep(pause)
                child.kill(signal.SIGKILL)
                what = f"{pause:.2f}s"
            result = child.wait(300)
            if result.code == 0:
                story.append(f"{what}: completed")
                break  # the kill point lay past the end of this (resumed) run
            assert result.code == -signal.SIGKILL, f"chain {chains}, kill at {what}: {result.explain()}"
            kills += 1
            phase = relkit.phase_of(result.events)
            landed[phase] += 1
            story.append(f"{what}: killed in {phase}")
        final = forkrun.run(env, "run")
        assert final.code == 0, f"seed {SEED}, chain {chains} ({'; '.join(story)}): {final.explain()}"
        relkit.assert_same_end_state(server, database.name, want,
                                     f"seed {SEED}, chain {chains}: {'; '.join(story)}")
        if kills >= kills_wanted:  # and once per test: the converged database is a no-op
            again = forkrun.run(env, "run")
            assert again.code == 0 and again.summary["outcome"] == "noop", again.explain()

    print(f"\n{server.label} from {release}: {kills} kills in {chains} chains (seed {SEED}); landed in: "
          + ", ".join(f"{k} {v}" for k, v in sorted(landed.items())))
    # The draw covered the whole pipeline, not one corner of it.
    assert {"start", "wait", "pre-check", "lock"} & set(landed), landed
    steps = {p for p in landed if p.startswith(("schema ", "data "))}
    assert len(steps) >= min(3, kills // 4), landed
    if release == BEFORE_MODELS and kills >= 20:
        assert any(p.startswith("data ") for p in landed), landed
