"""Helpers of the cluster suites: many runners at once, each logging to a file of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

import relkit  # noqa: E402


def run_all(envs: list[dict[str, str]], folder: Path, timeout: float = 300) -> list[relkit.Result]:
    """``run`` started at once in every environment of ``envs``; their results, in that order.

    Each runner logs to a file: a pipe nobody reads while another runner is waited for fills up,
    blocks its writer, and a writer that holds the lock then holds it forever."""
    procs = []
    for i, env in enumerate(envs):
        out = open(folder / f"runner-{i}.log", "w+")  # noqa: SIM115 - closed below
        procs.append((subprocess.Popen([relkit.PYTHON, "-m", "ragflow_migrate", "run"], env=relkit.tool_env(env),
                                       stdout=out, stderr=subprocess.STDOUT, text=True), out))
    results = []
    for proc, out in procs:
        try:
            proc.wait(timeout=timeout)
        finally:
            proc.kill()
            out.seek(0)
            text = out.read()
            out.close()
        lines = [line for line in text.splitlines() if line.startswith("{")]
        results.append(relkit.Result(proc.returncode, text, "", relkit.parse_events("\n".join(lines)), proc.pid))
    return results
