"""The closed vocabulary of log events: every event the tool emits is named here, once.

Each line of the JSON log carries ``timestamp`` (ISO 8601, UTC), ``level``, ``event`` (one of the
names below), ``run_id`` and the event's own fields. The README's event table is checked
against this module by the tests.
"""

from __future__ import annotations

from typing import NamedTuple


class EventSpec(NamedTuple):
    name: str
    description: str
    fields: tuple[str, ...]


_SPECS = (
    EventSpec("run.started", "a command starts", ("command", "version", "target", "settings")),
    EventSpec("db.wait.attempt", "MySQL is not reachable yet; the next attempt follows",
              ("attempt", "reason", "error_code", "elapsed_s", "retry_in_s", "deadline_s", "host", "port")),
    EventSpec("db.ready", "MySQL answered; `topology`: stand-alone, Galera (size, node state, OSU method, nodes), "
              "Group Replication (mode, role, members) or a read-only replica",
              ("server", "server_version", "topology", "attempts", "elapsed_s")),
    EventSpec("db.created", "the database did not exist and was created (--create-database)",
              ("database", "charset", "collation")),
    EventSpec("lock.waiting", "another session holds the advisory lock (on a cluster: `node`, or the lease's holder)",
              ("lock", "holder", "waited_s", "timeout_s", "node")),
    EventSpec("lock.acquired", "this run holds the advisory lock (on a cluster: the nodes locked and the lease token)",
              ("lock", "connection_id", "waited_s", "topology", "nodes", "lease_token")),
    EventSpec("lock.draining", "the lock is held, but statements an earlier runner sent (a killed runner's last, "
              "still running on the server) are awaited before the first read", ("lock", "sessions", "waited_s")),
    EventSpec("lock.released", "the advisory lock was released", ("lock", "held_s")),
    EventSpec("lock.lost", "the connection holding the lock is gone; the run stops", ("lock", "reason")),
    EventSpec("preflight.finished", "every pending step was checked before the first write (blockers stop the run)",
              ("steps", "blockers", "widenings", "duration_s")),
    EventSpec("plan.ready", "what this run will do", ("state", "release", "target", "pending", "count", "notes")),
    EventSpec("step.started", "a migration step starts", ("step", "kind", "release")),
    EventSpec("step.progress", "progress of a long step",
              ("step", "done", "total", "unit", "percent", "elapsed_s", "rate_per_s", "eta_s")),
    EventSpec("step.waiting", "a step waits for something; the reason says what",
              ("step", "reason", "attempt", "waited_s", "retry_in_s", "blocker", "pending")),
    EventSpec("step.statement", "a statement a step ran, with the ALTER algorithm used (COPY is a warning)",
              ("step", "sql", "algorithm", "duration_s", "rows", "note")),
    EventSpec("step.notice", "something a step decided that an operator should know",
              ("step", "message", "count", "sample")),
    EventSpec("step.finished", "a step completed", ("step", "duration_s", "rows", "changes")),
    EventSpec("step.skipped", "a step had nothing to do", ("step", "reason")),
    EventSpec("step.failed", "a step failed; the database is safe to run again (plus the error's details)",
              ("step", "error", "error_class", "hint")),
    EventSpec("schema.drift", "the live schema differs from the target release",
              ("target", "count", "differences")),
    EventSpec("signal.received", "SIGTERM or SIGINT; the run stops at the next safe point", ("signal",)),
    EventSpec("run.finished", "the summary of the run, also written to the termination-message file: the "
              "state and release after the run (before it: from_*), the steps (plus the error's details on failure)",
              ("command", "outcome", "exit_code", "duration_s", "database", "target", "state", "release",
               "from_state", "from_release", "steps", "error", "error_class", "hint")),
    EventSpec("log.external", "a message from a library (peewee, peewee-migrate, tenacity, pymysql)",
              ("logger", "message")),
)

EVENTS: dict[str, EventSpec] = {spec.name: spec for spec in _SPECS}

RUN_STARTED = "run.started"
DB_WAIT_ATTEMPT = "db.wait.attempt"
DB_READY = "db.ready"
DB_CREATED = "db.created"
LOCK_WAITING = "lock.waiting"
LOCK_ACQUIRED = "lock.acquired"
LOCK_DRAINING = "lock.draining"
LOCK_RELEASED = "lock.released"
LOCK_LOST = "lock.lost"
PREFLIGHT_FINISHED = "preflight.finished"
PLAN_READY = "plan.ready"
STEP_STARTED = "step.started"
STEP_PROGRESS = "step.progress"
STEP_WAITING = "step.waiting"
STEP_STATEMENT = "step.statement"
STEP_NOTICE = "step.notice"
STEP_FINISHED = "step.finished"
STEP_SKIPPED = "step.skipped"
STEP_FAILED = "step.failed"
SCHEMA_DRIFT = "schema.drift"
SIGNAL_RECEIVED = "signal.received"
RUN_FINISHED = "run.finished"
LOG_EXTERNAL = "log.external"

assert set(EVENTS) == {v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str) and "." in v}
