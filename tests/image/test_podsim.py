"""Pod simulation: the chart's rendered container specs, run with podman against a real MariaDB seeded with
an old RAGFlow schema (v0.25.0, as RAGFlow's own code created it).

* The hook Job's pod (catalogue copy step, then the tool) upgrades the database; a one-off `status` Job
  rendered by the same chart then reports it up to date.
* RAGFlow's Deployment, with the documented patch and mode=initContainer, scaled to three replicas: the
  three pods' initContainers start at once, exactly one migrates, the other two finish as no-ops.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from podsim import CATALOG, SCHEMA, Pod

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chart"))
from helmtools import build_ragflow_chart, container, one, pod_spec, render  # noqa: E402

pytestmark = pytest.mark.integration

OLD_RELEASE = "v0.25.0"
TARGET = "v0.27.0"


def chart_values(built_image) -> dict:
    return {"image": {"repository": built_image["repository"], "tag": built_image["tag"]},
            "ragflow": {"version": TARGET}}


def make_pod(name: str, spec: dict, workdir: Path, built_image, secret_name: str, db_env: dict) -> Pod:
    # RAGFlow's Secret holds more than the MySQL keys; the tool reads only those.
    secret = {**db_env, "REDIS_PASSWORD": "unused", "MINIO_PASSWORD": "unused", "MYSQL_ROOT_PASSWORD": "unused"}
    return Pod(
        name=name, spec=spec, workdir=workdir,
        secrets={secret_name: secret},
        # RAGFlow's image cannot be pulled here: the image under test stands in for it, with the catalogue
        # where RAGFlow's image has it. The copy step's command, user and mounts are the rendered ones.
        image_overrides={f"infiniflow/ragflow:{TARGET}": built_image["id"], built_image["ref"]: built_image["id"]},
        extra_mounts={"ragflow-migrate-catalog": ["--volume", f"{CATALOG}:/ragflow/conf/llm_factories.json:ro"]},
    )


def seeded(scratch_db, user: str = "ragflow", password: str = "s3cret-pw") -> dict:
    """The scratch database at RAGFlow v0.25.0, and a password user of its own (as RAGFlow's Secret has)."""
    path = SCHEMA / "mariadb-10.11" / f"fresh-{OLD_RELEASE}.sql"
    scratch_db.server.load_sql(scratch_db.name, path)
    user = f"{user}_{scratch_db.name[-6:]}"
    scratch_db.server.create_user(user, password, [f"ALL PRIVILEGES ON `{scratch_db.name}`.*"])
    return scratch_db.env(user=user, password=password)


def test_hook_job_pod_upgrades_an_old_database(built_image, scratch_db, tmp_path):
    env = seeded(scratch_db)
    docs = render({**chart_values(built_image), "oneOff": {"command": "status", "args": ["--json", "--check"]}})
    job = one(docs, "Job", "ragflow-ragflow-migrate")
    spec = pod_spec(job)
    secret = container(spec, "ragflow-migrate")["envFrom"][0]["secretRef"]["name"]
    assert secret == "ragflow-env-config"

    pod = make_pod("ragflow-ragflow-migrate-x7k2p", spec, tmp_path / "job-pod", built_image, secret, env)
    copies = pod.run_init_containers()
    assert [r.returncode for r in copies] == [0], copies[-1].output()
    assert json.loads((tmp_path / "job-pod/volumes/ragflow-migrate-catalog/llm_factories.json").read_text())

    run = pod.run_container(container(spec, "ragflow-migrate", init=False))
    assert run.returncode == 0, run.output()
    result = run.finished()
    assert result["outcome"] == "migrated", result
    assert result["steps"], result
    # The summary reached the termination-message file, as `kubectl describe pod` shows it.
    assert json.loads(run.termination_message)["outcome"] == "migrated"
    # The runner named itself after the pod (downward API) and never printed the password.
    started = next(e for e in run.events() if e.get("event") == "run.started")
    assert started["settings"]["instance"] == pod.name
    assert "s3cret-pw" not in run.stdout + run.stderr

    # The same database, seen by the chart's one-off `status --json --check` Job: up to date.
    status_job = one(docs, "Job", "ragflow-ragflow-migrate-status")
    status_spec = pod_spec(status_job)
    status_pod = make_pod("ragflow-ragflow-migrate-status-q9w8e", status_spec, tmp_path / "status-pod", built_image,
                          secret, env)
    assert [r.returncode for r in status_pod.run_init_containers()] == [0]
    status = status_pod.run_container(container(status_spec, "ragflow-migrate", init=False))
    assert status.returncode == 0, status.output()
    report = json.loads(status.stdout)
    assert report["state"] == "up_to_date" and report["release"] == TARGET, report
    reference = json.loads((SCHEMA / "mariadb-10.11" / f"fresh-{TARGET}.json").read_text())
    expected_tables = sorted({t["table"] for t in reference["tables"]})
    assert [t for t in scratch_db.tables() if t in expected_tables] == expected_tables

    # The hook runs again on the next upgrade: a no-op.
    again = pod.run_container(container(spec, "ragflow-migrate", init=False))
    assert again.returncode == 0 and again.finished()["outcome"] == "noop", again.output()


def _pending_steps(built_image, pod: Pod, spec: dict) -> list:
    """`plan --json` with the initContainer's own settings: the steps a run would apply."""
    probe = dict(container(spec, "ragflow-migrate", init=True))
    probe["args"] = ["plan", "--json"]
    probe.pop("terminationMessagePath", None)
    result = pod.run_container(probe)
    assert result.returncode == 0, result.output()
    return json.loads(result.stdout)["steps"]


def test_three_replicas_initcontainers_exactly_one_migrates(built_image, scratch_db, tmp_path):
    env = seeded(scratch_db)
    chart = build_ragflow_chart(tmp_path / "chart")
    docs = render({"replicas": 3, "ragflow-migrate": {**chart_values(built_image), "mode": "initContainer"}},
                  chart=chart, upgrade=True)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    spec = pod_spec(deployment)
    secret = one(docs, "Secret")["metadata"]["name"]
    names = [f"ragflow-6f7d9c8b5-{suffix}" for suffix in ("k2x9p", "m4q7r", "z8w1t")]
    pods = [make_pod(name, spec, tmp_path / name, built_image, secret, env) for name in names]

    if not _pending_steps(built_image, pods[0], spec):
        pytest.skip("ragflow_migrate.pipeline plans no step for a v0.25.0 database yet (no schema chain): "
                    "nothing to migrate, so 'exactly one migrates' cannot be observed")

    for pod in pods:  # the catalogue copy step of each pod
        copies = pod.run_init_containers(["ragflow-migrate-catalog"])
        assert [r.returncode for r in copies] == [0], copies[-1].output()
    migrate = container(spec, "ragflow-migrate", init=True)
    started = [pod.start(migrate) for pod in pods]  # the three pods' initContainers at once
    runs = [Pod.wait(migrate, handle) for handle in started]
    for run in runs:
        assert run.returncode == 0, run.output()
    outcomes = sorted(run.finished()["outcome"] for run in runs)
    assert outcomes == ["migrated", "noop", "noop"], [run.output() for run in runs]
    # Whoever waited for the lock was told who held it: the migrating pod, by name.
    winner = names[[run.finished()["outcome"] for run in runs].index("migrated")]
    for run in runs:
        for event in run.events():
            if event.get("event") == "lock.waiting":
                assert winner in json.dumps(event["holder"]), event
    report_pod = make_pod("ragflow-status", spec, tmp_path / "status", built_image, secret, env)
    assert _pending_steps(built_image, report_pod, spec) == []
