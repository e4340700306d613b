"""``step.progress``: throttled, each count logged once, the last event carrying the final count."""

from __future__ import annotations

from typing import Any

import pytest

from ragflow_migrate import events, steps


class ListLog:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.records.append((event, fields))

    def progress(self) -> list[tuple[int, int | None, str]]:
        return [(f["done"], f["total"], f["unit"]) for e, f in self.records if e == events.STEP_PROGRESS]


@pytest.fixture
def clock(monkeypatch):
    """A monotonic clock the test moves by hand."""
    now = [1000.0]
    monkeypatch.setattr(steps.time, "monotonic", lambda: now[0])
    return now


def progress(total: int | None, unit: str = "rows", every_s: float = 2.0) -> tuple[steps.Progress, ListLog]:
    log = ListLog()
    ctx = steps.RunContext(settings=None, log=log, run_id="r")
    return steps.Progress(ctx, "data x", total, unit, every_s=every_s), log


def test_a_final_emit_after_an_advance_that_logged_the_same_count_logs_nothing(clock):
    p, log = progress(10)
    p.advance(10)  # the first advance logs at once
    p.emit()  # what every stage does at its end
    assert log.progress() == [(10, 10, "rows")]


def test_the_final_emit_logs_the_count_the_throttle_held_back(clock):
    p, log = progress(30)
    p.advance(10)
    clock[0] += 0.5
    p.advance(10)  # within the throttle: not logged
    clock[0] += 0.5
    p.advance(10)
    p.emit()
    p.emit()
    assert log.progress() == [(10, 30, "rows"), (30, 30, "rows")]


def test_throttled_advances_log_each_count_once(clock):
    p, log = progress(None, unit="JSON values")
    for _ in range(5):
        p.advance(1)
        clock[0] += 3
        p.advance(0)  # nothing new after the throttle: no repeat
        clock[0] += 3
    p.emit()
    got = log.progress()
    assert got == [(n, None, "JSON values") for n in range(1, 6)]
    assert len(set(got)) == len(got)


def test_force_logs_only_what_changed(clock):
    p, log = progress(4)
    p.advance(2, force=True)
    p.advance(0, force=True)
    p.advance(2, force=True)
    p.emit()
    assert log.progress() == [(2, 4, "rows"), (4, 4, "rows")]


def test_a_changed_total_is_a_new_event(clock):
    p, log = progress(None)
    p.advance(5)
    p.total = 5
    p.emit()
    assert log.progress() == [(5, None, "rows"), (5, 5, "rows")]


def test_an_emit_alone_logs_once_and_the_fields_are_complete(clock):
    p, log = progress(200)
    clock[0] += 4
    p.done = 100
    p.emit()
    p.emit()
    (event, fields), = log.records
    assert event == events.STEP_PROGRESS
    assert fields == {"step": "data x", "done": 100, "total": 200, "unit": "rows", "elapsed_s": 4.0,
                      "rate_per_s": 25.0, "percent": 50.0, "eta_s": 4.0}


def test_the_throttle_counts_from_the_last_logged_event(clock):
    p, log = progress(100)
    p.advance(1)  # logged (t=0)
    clock[0] += 1.5
    p.advance(0)  # nothing new, and within the throttle
    clock[0] += 1.0
    p.advance(1)  # 2.5 s after the last event: logged
    clock[0] += 1.0
    p.advance(1)  # 1 s after it: held back
    assert log.progress() == [(1, 100, "rows"), (2, 100, "rows")]
    p.emit()
    assert log.progress()[-1] == (3, 100, "rows")


def test_nothing_counted_is_not_progress(clock):
    p, log = progress(0, unit="models")
    p.advance(0)
    p.emit()
    clock[0] += 5
    p.advance(0, force=True)
    assert log.progress() == []
    p.advance(3)  # once something is counted, it is logged, and so is a later change of it
    p.total = 3
    p.emit()
    assert log.progress() == [(3, 0, "models"), (3, 3, "models")]
