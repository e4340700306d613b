"""The pages of one stage, worked on several database sessions at once.

A MySQL session runs one statement at a time, on one core of the server: a stage that works a
page at a time keeps one core busy and leaves the others idle (the merge's pages at L ran at
100% of one core of two). :func:`run` hands a stage's pages to ``lanes``: lane 0 is the work
connection (the run's own session), the others are sessions opened for the stage
(``ctx.open_session``) and closed after it. Each lane first sets up its own session
tables (``setup``), then takes the next page not yet taken until none is left.

Safety is that of one lane: each page is written as it would be on the work connection (its
own transactions, into tables nothing reads before the stage ends), so a stop or a kill leaves
what pages on one session would leave. The work connection's lane checkpoints after each page
(the advisory lock is still held, no stop was asked for); the other lanes check for a stop request. The
first error of any lane stops every lane after its current page and is raised. A session that
cannot be opened (``max_connections``, say) only means fewer lanes.

Where a page's work needs what only the work connection's session holds (stage 7's staged legacy
rows), the pages are instead read ahead on one session (:func:`read_ahead`) and written behind on
another (:func:`write_behind`), while the work connection does the middle part.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from .. import events, interrupt
from ..db import connect as db
from ..steps import RunContext
from . import staging

P = TypeVar("P")
L = TypeVar("L")
T = TypeVar("T")
_END = object()
_POLL = 0.1  # seconds between looks at a stop request while a queue is full or empty


def count(ctx: RunContext, pages: int) -> int:
    """How many lanes a stage of ``pages`` pages gets (never more lanes than pages)."""
    wanted = int(getattr(ctx.settings, "sessions", 1) or 1)
    if ctx.open_session is None:
        return 1
    return max(1, min(wanted, pages))


def run(ctx: RunContext, step: str, pages: Sequence[P], *, setup: Callable[[RunContext, int], L],
        work: Callable[[L, P], Any], finish: Callable[[L], None] | None = None,
        progress: Callable[[int], None] | None = None) -> list[L]:
    """Work every page of ``pages`` exactly once, on :func:`count` lanes.

    ``setup(lane_ctx, i)`` builds lane ``i``'s state (lane 0 runs on ``ctx`` itself, first, on
    this thread; the others on their own threads, with a context whose ``conn`` is their session
    and which holds no lock); ``work(state, page)`` does one page; ``finish(state)`` runs for each
    other lane on this thread after every page is done, while its session is still open (to
    gather what it holds); ``progress(pages_done)`` is called on this thread after each of lane
    0's pages. Returns the lanes' states, lane 0 first."""
    wanted = count(ctx, len(pages))
    sessions = _open(ctx, step, wanted - 1)
    guard = threading.Lock()
    remaining = iter(pages)
    stop = threading.Event()
    errors: list[BaseException] = []
    states: list[Any] = [None] * (len(sessions) + 1)
    done = [0]

    def take() -> tuple[bool, Any]:
        with guard:
            if stop.is_set():
                return False, None
            for page in remaining:
                return True, page
            return False, None

    def finished_one() -> int:
        with guard:
            done[0] += 1
            return done[0]

    def helper(i: int, conn: Any) -> None:
        try:
            states[i] = setup(_lane_ctx(ctx, conn), i)
            while True:
                interrupt.check()
                more, page = take()
                if not more:
                    return
                work(states[i], page)
                finished_one()
        except BaseException as exc:  # noqa: BLE001 - handed to the work connection's lane, raised there
            with guard:
                errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=helper, args=(i + 1, conn), name=f"{step} lane {i + 1}", daemon=True)
               for i, conn in enumerate(sessions)]
    try:
        try:
            states[0] = setup(ctx, 0)
            for thread in threads:
                thread.start()
            while True:
                more, page = take()
                if not more:
                    break
                work(states[0], page)
                n = finished_one()
                ctx.checkpoint()
                if progress is not None:
                    progress(n)
        except BaseException:
            stop.set()
            raise
        finally:
            for thread in threads:
                if thread.ident is not None:  # started
                    thread.join()
        if errors:
            raise errors[0]
        if finish is not None:
            for state in states[1:]:
                finish(state)
    finally:
        for conn in sessions:
            db.close_quietly(conn)
    return states


def helpers(ctx: RunContext) -> int:
    """Sessions a stage may open beside the work connection."""
    return count(ctx, 1 << 30) - 1


@contextlib.contextmanager
def read_ahead(ctx: RunContext, step: str, produce: Callable[[RunContext], Iterable[T]],
               *, depth: int = 4, own_session: bool = True) -> Iterator[Iterator[T]]:
    """``with read_ahead(ctx, step, produce) as items: for item in items: …``: ``produce(lane_ctx)``
    runs on a session of its own, up to ``depth`` items ahead of the caller (on ``ctx`` itself, in
    step, when ``own_session`` is false or no session may or can be opened). Its error is raised to
    the caller; leaving the block stops it. ``produce`` checkpoints its context between items (on
    its own session that only checks for a stop request), and ``ctx`` is checkpointed here before
    each item reaches the caller, so the caller need not."""
    sessions = _open(ctx, step, 1) if own_session and helpers(ctx) >= 1 else []
    if not sessions:
        yield iter(produce(ctx))
        return
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                items.put(entry, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in produce(_lane_ctx(ctx, sessions[0])):
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - raised on the caller's thread
            put(("error", exc))

    def consume() -> Iterator[T]:
        while True:
            try:
                kind, value = items.get(timeout=_POLL)
            except queue.Empty:
                interrupt.check()
                continue
            if kind == "end":
                return
            if kind == "error":
                raise value
            ctx.checkpoint()  # the advisory lock, on this thread (the reader's context has none)
            yield value

    thread = threading.Thread(target=run, name=f"{step} reader", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()
        db.close_quietly(sessions[0])


@contextlib.contextmanager
def write_behind(ctx: RunContext, step: str, setup: Callable[[RunContext], L], write: Callable[[L, T], Any],
                 *, depth: int = 2, own_session: bool = True) -> Iterator[Callable[[T], None]]:
    """``with write_behind(ctx, step, setup, write) as submit: submit(item)``: ``write(state, item)``
    runs on a session of its own (``state = setup(lane_ctx)``), in submission order, up to ``depth``
    items behind the caller (on ``ctx`` itself, at once, when ``own_session`` is false or no session
    may or can be opened: then ``setup`` runs on ``ctx``). Leaving the block normally waits until every
    item is written and raises the writer's error, if any; leaving it on an error drops what is not
    written yet."""
    sessions = _open(ctx, step, 1) if own_session and helpers(ctx) >= 1 else []
    if not sessions:
        state = setup(ctx)
        yield lambda item: write(state, item)
        return
    items: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    errors: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        try:
            state = setup(_lane_ctx(ctx, sessions[0]))
            while not stop.is_set():
                try:
                    item = items.get(timeout=_POLL)
                except queue.Empty:
                    continue
                if item is _END:
                    return
                write(state, item)
        except BaseException as exc:  # noqa: BLE001 - raised on the caller's thread
            errors.append(exc)

    def submit(item: Any) -> None:
        while True:
            if errors:
                raise errors[0]
            try:
                items.put(item, timeout=_POLL)
                return
            except queue.Full:
                interrupt.check()

    thread = threading.Thread(target=run, name=f"{step} writer", daemon=True)
    thread.start()
    try:
        try:
            yield submit
            submit(_END)
            thread.join()
        except BaseException:
            stop.set()
            thread.join()
            raise
        if errors:
            raise errors[0]
    finally:
        db.close_quietly(sessions[0])


def _lane_ctx(ctx: RunContext, conn: Any) -> RunContext:
    """``ctx`` on another session: no lock to check (lane 0 checks it), no session to open, none of
    the work connection's staging tables (session tables: the new session has its own, if any)."""
    extras = {k: v for k, v in ctx.extras.items() if k not in staging.SESSION_CACHES}
    return dataclasses.replace(ctx, conn=conn, lock=None, open_session=None, extras=extras, _checkpoint_hooks=[])


def _open(ctx: RunContext, step: str, n: int) -> list[Any]:
    sessions: list[Any] = []
    for _ in range(n):
        try:
            sessions.append(ctx.open_session())
        except Exception as exc:  # noqa: BLE001 - fewer lanes, same result
            ctx.log.info(events.STEP_NOTICE, step=step,
                         message=f"working on {len(sessions) + 1} session(s): another could not be opened ({exc})")
            break
    return sessions
