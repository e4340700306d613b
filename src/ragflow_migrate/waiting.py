"""The wait for a database server, shared by every backend: tenacity, exponential back-off with
jitter under one overall deadline (the last attempt lands right at it), ``db.wait.attempt`` before
each sleep and ``db.ready`` at the end. Each backend brings its connection attempt and says which
failures are worth another attempt (transient) and what a final failure means (exit code)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import tenacity

from . import events, interrupt
from .config import Settings


def wait_until_ready(
    settings: Settings,
    log: Any,
    attempt: Callable[[], Any],
    *,
    is_transient: Callable[[BaseException], bool],
    describe: Callable[[BaseException], tuple[Any, str]],
    classify: Callable[[BaseException, Settings, float, int], Exception],
    driver_errors: tuple[type[BaseException], ...],
) -> Any:
    """``attempt()`` until it returns the server's identity (``ServerInfo``) or fails for good:
    a transient failure past the deadline, or any other one at once, raised as ``classify`` says."""
    started = time.monotonic()
    attempts = 0

    def counted() -> Any:
        nonlocal attempts
        attempts += 1
        return attempt()

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        code, reason = describe(exc) if exc else (None, "unknown")
        log.warning(
            events.DB_WAIT_ATTEMPT,
            attempt=state.attempt_number,
            reason=reason,
            error_code=code,
            elapsed_s=round(time.monotonic() - started, 2),
            retry_in_s=round(state.upcoming_sleep, 2),
            deadline_s=settings.wait_timeout,
            host=settings.host,
            port=settings.port,
        )

    def remaining_wait(state: tenacity.RetryCallState) -> float:
        # Never sleep past the deadline: the last attempt happens right at it.
        backoff = tenacity.wait_random_exponential(multiplier=0.25, max=10)(state)
        left = settings.wait_timeout - (time.monotonic() - started)
        return max(0.0, min(backoff, left))

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_delay(settings.wait_timeout),
        wait=remaining_wait,
        sleep=interrupt.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        info = retrying(counted)
    except (*driver_errors, OSError) as exc:
        raise classify(exc, settings, time.monotonic() - started, attempts) from None
    log.info(
        events.DB_READY,
        server=info.flavor,
        server_version=info.version_text,
        topology=info.topology.as_fields(),
        attempts=attempts,
        elapsed_s=round(time.monotonic() - started, 3),
    )
    return info
