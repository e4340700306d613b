"""What every run lock shares, whatever the server: one runner migrates, the others wait.

A backend's lock (``db.lock.AdvisoryLock`` for MySQL's ``GET_LOCK``, ``db.cluster_lock.ClusterLock``
for a cluster's node locks and lease, ``backends.postgres.lock.PgAdvisoryLock`` for
``pg_advisory_lock``) subclasses :class:`RunLock` and supplies the server's side: how to open its
session, ask once (:meth:`RunLock._try`), let go, say who holds the lock and whether this run
still does. This class owns the lifecycle around it, identical for all of them:

* ``with lock:`` acquires on entry and releases on exit (a failed acquire closes the session);
* the wait is bounded (``--lock-timeout``) and polled in slices (``--lock-poll``); the first try
  does not wait, so a runner that has to wait names the holder at once; every slice that ends
  without the lock logs the holder; the timeout's error names it too;
* once the lock is held, statements an earlier runner's work sessions are still running are
  awaited (:meth:`RunLock._drain`): a runner killed mid-statement frees the lock at once (its idle
  lock session ends), while the server finishes that statement on the work session (it notices
  the missing client only when it answers), a DDL committing behind the next runner's back;
* :meth:`RunLock.verify` (before every step) raises :class:`LockLostError` once the lock's
  session failed or no longer holds it, and closes that session.
"""

from __future__ import annotations

import time
from typing import Any

from . import events, interrupt
from .errors import LockLostError, LockTimeoutError


class RunLock:
    """The lifecycle; subclasses set ``settings``, ``name``, ``log``, ``conn`` and implement the hooks."""

    settings: Any
    name: str
    log: Any
    conn: Any = None
    #: The lock session's id on the server (MySQL's CONNECTION_ID(), PostgreSQL's backend pid).
    connection_id: int | None = None
    acquired_at: float | None = None
    #: Announce acquiring and releasing (a cluster's per-node locks leave that to the cluster lock).
    announce: bool = True
    #: What the lock is, in messages.
    kind = "advisory lock"
    #: What the lock lives on, in messages ("connection", "session").
    session_word = "connection"
    #: Errors that mean the lock's session failed (the driver's, and the socket's).
    session_errors: tuple[type[BaseException], ...] = (OSError,)

    # -- hooks -------------------------------------------------------------------------------

    def _open(self) -> None:
        """Open the lock's own session (``self.conn``)."""
        raise NotImplementedError

    def _try(self, slice_s: float) -> bool:
        """Ask for the lock once, waiting at most ``slice_s`` seconds (0: do not wait)."""
        raise NotImplementedError

    def _unlock(self) -> None:
        """Let go of the lock (its session stays open)."""
        raise NotImplementedError

    def _after_release(self) -> None:
        """Clean-up on the lock's session after letting go, held or not (nothing by default)."""

    def holds(self) -> bool:
        """Whether this lock's session holds it now (the driver's error when the session failed)."""
        raise NotImplementedError

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock now, as far as this account can see; None when free."""
        raise NotImplementedError

    def _timeout_error(self, holder: dict[str, Any] | None, timeout: float) -> LockTimeoutError:
        raise NotImplementedError

    def _error_text(self, exc: BaseException) -> str:
        return str(exc)

    def in_flight(self) -> list[dict[str, Any]]:
        """Statements other runners' work sessions are running now, as ``{"id", "time_s",
        "statement"}`` (``time_s``: how long it has run); empty where the server cannot tell."""
        return []

    def _event_fields(self) -> dict[str, Any]:
        """Extra fields of this lock's acquired / waiting events."""
        return {}

    def close(self) -> None:
        """Close the lock's session (which frees the lock, if held)."""
        raise NotImplementedError

    # -- the lifecycle -----------------------------------------------------------------------

    def acquire(self, timeout: float | None = None) -> None:
        timeout = self.settings.lock_timeout if timeout is None else timeout
        try:
            self._open()
            self._wait(timeout)
        except BaseException:
            self.close()
            raise

    def _wait(self, timeout: float) -> None:
        started = time.monotonic()
        tries = 0
        while True:
            interrupt.check()
            waited = time.monotonic() - started
            # The first try does not wait: a runner that has to wait says so, naming the holder, at
            # once (not only after a whole poll slice, which may outlast the holder's work).
            slice_s = 0.0 if tries == 0 else max(0.0, min(self.settings.lock_poll, timeout - waited))
            tries += 1
            if self._try(slice_s):
                self._drain(started, timeout)
                self.acquired_at = time.monotonic()
                if self.announce:
                    self.log.info(events.LOCK_ACQUIRED, lock=self.name, connection_id=self.connection_id,
                                  waited_s=round(self.acquired_at - started, 3), **self._event_fields())
                return
            waited = time.monotonic() - started
            holder = self.holder()
            if waited >= timeout:
                raise self._timeout_error(holder, timeout)
            self.log.info(events.LOCK_WAITING, lock=self.name, holder=holder, waited_s=round(waited, 1),
                          timeout_s=timeout, **self._event_fields())

    def _drain(self, started: float, timeout: float) -> None:
        """Wait (within what is left of ``timeout``, at least one poll slice) until every statement
        another runner was running when the lock came is over: a session gone, idle or running
        something else. Statements started later are not awaited (a runner without the lock only
        reads). A drain that outlasts its time is a lock timeout: nothing was changed."""
        pending = {s["id"]: s for s in self.in_flight()}
        if not pending:
            return
        drain_started = time.monotonic()
        deadline = max(started + timeout, drain_started + self.settings.lock_poll)
        logged = -1.0
        while pending:
            waited = time.monotonic() - drain_started
            if waited - logged >= self.settings.lock_poll:
                logged = waited
                self.log.warning(events.LOCK_DRAINING, lock=self.name, sessions=list(pending.values()),
                                 waited_s=round(waited, 1))
            if time.monotonic() >= deadline:
                first = next(iter(pending.values()))
                raise LockTimeoutError(
                    f"lock {self.name!r} acquired, but a statement an earlier runner sent is still running "
                    f"after {waited:.0f}s (session {first['id']}: {first['statement']})",
                    hint="a killed runner's last statement goes on until the server finishes it; run again "
                    "once it is over (nothing was changed), or raise --lock-timeout",
                    holder={"sessions": list(pending.values())},
                )
            interrupt.check()
            time.sleep(min(0.2, self.settings.lock_poll))
            now = {s["id"]: s for s in self.in_flight()}
            pending = {i: s for i, s in pending.items()
                       if i in now and now[i]["statement"] == s["statement"] and now[i]["time_s"] >= s["time_s"]}

    def release(self) -> None:
        if self.conn is None:
            return
        held = time.monotonic() - self.acquired_at if self.acquired_at else 0.0
        try:
            if self.acquired_at is not None:
                self._unlock()
                if self.announce:
                    self.log.info(events.LOCK_RELEASED, lock=self.name, held_s=round(held, 3))
            self._after_release()
        except self.session_errors:
            pass  # the session is gone, and the lock with it
        finally:
            self.close()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    # -- ownership ---------------------------------------------------------------------------

    def verify(self) -> None:
        """Raise :class:`LockLostError` unless this run still holds the lock."""
        self._check_open()
        try:
            held = self.holds()
        except self.session_errors as exc:
            self._lost(f"the lock {self.session_word} failed: {self._error_text(exc)}")
        else:
            if not held:
                self._lost(f"the lock is no longer held by this run's {self.session_word}")

    def _check_open(self) -> None:
        if self.conn is None or self.acquired_at is None:
            raise LockLostError(f"lock {self.name!r} is not held")

    def _lost(self, reason: str) -> None:
        self.log.error(events.LOCK_LOST, lock=self.name, reason=reason)
        self.close()
        raise LockLostError(
            f"lost the {self.kind} {self.name!r}: {reason}",
            hint="the run stopped before its next step; run it again (another runner may be "
            "finishing the work)",
        )
