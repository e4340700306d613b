"""SIGTERM/SIGINT handling: a request to stop, honoured at the next safe point.

The handler only records the request (and has a thread report it). Work checks :func:`check` between statements and
batches (via the runner's checkpoint) and waits sleep with :func:`sleep`, which wakes up at
once when a stop is requested. Kubernetes sends SIGTERM and, after the grace period, SIGKILL;
everything the tool does is safe to resume after either.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from .errors import InterruptedRun

_stop = threading.Event()
_signal_name: list[str] = []


def install(on_signal: Callable[[str], None] | None = None) -> None:
    """Install handlers for SIGTERM and SIGINT (main thread only)."""
    _stop.clear()
    _signal_name.clear()

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        first = not _stop.is_set()
        _signal_name.append(name)
        _stop.set()
        if first and on_signal is not None:
            # Not from here: the handler runs between two bytecodes of the main thread, which may be
            # inside the logger, holding its lock (a deadlock: the run hung until SIGKILL). A thread
            # reports the signal as soon as the logger is free; the interpreter waits for it at exit.
            threading.Thread(target=on_signal, args=(name,), name="signal-report").start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def requested() -> bool:
    return _stop.is_set()


def check() -> None:
    """Raise :class:`InterruptedRun` when a stop was requested."""
    if _stop.is_set():
        name = _signal_name[0] if _signal_name else "signal"
        raise InterruptedRun(
            f"stopped on {name} at a safe point",
            hint="run again: the migration resumes where it stopped",
        )


def sleep(seconds: float) -> None:
    """Sleep, but wake up (and raise) as soon as a stop is requested."""
    if _stop.wait(max(0.0, seconds)):
        check()


def reset() -> None:
    _stop.clear()
    _signal_name.clear()
