"""Failure classes and the exit code each one maps to.

Every failure the tool can foresee is one of the exceptions below; the CLI turns it into
its exit code and a final summary event. The codes are part of the tool's contract (the
Helm chart's ``podFailurePolicy`` acts on them), so they never change meaning.

When in doubt, raise one of these and explain the situation to the user: what happened,
where (flag, variable, file:key, table, row), and what to do about it.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes. ``retryable`` says whether running again, unchanged, can help."""

    OK = 0  # success, or nothing to do
    INTERNAL = 1  # a bug: an exception the tool did not foresee
    CONFIG = 2  # bad flag, environment variable, file or catalogue
    UNREACHABLE = 3  # the database did not answer before the wait deadline
    AUTH = 4  # access denied or a missing privilege
    LOCK_TIMEOUT = 5  # another runner (or RAGFlow's startup) held the lock too long
    LOCK_LOST = 6  # the connection holding the lock died mid-run
    STEP_FAILED = 7  # a migration step failed; the database is safe to run again
    DRIFT = 8  # the live schema differs from the target release
    DB_NEWER = 9  # the database is at a release this tool does not know
    DATA_REJECTED = 10  # legacy rows that cannot be migrated without losing data
    INTERRUPTED = 11  # SIGTERM/SIGINT: stopped at a safe point
    PENDING = 12  # `status --check` / `wait-for-version`: work is still pending

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {
        ExitCode.UNREACHABLE,
        ExitCode.LOCK_TIMEOUT,
        ExitCode.LOCK_LOST,
        ExitCode.STEP_FAILED,
        ExitCode.INTERRUPTED,
        ExitCode.PENDING,
    }
)


class MigrateError(Exception):
    """Base of every foreseen failure. ``hint`` tells the user what to do next."""

    exit_code: ExitCode = ExitCode.INTERNAL
    outcome: str = "failed"

    def __init__(self, message: str, *, hint: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def as_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {"error": self.message, "error_class": type(self).__name__}
        if self.hint:
            fields["hint"] = self.hint
        fields.update(self.details)
        return fields


class ConfigError(MigrateError):
    exit_code = ExitCode.CONFIG
    outcome = "config_error"


class UnreachableError(MigrateError):
    exit_code = ExitCode.UNREACHABLE
    outcome = "unreachable"


class AuthError(MigrateError):
    exit_code = ExitCode.AUTH
    outcome = "auth_error"


class LockTimeoutError(MigrateError):
    exit_code = ExitCode.LOCK_TIMEOUT
    outcome = "lock_timeout"


class LockLostError(MigrateError):
    exit_code = ExitCode.LOCK_LOST
    outcome = "lock_lost"


class StepFailedError(MigrateError):
    exit_code = ExitCode.STEP_FAILED
    outcome = "step_failed"


class DriftError(MigrateError):
    exit_code = ExitCode.DRIFT
    outcome = "drift"


class DatabaseNewerError(MigrateError):
    exit_code = ExitCode.DB_NEWER
    outcome = "database_newer"


class DataRejectedError(MigrateError):
    exit_code = ExitCode.DATA_REJECTED
    outcome = "data_rejected"


class InterruptedRun(MigrateError):
    exit_code = ExitCode.INTERRUPTED
    outcome = "interrupted"


class PendingError(MigrateError):
    exit_code = ExitCode.PENDING
    outcome = "pending"
