"""What the chart renders is valid Kubernetes (1.27 … 1.34, strict), and the linters find nothing.

* kubernetes-validate --strict: every mode and a matrix of values, standalone and through the documented
  patch in (a stand-in of) RAGFlow's chart; one process per Kubernetes version over all manifests.
* checkov (offline) over the rendered manifests and the Dockerfile: no failed check. Its exceptions are
  listed, each with its reason, in tests/tools/checkov.yaml.
* hadolint over the Dockerfile.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helmtools import KUBE_VERSIONS, REPO, kubernetes_validate, run, template_text, tool

DIGEST = "sha256:" + "c" * 64

# (name, values, chart: "own" | "ragflow", upgrade)
MATRIX: list[tuple[str, dict, str, bool]] = [
    ("job-default", {}, "own", False),
    ("job-upgrade-argocd", {"argocd": {"hook": "Sync", "syncWave": "1"}, "job": {"ttlSecondsAfterFinished": None,
                                                                                "podFailurePolicy": False}}, "own", True),
    ("job-external-db", {"database": {"sameRelease": False, "host": "mysql.example", "port": 3306, "user": "rag",
                                      "name": "rag_flow", "secret": {"name": "db", "keys": {"MYSQL_PASSWORD": "pw"}}},
                         "job": {"hooks": {"install": "pre-install", "upgrade": "pre-upgrade"}}}, "own", False),
    ("job-configmaps", {"catalog": {"source": "configMap", "configMap": {"name": "ragflow-service-config"}},
                        "serviceConf": {"secret": "conf", "key": "service_conf.yaml", "localKey": "local.yaml"},
                        "database": {"passwordFile": {"secretName": "pw"}}}, "own", False),
    ("job-pinned-scheduled", {
        "image": {"repository": "reg.example/ragflow-migrate", "tag": "0.1.0", "digest": DIGEST},
        "catalog": {"image": {"digest": DIGEST}},
        "imagePullSecrets": [{"name": "regcred"}], "serviceAccountName": "migrator", "priorityClassName": "ops",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "ops", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                              "labelSelector": {"matchLabels": {"app": "x"}}}}]}},
        "extraEnv": [{"name": "TZ", "value": "UTC"}], "extraEnvFrom": [{"secretRef": {"name": "extra"}}],
        "extraVolumes": [{"name": "ca", "secret": {"secretName": "ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/extra", "readOnly": True}],
        "podAnnotations": {"a": "b"}, "podLabels": {"c": "d"}, "commonLabels": {"team": "ai"},
        "commonAnnotations": {"owner": "platform"},
        "migrate": {"batchSize": 2000, "createDatabase": True, "lockName": "rfm", "extraArgs": ["--log-level", "debug"]},
    }, "own", False),
    ("tools-only", {"mode": "none", "cronJobs": {"enabled": True}, "oneOff": {"command": "schema diff",
                                                                              "args": ["--json"]}}, "own", False),
    ("ragflow-initcontainer", {"ragflow-migrate": {"mode": "initContainer"}}, "ragflow", True),
    ("ragflow-initcontainer-configmap", {"ragflow-migrate": {
        "mode": "initContainer", "catalog": {"source": "configMap", "configMap": {"name": "ragflow-service-config"}},
        "serviceConf": {"configMap": "ragflow-service-config", "key": "local.service_conf.yaml"}}}, "ragflow", False),
    ("ragflow-job-wait", {"ragflow-migrate": {"mode": "job"}}, "ragflow", True),
    ("ragflow-job-install", {"ragflow-migrate": {"mode": "job"}}, "ragflow", False),
    ("ragflow-none", {"ragflow-migrate": {"mode": "none"}}, "ragflow", True),
    ("job-postgres", {"database": {"type": "postgres", "pgSslmode": "verify-full", "host": "pg.example", "port": 5432,
                                   "secret": {"name": "pg", "keys": {"POSTGRES_PASSWORD": "password"}}},
                      "cronJobs": {"enabled": True}}, "own", True),
    ("ragflow-initcontainer-postgres", {
        "env": {"DB_TYPE": "postgres", "POSTGRES_HOST": "pg.example", "POSTGRES_PASSWORD": "pw"},
        "ragflow-migrate": {"mode": "initContainer", "database": {"type": "postgres"}}}, "ragflow", True),
    ("ragflow-job-wait-postgres", {"ragflow-migrate": {"mode": "job", "database": {"type": "postgres"}}}, "ragflow",
     True),
]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory, ragflow_chart: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("manifests")
    files = {}
    for name, values, chart, upgrade in MATRIX:
        text = template_text(values, chart=ragflow_chart if chart == "ragflow" else REPO / "helm" / "ragflow-migrate",
                             upgrade=upgrade)
        assert "kind:" in text, f"{name} rendered nothing"
        path = folder / f"{name}.yaml"
        path.write_text(text)
        files[name] = path
    return files


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_kubernetes_validate_strict(manifests, kube):
    proc = kubernetes_validate(list(manifests.values()), kube)
    lines = (proc.stdout + proc.stderr).splitlines()
    errors = [line for line in lines if not line.startswith("INFO")]
    passed = [line for line in lines if " passed for resource " in line]
    assert proc.returncode == 0 and not errors, "\n".join(errors)
    # Every resource of every manifest was checked (a Job, Deployments, CronJobs, Secrets...).
    assert len(passed) >= len(MATRIX) + 6, "\n".join(lines)


def test_kubernetes_validate_catches_a_broken_manifest(tmp_path):
    """The validation above can fail: an unknown field is an error with --strict."""
    broken = template_text({}).replace("backoffLimit:", "backofLimit:")
    (tmp_path / "broken.yaml").write_text(broken)
    proc = kubernetes_validate([tmp_path / "broken.yaml"], "1.30.0")
    assert proc.returncode != 0 and "backofLimit" in proc.stdout + proc.stderr


def _checkov(args: list[str], tmp_path: Path) -> dict:
    env = {**os.environ, "LOG_LEVEL": "ERROR", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    proc = run([tool("checkov"), "--config-file", str(REPO / "tests/tools/checkov.yaml"), "--skip-download",
                "--quiet", "--compact", "-o", "json", *args], check=False, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    data = json.loads(proc.stdout or "{}")
    reports = data if isinstance(data, list) else [data]
    return {r.get("check_type", "?"): r for r in reports if isinstance(r, dict)}


def _failures(reports: dict) -> list[str]:
    out = []
    for report in reports.values():
        for failed in report.get("results", {}).get("failed_checks", []):
            out.append(f"{failed['check_id']} {failed['check_name']} at {failed.get('resource')} "
                       f"({failed.get('file_path')})")
    return out


def _passed(reports: dict) -> int:
    return sum(r.get("summary", {}).get("passed", 0) for r in reports.values())


def test_checkov_finds_nothing_in_the_rendered_chart(manifests, tmp_path):
    # This chart's own renders: RAGFlow's stand-in Deployment is RAGFlow's to harden, and the container
    # this chart adds to it is the Job's (test_chart.py::test_initcontainer_is_the_jobs_container_spec).
    folder = tmp_path / "rendered"
    folder.mkdir()
    own = {name for name, _values, chart, _upgrade in MATRIX if chart == "own"}
    for name, path in manifests.items():
        if name in own:
            (folder / path.name).write_text(path.read_text())
    reports = _checkov(["--framework", "kubernetes", "-d", str(folder)], tmp_path)
    assert _passed(reports) > 100, reports.keys()
    assert not _failures(reports), "\n".join(_failures(reports))


def test_checkov_finds_nothing_in_the_dockerfile(tmp_path):
    reports = _checkov(["--framework", "dockerfile", "-f", str(REPO / "Dockerfile")], tmp_path)
    assert _passed(reports) > 5, reports.keys()
    assert not _failures(reports), "\n".join(_failures(reports))


def test_hadolint_passes_the_dockerfile():
    proc = run([tool("hadolint"), "--no-color", str(REPO / "Dockerfile")], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
