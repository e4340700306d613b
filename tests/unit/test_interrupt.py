"""A stop signal that arrives while the tool is writing a log line must neither hang nor be lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# In a child process: the log stream sends SIGTERM to its own process in the middle of a write, i.e.
# while structlog holds the stream's lock. A handler that logged from inside would wait for that lock
# forever.
_CHILD = textwrap.dedent("""
    import os, signal, sys, threading
    from ragflow_migrate import events, interrupt, logs

    class Stream:
        sent = False
        def write(self, text):
            if not Stream.sent:
                Stream.sent = True
                os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before this write returns
            sys.stdout.write(text)
        def flush(self):
            sys.stdout.flush()

    logs.configure(fmt="json", stream=Stream())
    log = logs.get_logger()
    interrupt.install(lambda name: log.warning(events.SIGNAL_RECEIVED, signal=name))
    log.info(events.STEP_SKIPPED, step="schema:v0.21.0", reason="already applied")
    for thread in threading.enumerate():  # the report, written by its own thread: let it finish first
        if thread is not threading.main_thread():
            thread.join(10)
    print("requested", interrupt.requested(), flush=True)
""")


def test_a_signal_during_a_log_write_is_reported_without_a_deadlock():
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert "requested True" in done.stdout
    assert '"event":"signal.received"' in done.stdout and '"signal":"SIGTERM"' in done.stdout, done.stdout
    assert '"event":"step.skipped"' in done.stdout
