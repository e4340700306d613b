"""Run the CLI, SIGKILL-ing itself right after its N-th migration statement.

    python killer.py N run [args...]

A test helper, not part of the tool: it wraps the statement executor the schema steps use,
so that a kill lands exactly between two statements (MySQL DDL commits each one).
"""

import os
import signal
import sys

from ragflow_migrate.schema import executor, steps

limit = int(sys.argv[1])
original = executor.execute_statement
count = 0


def execute_then_maybe_die(*args, **kwargs):
    global count
    result = original(*args, **kwargs)
    count += 1
    if count >= limit:
        os.kill(os.getpid(), signal.SIGKILL)
    return result


executor.execute_statement = execute_then_maybe_die
steps.execute_statement = execute_then_maybe_die

from ragflow_migrate.cli import main  # noqa: E402

sys.exit(main(sys.argv[2:]))
