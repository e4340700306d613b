"""Run the CLI with a fault injected: a driver-like error that carries the password in its
message (as some libraries do with connection strings), raised in the middle of ``run``.

    python inject_failure.py run [args...]

A test helper, not part of the tool: it proves that the password is redacted from the error,
the traceback and the termination message even when an exception carries it.
"""

import os
import sys

from ragflow_migrate import runner

original = runner.run


def failing_run(ctx, planner, report=None):
    secret = os.environ.get("MYSQL_PASSWORD", "")
    raise RuntimeError(f"driver failed: mysql://{ctx.settings.user}:{secret}@{ctx.settings.host}/")


runner.run = failing_run

from ragflow_migrate.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
