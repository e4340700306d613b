"""The image, built with buildah from the debootstrap base and run with podman against real servers.

Every run here is as the image's own user (no --user: the image must default to non-root), with a
read-only root filesystem, all capabilities dropped, no privilege escalation, and only /tmp writable.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from podsim import PODMAN_BASE

from ragflow_migrate import __version__

pytestmark = pytest.mark.integration

LOCKED_DOWN = ["--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


def podman(image: str, args: list[str], env: dict[str, str] | None = None, *, extra: list[str] = (),
           entrypoint: list[str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    argv = [*PODMAN_BASE, *LOCKED_DOWN, *extra]
    for key, value in (env or {}).items():
        argv += ["--env", f"{key}={value}"]
    if entrypoint:
        argv += ["--entrypoint", json.dumps(entrypoint)]
    argv += [image, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def events(proc: subprocess.CompletedProcess) -> list[dict]:
    out = []
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def finished(proc: subprocess.CompletedProcess) -> dict:
    found = [e for e in events(proc) if e.get("event") == "run.finished"]
    assert len(found) == 1, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return found[0]


def test_image_metadata(built_image):
    info = json.loads(subprocess.run(["podman", "image", "inspect", built_image["id"]], capture_output=True,
                                     text=True, check=True).stdout)[0]
    config = info["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["ragflow-migrate"]
    assert config["Cmd"] == ["run"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.title"] == "ragflow-migrate"
    assert "org.opencontainers.image.source" in labels and "org.opencontainers.image.revision" in labels
    size_mb = info["Size"] / 1e6
    print(f"\nimage size {size_mb:.0f} MB")


def test_image_runs_as_numeric_non_root_with_precompiled_code_and_no_pip(built_image):
    script = (
        "import os, sys, pathlib, importlib.util\n"
        "missing = [str(p) for p in pathlib.Path(sys.prefix, 'lib').rglob('*.py')\n"
        "           if not pathlib.Path(importlib.util.cache_from_source(str(p))).exists()]\n"
        "print(os.getuid(), os.getgid(), len(missing), missing[:5], os.path.exists(sys.prefix + '/bin/pip'),\n"
        "      sys.flags.dont_write_bytecode)\n"
    )
    proc = podman(built_image["id"], ["-c", script], entrypoint=["/opt/ragflow-migrate/bin/python"])
    assert proc.returncode == 0, proc.stderr
    uid, gid, missing, sample, has_pip, no_bytecode = proc.stdout.split(" ", 5)
    assert (uid, gid) == ("10001", "10001")
    assert missing == "0", f"modules without byte-code: {sample}"
    assert has_pip == "False"
    assert no_bytecode.strip() == "1"


def test_version_and_exit_codes_pass_through_the_entrypoint(built_image):
    proc = podman(built_image["id"], ["--version"])
    assert proc.returncode == 0 and proc.stdout.strip() == f"ragflow-migrate {__version__}"
    # No host configured: a configuration error (2), which the Job's podFailurePolicy fails at once.
    proc = podman(built_image["id"], ["run"], {"RAGFLOW_MIGRATE_LOG_FORMAT": "json"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert finished(proc)["outcome"] == "config_error"
    # Nothing listens on this port: unreachable (3), which a new pod may fix.
    proc = podman(built_image["id"], ["wait"], {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "1",
                                                "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "1", "RAGFLOW_MIGRATE_LOG_FORMAT": "json"})
    assert proc.returncode == 3, proc.stdout + proc.stderr


def test_run_then_noop_read_only_as_the_image_user(built_image, database, tmp_path):
    """A full `run` on an empty database, then a no-op `run`; nothing written but the summary."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(mode=0o1777)
    tmp.chmod(0o1777)
    summary = tmp_path / "termination-log"
    summary.write_text("")
    summary.chmod(0o666)
    mounts = ["--volume", f"{tmp}:/tmp:rw", "--volume", f"{summary}:/dev/termination-log:rw"]
    env = {**database.env, "RAGFLOW_MIGRATE_LOG_FORMAT": "json", "POD_NAME": "ragflow-migrate-test"}
    env.pop("RAGFLOW_MIGRATE_TERMINATION_LOG", None)  # the default path, as in a pod

    first = podman(built_image["id"], [], env, extra=mounts)  # CMD: run
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    result = finished(first)
    assert result["outcome"] == "migrated" and result["steps"], result
    assert "tenant_model_provider" in database.tables()
    assert json.loads(summary.read_text())["outcome"] == "migrated"

    t0 = time.monotonic()
    second = podman(built_image["id"], ["run"], env, extra=mounts)
    wall = time.monotonic() - t0
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    noop = finished(second)
    assert noop["outcome"] == "noop" and noop["steps"] == []
    assert json.loads(summary.read_text())["outcome"] == "noop"
    print(f"\nno-op run on {database.server.label}: tool {noop['duration_s']:.3f}s, podman run {wall:.2f}s")
    # The tool wrote nothing else: /tmp (the only writable path) is still empty.
    assert list(tmp.iterdir()) == []
