"""Render the chart with the real helm binary and read what it renders.

Tools come from ``tests/tools/install.sh`` (``$REPO/.tools/bin``) or the PATH. When one is missing the
test is skipped locally, and fails in CI (``CI`` set), where a silent skip would hide a broken install.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "ragflow-migrate"
PATCH = CHART / "ragflow-chart.patch"
FIXTURE_RAGFLOW = Path(__file__).resolve().parent / "fixtures" / "ragflow"
TOOLS_BIN = Path(os.environ.get("TOOLS", REPO / ".tools")) / "bin"
KUBE_VERSIONS = [f"1.{minor}.0" for minor in range(27, 35)]  # 1.27 … 1.34
DEFAULT_KUBE = "1.30.0"


def _find(name: str) -> str | None:
    for candidate in (TOOLS_BIN / name, shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


_INSTALL_TRIED: list[str] = []


def tool(name: str) -> str:
    """Path of a test tool. A missing one is installed once per session (tests/tools/install.sh chart: PyPI
    only, ~40 s cold); if that fails too, the test is skipped locally and fails in CI (``CI`` set)."""
    found = _find(name)
    if found:
        return found
    if not _INSTALL_TRIED and not os.environ.get("RAGFLOW_MIGRATE_NO_TOOL_INSTALL"):
        proc = subprocess.run(["bash", str(REPO / "tests" / "tools" / "install.sh"), "chart"],
                              capture_output=True, text=True, timeout=900)
        _INSTALL_TRIED.append(proc.stderr[-2000:] + proc.stdout[-2000:])
        found = _find(name)
        if found:
            return found
    message = f"{name} is not installed and tests/tools/install.sh chart did not install it: " + \
        (_INSTALL_TRIED[0] if _INSTALL_TRIED else "(not tried)")
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def run(cmd: Sequence[str], *, check: bool = True, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout[-2000:]}")
    return proc


def _values_args(values: dict | None, sets: Iterable[str]) -> list[str]:
    args: list[str] = []
    if values:
        # --set-json per top-level key keeps types exact and needs no temporary file.
        for key, value in values.items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
    for item in sets:
        args += ["--set", item]
    return args


@functools.lru_cache(maxsize=256)
def _template(chart: str, release: str, namespace: str, kube: str, values_json: str, sets: tuple[str, ...],
              show_only: tuple[str, ...], upgrade: bool) -> tuple[int, str, str]:
    cmd = [tool("helm"), "template", release, chart, "--namespace", namespace, "--kube-version", kube]
    cmd += _values_args(json.loads(values_json), sets)
    for item in show_only:
        cmd += ["--show-only", item]
    if upgrade:
        cmd.append("--is-upgrade")
    proc = run(cmd, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def template_text(values: dict | None = None, *, sets: Sequence[str] = (), release: str = "ragflow",
                  namespace: str = "ragflow", kube: str = DEFAULT_KUBE, chart: Path | str = CHART,
                  show_only: Sequence[str] = (), upgrade: bool = False) -> str:
    code, out, err = _template(str(chart), release, namespace, kube, json.dumps(values or {}, sort_keys=True),
                               tuple(sets), tuple(show_only), upgrade)
    if code != 0:
        raise AssertionError(f"helm template failed ({code}):\n{err}")
    return out


def template_error(values: dict | None = None, *, sets: Sequence[str] = (), chart: Path | str = CHART,
                   release: str = "ragflow") -> str:
    """Render values the chart must refuse; returns helm's error message."""
    code, out, err = _template(str(chart), release, "ragflow", DEFAULT_KUBE, json.dumps(values or {}, sort_keys=True),
                               tuple(sets), (), False)
    assert code != 0, f"helm template accepted values it should refuse: {values} {sets}\n{out[:1500]}"
    return err


def render(values: dict | None = None, **kw: Any) -> list[dict]:
    """helm template → the list of manifests (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(template_text(values, **kw)) if doc]


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_spec(doc: dict) -> dict:
    """The pod spec of a Job, CronJob or Deployment."""
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def container(spec: dict, name: str, *, init: bool | None = None) -> dict:
    lists = []
    if init in (None, False):
        lists.append(spec.get("containers") or [])
    if init in (None, True):
        lists.append(spec.get("initContainers") or [])
    for items in lists:
        for item in items:
            if item["name"] == name:
                return item
    raise AssertionError(f"no container {name!r} in {[c['name'] for c in sum(lists, [])]}")


def build_ragflow_chart(dest: Path) -> Path:
    """The RAGFlow stand-in chart with the documented patch applied and this chart as its dependency."""
    root = dest / "ragflow"
    shutil.copytree(FIXTURE_RAGFLOW, root)
    patch = shutil.which("patch")
    if patch is None:
        pytest.fail("the `patch` program is missing (Debian package patch)", pytrace=False)
    run([patch, "-p2", "--forward", "--no-backup-if-mismatch", "-i", str(PATCH)], cwd=root)
    shutil.copytree(CHART, root / "charts" / "ragflow-migrate")
    return root


def kubernetes_validate(paths: Sequence[Path], kube: str) -> subprocess.CompletedProcess:
    return run([tool("kubernetes-validate"), "--strict", "-k", kube, *map(str, paths)], check=False, timeout=300)


def values_yaml() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())
