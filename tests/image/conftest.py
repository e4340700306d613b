"""Fixtures of the image tests: the image built once per session (cached by content hash), and scratch
databases on the harness's MariaDB (tests/conftest.py)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _missing(what: str) -> None:
    message = f"{what}; the image tests need root, buildah and podman (tests/tools/install.sh image)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def built_image() -> dict[str, str]:
    """Build (or reuse) the image with image/build.sh. Returns its reference and immutable id."""
    if os.geteuid() != 0:
        _missing("not root")
    if not all(shutil.which(p) for p in ("buildah", "podman", "debootstrap", "runc")):
        # Debian packages, installed once (~30 s); the installer is idempotent and locked.
        proc = subprocess.run(["bash", str(REPO / "tests" / "tools" / "install.sh"), "image"], capture_output=True,
                              text=True, timeout=900)
        for program in ("buildah", "podman", "debootstrap", "runc"):
            if shutil.which(program) is None:
                _missing(f"{program} is not installed and tests/tools/install.sh image failed: {proc.stderr[-2000:]}")
    started = time.monotonic()
    proc = subprocess.run(["bash", str(REPO / "image" / "build.sh")], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"image/build.sh failed ({proc.returncode}):\n{proc.stderr[-6000:]}", pytrace=False)
    ref = proc.stdout.strip().splitlines()[-1]
    image_id = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True,
                              text=True, check=True).stdout.strip()
    print(f"\nimage {ref} ({image_id[:12]}) ready in {time.monotonic() - started:.1f}s")
    repository, tag = ref.rsplit(":", 1)
    return {"ref": ref, "id": image_id, "repository": repository, "tag": tag}


class ScratchDatabase:
    """A database of its own on the harness's MariaDB, dropped at the end of the test."""

    def __init__(self, server, name: str) -> None:
        self.server, self.name = server, name
        server.create_database(name)

    def env(self, user: str = "root", password: str = "") -> dict[str, str]:
        return self.server.env(self.name, user=user, password=password)

    def load_release(self, release: str) -> int:
        return self.server.load_sql(self.name, self.server.schema_file(release))

    def tables(self) -> list[str]:
        rows = self.server.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                                 "ORDER BY table_name", (self.name,))
        return [r[0] for r in rows]

    def query(self, sql: str, args=None):
        return self.server.query(sql, args, database=self.name)

    def drop(self) -> None:
        try:
            self.server.ensure_running().drop_database(self.name)
        except Exception as exc:  # noqa: BLE001 - never hide the test's own outcome
            print(f"warning: could not drop {self.name}: {exc}")


@pytest.fixture
def scratch_db(mariadb_server, request):
    name = f"img_{request.node.name[:30]}_{secrets.token_hex(3)}".replace("[", "_").replace("]", "_").replace("-", "_")
    db = ScratchDatabase(mariadb_server.ensure_running(), name[:64])
    yield db
    db.drop()
