"""The Helm chart, rendered by the real helm and checked for what operators rely on.

Modes (hook Job, initContainer, wait-for-version, one-offs), the container spec shared by all of them,
the Secret and catalogue wiring, security defaults, the values schema, and the documented patch for
RAGFlow's own chart (applied to a stand-in of it, tests/chart/fixtures/ragflow).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from helmtools import (
    CHART,
    container,
    find,
    one,
    pod_spec,
    render,
    run,
    template_error,
    template_text,
    tool,
    values_yaml,
)

from ragflow_migrate.errors import ExitCode

RUN_IMAGE = "ragflow-migrate:0.1.0"
MYSQL_RENDERS = Path(__file__).resolve().parent / "fixtures" / "mysql-renders"


def job(values=None, **kw) -> dict:
    return one(render(values, **kw), "Job")


def hook_of(doc: dict) -> list[str]:
    return doc["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(",")


# --- lint ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sets", [[], ["mode=initContainer"], ["mode=none", "cronJobs.enabled=true"],
                                  ["oneOff.command=status"],
                                  ["mode=initContainer", "database.type=postgres", "database.pgSslmode=require"]],
                         ids=["job", "initContainer", "none", "one-off", "postgres"])
def test_helm_lint_strict(sets):
    cmd = [tool("helm"), "lint", "--strict", str(CHART)]
    for item in sets:
        cmd += ["--set", item]
    out = run(cmd).stdout
    assert "0 chart(s) failed" in out


# --- hook Job -----------------------------------------------------------------------------------------


def test_default_is_a_post_install_and_pre_upgrade_hook_job():
    doc = job()
    meta = doc["metadata"]
    assert hook_of(doc) == ["post-install", "pre-upgrade"]
    assert meta["annotations"]["helm.sh/hook-weight"] == "-10"
    # hook-failed is absent: a failed Job and its pods stay for `kubectl logs`.
    assert meta["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    spec = doc["spec"]
    assert spec["backoffLimit"] <= 3
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["ttlSecondsAfterFinished"] == 86400
    assert pod_spec(doc)["restartPolicy"] == "Never"
    assert meta["name"] == "ragflow-ragflow-migrate"
    assert container(pod_spec(doc), "ragflow-migrate", init=False)["args"] == ["run"]


def test_pod_failure_policy_fails_fast_exactly_on_the_tools_non_retryable_exit_codes():
    rules = job()["spec"]["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailJob"]
    assert len(fail) == 1
    on_codes = fail[0]["onExitCodes"]
    assert on_codes["operator"] == "In" and on_codes["containerName"] == "ragflow-migrate"
    # The contract of errors.py: every code that is not retryable, and no other.
    expected = sorted(int(code) for code in ExitCode if code != ExitCode.OK and not code.retryable)
    assert sorted(on_codes["values"]) == expected == [1, 2, 4, 8, 9, 10]
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} in rules
    assert "podFailurePolicy" not in job({"job": {"podFailurePolicy": False}})["spec"]


@pytest.mark.parametrize(
    ("hooks", "same_release", "expected"),
    [
        ({"install": "post-install", "upgrade": "pre-upgrade"}, True, ["post-install", "pre-upgrade"]),
        ({"install": "none", "upgrade": "pre-upgrade"}, True, ["pre-upgrade"]),
        ({"install": "post-install", "upgrade": "post-upgrade"}, True, ["post-install", "post-upgrade"]),
        ({"install": "pre-install", "upgrade": "pre-upgrade"}, False, ["pre-install", "pre-upgrade"]),
    ],
)
def test_hook_choices(hooks, same_release, expected):
    doc = job({"job": {"hooks": hooks}, "database": {"sameRelease": same_release}})
    assert hook_of(doc) == expected


def test_pre_install_against_a_database_of_the_same_release_is_refused_with_the_reason():
    err = template_error({"job": {"hooks": {"install": "pre-install"}}})
    assert "pre-install cannot work with database.sameRelease=true" in err
    assert "post-install" in err and "mode=initContainer" in err


def test_no_job_without_hooks_or_outside_job_mode():
    assert not find(render({"job": {"hooks": {"install": "none", "upgrade": "none"}}}), "Job")
    assert not find(render({"mode": "initContainer"}), "Job")
    assert not find(render({"mode": "none"}), "Job")


def test_job_annotations_labels_and_argocd():
    doc = job({"job": {"annotations": {"team": "data"}, "labels": {"tier": "db"}},
               "argocd": {"hook": "PreSync", "syncWave": "-1"},
               "commonLabels": {"owner": "platform"}, "podLabels": {"p": "1"}, "podAnnotations": {"a": "b"}})
    ann = doc["metadata"]["annotations"]
    assert ann["argocd.argoproj.io/hook"] == "PreSync"
    assert ann["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation,HookSucceeded"
    assert ann["argocd.argoproj.io/sync-wave"] == "-1"
    assert ann["team"] == "data"
    labels = doc["metadata"]["labels"]
    assert labels["tier"] == "db" and labels["owner"] == "platform"
    assert doc["spec"]["template"]["metadata"]["labels"]["p"] == "1"
    assert doc["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}
    # Without Argo CD values, no Argo CD annotation: Argo CD maps the Helm hooks itself.
    assert not [k for k in job()["metadata"]["annotations"] if k.startswith("argocd")]


def test_never_a_pre_install_hook_against_a_bundled_database_in_any_mode(ragflow_chart):
    for mode in ("job", "initContainer", "none"):
        for extra in ({}, {"oneOff": {"command": "status"}}, {"cronJobs": {"enabled": True}}):
            values = {"mode": mode, **extra}
            docs = render(values) + render({"ragflow-migrate": values}, chart=ragflow_chart)
            hooks = [(d["kind"], d["metadata"]["name"], hook_of(d)) for d in docs]
            assert not [h for h in hooks if "pre-install" in h[2]], hooks


# --- the shared container spec ----------------------------------------------------------------------


def test_initcontainer_is_the_jobs_container_spec(ragflow_chart):
    """ONE container spec: the hook Job's container and the initContainer in RAGFlow's Deployment."""
    common = {"image": {"repository": "registry.example/ragflow-migrate", "tag": "0.1.0"},
              "extraEnv": [{"name": "TZ", "value": "UTC"}], "migrate": {"extraArgs": ["--log-level", "debug"]},
              "serviceConf": {"configMap": "ragflow-service-config", "key": "local.service_conf.yaml"}}
    as_job = render({"ragflow-migrate": {**common, "mode": "job"}}, chart=ragflow_chart)
    as_init = render({"ragflow-migrate": {**common, "mode": "initContainer"}}, chart=ragflow_chart)
    job_spec = pod_spec(one(as_job, "Job"))
    deploy_spec = pod_spec(one(as_init, "Deployment"))
    assert container(deploy_spec, "ragflow-migrate", init=True) == container(job_spec, "ragflow-migrate", init=False)
    assert container(deploy_spec, "ragflow-migrate-catalog", init=True) == \
        container(job_spec, "ragflow-migrate-catalog", init=True)
    assert [c["name"] for c in deploy_spec["initContainers"]] == ["ragflow-migrate-catalog", "ragflow-migrate"]
    # The volumes the initContainers mount are added to RAGFlow's own, under our prefix.
    names = [v["name"] for v in deploy_spec["volumes"]]
    ours = [v for v in deploy_spec["volumes"] if v["name"].startswith("ragflow-migrate-")]
    assert ours == job_spec["volumes"]
    assert {"nginx-config-volume", "service-conf-volume"} <= set(names)
    assert len(names) == len(set(names))
    assert not find(as_init, "Job")


def test_wait_for_version_initcontainer_on_upgrade(ragflow_chart):
    values = {"ragflow-migrate": {"mode": "job", "waitForVersion": {"timeout": 900, "interval": 10}}}
    upgraded = render(values, chart=ragflow_chart, upgrade=True)
    deploy = pod_spec(one(upgraded, "Deployment"))
    wait = container(deploy, "ragflow-migrate-wait", init=True)
    assert wait["args"] == ["wait-for-version", "--timeout", "900", "--interval", "10"]
    migrate = container(pod_spec(one(upgraded, "Job")), "ragflow-migrate", init=False)
    # Same spec as the migration container, but for its name and arguments.
    strip = lambda c: {k: v for k, v in c.items() if k not in ("name", "args")}  # noqa: E731
    assert strip(wait) == strip(migrate)
    # A fresh install: the post-install Job starts after the pods, so the pods must not wait for it.
    installed = pod_spec(one(render(values, chart=ragflow_chart), "Deployment"))
    assert "initContainers" not in installed
    assert not [v for v in installed["volumes"] if v["name"].startswith("ragflow-migrate-")]
    on_install = copy.deepcopy(values)
    on_install["ragflow-migrate"]["waitForVersion"]["onInstall"] = True
    assert container(pod_spec(one(render(on_install, chart=ragflow_chart), "Deployment")), "ragflow-migrate-wait")
    disabled = {"ragflow-migrate": {"mode": "job", "waitForVersion": {"enabled": False}}}
    assert "initContainers" not in pod_spec(one(render(disabled, chart=ragflow_chart, upgrade=True), "Deployment"))


def test_mode_none_adds_nothing_to_ragflows_pod(ragflow_chart):
    docs = render({"ragflow-migrate": {"mode": "none"}}, chart=ragflow_chart, upgrade=True)
    spec = pod_spec(one(docs, "Deployment"))
    assert "initContainers" not in spec
    assert [v["name"] for v in spec["volumes"]] == ["nginx-config-volume", "service-conf-volume"]
    assert not find(docs, "Job")


def test_include_without_this_charts_scope_says_what_to_do(tmp_path):
    """A dependency under an alias: the includes cannot find the values, and say how to pass them."""
    from helmtools import build_ragflow_chart

    chart = build_ragflow_chart(tmp_path)
    with (chart / "Chart.yaml").open("a") as fh:
        fh.write("dependencies:\n  - name: ragflow-migrate\n    version: 0.1.0\n    alias: migrate\n")
    err = template_error({"migrate": {"mode": "initContainer"}}, chart=chart)
    assert "got no ragflow-migrate values" in err and '(index .Subcharts "<alias>")' in err, err


# --- credentials ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "ragflow", "expected"),
    [
        ("ragflow", {}, "ragflow-env-config"),
        ("prod", {}, "prod-ragflow-env-config"),
        ("my-ragflow-prod", {}, "my-ragflow-prod-env-config"),
        ("migrate", {"releaseName": "rag"}, "rag-ragflow-env-config"),
        ("migrate", {"fullnameOverride": "kb"}, "kb-env-config"),
        ("x", {"nameOverride": "rf"}, "x-rf-env-config"),
    ],
)
def test_secret_defaults_to_ragflows_env_config(release, ragflow, expected):
    spec = pod_spec(job({"ragflow": ragflow}, release=release))
    migrate = container(spec, "ragflow-migrate", init=False)
    assert migrate["envFrom"] == [{"secretRef": {"name": expected}}]


@pytest.mark.parametrize("release", ["ragflow", "prod", "my-ragflow"])
def test_secret_is_the_one_ragflows_chart_creates(ragflow_chart, release):
    docs = render({"ragflow-migrate": {"mode": "initContainer"}}, chart=ragflow_chart, release=release)
    secret = one(docs, "Secret")["metadata"]["name"]
    ours = container(pod_spec(one(docs, "Deployment")), "ragflow-migrate", init=True)
    assert ours["envFrom"] == [{"secretRef": {"name": secret}}]
    ragflow = container(pod_spec(one(docs, "Deployment")), "ragflow", init=False)
    assert ragflow["envFrom"] == ours["envFrom"]


def test_named_secret_selected_keys_and_explicit_values():
    spec = pod_spec(job({"database": {"secret": {"name": "mysql-creds",
                                                 "keys": {"MYSQL_PASSWORD": "password", "MYSQL_USER": "username"}},
                                      "host": "mysql.db.svc", "port": 3307, "name": "rag"}}))
    migrate = container(spec, "ragflow-migrate", init=False)
    assert "envFrom" not in migrate
    env = {e["name"]: e for e in migrate["env"]}
    assert env["MYSQL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mysql-creds", "key": "password",
                                                                  "optional": False}
    assert env["MYSQL_USER"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert env["MYSQL_HOST"] == {"name": "MYSQL_HOST", "value": "mysql.db.svc"}
    assert env["MYSQL_PORT"]["value"] == "3307" and env["MYSQL_DBNAME"]["value"] == "rag"
    assert "MYSQL_USER" in env and "value" not in env["MYSQL_USER"]


def test_password_file_from_a_secret():
    spec = pod_spec(job({"database": {"passwordFile": {"secretName": "db-pass", "key": "pw"}}}))
    migrate = container(spec, "ragflow-migrate", init=False)
    env = {e["name"]: e.get("value") for e in migrate["env"]}
    assert env["RAGFLOW_MIGRATE_PASSWORD_FILE"] == "/etc/ragflow-migrate/password/password"
    volume = next(v for v in spec["volumes"] if v["name"] == "ragflow-migrate-password")
    assert volume["secret"] == {"secretName": "db-pass", "items": [{"key": "pw", "path": "password"}]}
    mount = next(m for m in migrate["volumeMounts"] if m["name"] == "ragflow-migrate-password")
    assert mount == {"name": "ragflow-migrate-password", "mountPath": "/etc/ragflow-migrate/password",
                     "readOnly": True}


def test_pod_name_from_the_downward_api_and_tool_settings():
    migrate = container(pod_spec(job({"migrate": {"lockTimeout": "20m", "waitTimeout": 120, "lockName": "x",
                                                  "batchSize": 1000, "sessions": 3, "createDatabase": True,
                                                  "widenColumns": True, "logLevel": "debug"}})), "ragflow-migrate")
    env = {e["name"]: e for e in migrate["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    values = {k: v.get("value") for k, v in env.items()}
    assert values["RAGFLOW_MIGRATE_TARGET_VERSION"] == "v0.27.0"
    assert values["RAGFLOW_MIGRATE_LOCK_TIMEOUT"] == "20m"
    assert values["RAGFLOW_MIGRATE_WAIT_TIMEOUT"] == "120"
    assert values["RAGFLOW_MIGRATE_LOCK_NAME"] == "x"
    assert values["RAGFLOW_MIGRATE_BATCH_SIZE"] == "1000"
    assert values["RAGFLOW_MIGRATE_SESSIONS"] == "3"
    assert values["RAGFLOW_MIGRATE_CREATE_DATABASE"] == "true"
    assert values["RAGFLOW_MIGRATE_WIDEN_COLUMNS"] == "true"
    assert values["RAGFLOW_MIGRATE_LOG_FORMAT"] == "json"
    assert values["RAGFLOW_MIGRATE_LOG_LEVEL"] == "debug"
    default_env = {e["name"] for e in container(pod_spec(job()), "ragflow-migrate")["env"]}
    assert not {"RAGFLOW_MIGRATE_LOCK_NAME", "RAGFLOW_MIGRATE_BATCH_SIZE", "RAGFLOW_MIGRATE_SESSIONS",
                "RAGFLOW_MIGRATE_CREATE_DATABASE", "RAGFLOW_MIGRATE_WIDEN_COLUMNS",
                "RAGFLOW_MIGRATE_CONFIG", "RAGFLOW_MIGRATE_PASSWORD_FILE"} & default_env


def test_cluster_settings_reach_the_tool_only_when_set():
    migrate = container(pod_spec(job({"migrate": {"cluster": {
        "nodes": ["pxc-0.pxc:3306", "pxc-1.pxc:3306"], "leaseTtl": "90s", "allowBlockingDdl": True,
        "blockingDdlRows": 5000000}}})), "ragflow-migrate")
    values = {e["name"]: e.get("value") for e in migrate["env"]}
    assert values["RAGFLOW_MIGRATE_CLUSTER_NODES"] == "pxc-0.pxc:3306,pxc-1.pxc:3306"
    assert values["RAGFLOW_MIGRATE_LEASE_TTL"] == "90s"
    assert values["RAGFLOW_MIGRATE_ALLOW_BLOCKING_DDL"] == "true"
    assert values["RAGFLOW_MIGRATE_BLOCKING_DDL_ROWS"] == "5000000"
    default_env = {e["name"] for e in container(pod_spec(job()), "ragflow-migrate")["env"]}
    assert not {n for n in default_env if "CLUSTER" in n or "LEASE" in n or "BLOCKING" in n}


# --- catalogue and service_conf.yaml ---------------------------------------------------------------------------


def test_catalogue_copied_from_the_ragflow_image_into_a_shared_emptydir():
    spec = pod_spec(job({"ragflow": {"version": "v0.26.4"}}))
    copy_step = container(spec, "ragflow-migrate-catalog", init=True)
    assert copy_step["image"] == "infiniflow/ragflow:v0.26.4"
    assert copy_step["command"] == ["cp", "/ragflow/conf/llm_factories.json",
                                    "/etc/ragflow-migrate/catalog/llm_factories.json"]
    assert copy_step["volumeMounts"] == [{"name": "ragflow-migrate-catalog", "mountPath": "/etc/ragflow-migrate/catalog"}]
    migrate = container(spec, "ragflow-migrate", init=False)
    env = {e["name"]: e.get("value") for e in migrate["env"]}
    assert env["RAGFLOW_MIGRATE_CATALOG"] == "/etc/ragflow-migrate/catalog/llm_factories.json"
    assert env["RAGFLOW_MIGRATE_TARGET_VERSION"] == "v0.26.4"
    assert {"name": "ragflow-migrate-catalog", "mountPath": "/etc/ragflow-migrate/catalog",
            "readOnly": True} in migrate["volumeMounts"]
    volume = next(v for v in spec["volumes"] if v["name"] == "ragflow-migrate-catalog")
    assert "emptyDir" in volume


def test_catalogue_image_tag_and_digest_can_be_pinned():
    digest = "sha256:" + "a" * 64
    spec = pod_spec(job({"catalog": {"image": {"repository": "mirror.local/ragflow", "tag": "v0.27.0-slim",
                                               "digest": digest}}}))
    assert container(spec, "ragflow-migrate-catalog")["image"] == f"mirror.local/ragflow:v0.27.0-slim@{digest}"


def test_catalogue_from_a_configmap_and_none():
    spec = pod_spec(job({"catalog": {"source": "configMap", "configMap": {"name": "ragflow-service-config"}}}))
    assert "initContainers" not in spec
    volume = next(v for v in spec["volumes"] if v["name"] == "ragflow-migrate-catalog")
    assert volume["configMap"] == {"name": "ragflow-service-config",
                                   "items": [{"key": "llm_factories.json", "path": "llm_factories.json"}]}
    spec = pod_spec(job({"catalog": {"source": "none"}}))
    migrate = container(spec, "ragflow-migrate")
    assert "RAGFLOW_MIGRATE_CATALOG" not in {e["name"] for e in migrate["env"]}
    assert [v["name"] for v in spec["volumes"]] == ["ragflow-migrate-tmp"]
    assert "configMap.name" in template_error({"catalog": {"source": "configMap"}})


def test_service_conf_from_ragflows_configmap():
    spec = pod_spec(job({"serviceConf": {"configMap": "ragflow-service-config", "key": "local.service_conf.yaml"}}))
    volume = next(v for v in spec["volumes"] if v["name"] == "ragflow-migrate-conf")
    assert volume["configMap"] == {"name": "ragflow-service-config",
                                   "items": [{"key": "local.service_conf.yaml", "path": "service_conf.yaml"}]}
    migrate = container(spec, "ragflow-migrate")
    assert {"name": "RAGFLOW_MIGRATE_CONFIG", "value": "/etc/ragflow-migrate/conf/service_conf.yaml"} in migrate["env"]
    spec = pod_spec(job({"serviceConf": {"secret": "conf", "localKey": "local.yaml"}}))
    volume = next(v for v in spec["volumes"] if v["name"] == "ragflow-migrate-conf")
    assert volume["secret"]["items"][1] == {"key": "local.yaml", "path": "local.service_conf.yaml"}
    assert "not both" in template_error({"serviceConf": {"configMap": "a", "secret": "b"}})


# --- security and pod settings ----------------------------------------------------------------------------


def _our_containers(docs: list[dict]) -> list[dict]:
    found = []
    for doc in docs:
        if doc["kind"] in ("Job", "CronJob", "Deployment"):
            spec = pod_spec(doc)
            for item in (spec.get("initContainers") or []) + spec["containers"]:
                if item["name"].startswith("ragflow-migrate"):
                    found.append(item)
    return found


def test_security_context_defaults_everywhere(ragflow_chart):
    docs = render({"cronJobs": {"enabled": True}, "oneOff": {"command": "plan"}})
    docs += render({"ragflow-migrate": {"mode": "initContainer"}}, chart=ragflow_chart)
    containers = _our_containers(docs)
    assert len(containers) == 2 * 5 + 2  # (copy + tool) × (Job, one-off, 3 CronJobs), Deployment: 2
    for item in containers:
        sc = item["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
        assert isinstance(sc["runAsGroup"], int) and sc["runAsGroup"] > 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert sc.get("privileged") is False
        assert item["resources"]["limits"] and item["resources"]["requests"]
    for doc in docs:
        if doc["kind"] in ("Job", "CronJob"):
            spec = pod_spec(doc)
            assert spec["automountServiceAccountToken"] is False
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            tool_container = container(spec, "ragflow-migrate", init=False)
            # /tmp is the only writable path: an emptyDir.
            assert {"name": "ragflow-migrate-tmp", "mountPath": "/tmp"} in tool_container["volumeMounts"]
            assert {"name": "ragflow-migrate-tmp", "emptyDir": {"sizeLimit": "64Mi"}} in spec["volumes"]


def test_scheduling_pull_secrets_and_extras():
    values = {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "db", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ops"]}]}]}}},
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccountName": "migrator",
        "priorityClassName": "high",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "extraVolumes": [{"name": "ca", "configMap": {"name": "ca-bundle"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/custom", "readOnly": True}],
        "extraEnvFrom": [{"configMapRef": {"name": "more"}}],
        "image": {"repository": "reg.local/rfm", "tag": "1.2.3", "digest": "sha256:" + "b" * 64, "pullPolicy": "Always"},
    }
    spec = pod_spec(job(values))
    for key in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets", "serviceAccountName",
                "priorityClassName"):
        assert spec[key] == values[key]
    migrate = container(spec, "ragflow-migrate")
    assert migrate["resources"] == values["resources"]
    assert migrate["image"] == "reg.local/rfm:1.2.3@sha256:" + "b" * 64
    assert migrate["imagePullPolicy"] == "Always"
    assert values["extraVolumeMounts"][0] in migrate["volumeMounts"]
    assert values["extraVolumes"][0] in spec["volumes"]
    assert migrate["envFrom"][-1] == {"configMapRef": {"name": "more"}}


def test_image_tag_defaults_to_the_charts_app_version():
    assert container(pod_spec(job()), "ragflow-migrate")["image"] == RUN_IMAGE


# --- one-off Jobs and CronJobs ------------------------------------------------------------------------


def test_one_off_job():
    docs = render({"mode": "none", "oneOff": {"command": "schema diff", "args": ["--json"]}})
    doc = one(docs, "Job")
    assert doc["metadata"]["name"] == "ragflow-ragflow-migrate-schema-diff"
    assert container(pod_spec(doc), "ragflow-migrate")["args"] == ["schema", "diff", "--json"]
    assert hook_of(doc) == ["post-install", "post-upgrade"]
    assert doc["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert doc["spec"]["ttlSecondsAfterFinished"] == 3600
    # Rendered alone, as the README says, for `kubectl apply -f -`.
    alone = template_text({"oneOff": {"command": "status"}}, show_only=["templates/oneoff-job.yaml"])
    assert "kind: Job" in alone and "ragflow-ragflow-migrate-status" in alone


def test_suspended_cronjobs_for_kubectl_create_job_from():
    docs = render({"mode": "none", "cronJobs": {"enabled": True}}, release="a-very-long-release-name-for-ragflow-prod")
    crons = find(docs, "CronJob")
    assert [c["metadata"]["name"].rsplit("-", 1)[-1] for c in crons] == ["status", "plan", "diff"]
    for cron in crons:
        assert cron["spec"]["suspend"] is True
        assert len(cron["metadata"]["name"]) <= 52
        args = container(pod_spec(cron), "ragflow-migrate")["args"]
        assert args in (["status"], ["plan"], ["schema", "diff"])


def test_network_policy_denies_ingress_to_the_tools_pods():
    policy = one(render(), "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "ragflow-migrate",
                                                            "app.kubernetes.io/instance": "ragflow"}
    assert policy["spec"]["policyTypes"] == ["Ingress"] and policy["spec"]["ingress"] == []
    egress = [{"ports": [{"port": 3306, "protocol": "TCP"}]}]
    policy = one(render({"networkPolicy": {"egress": egress}}), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["egress"] == egress
    assert not find(render({"mode": "initContainer"}), "NetworkPolicy")
    assert not find(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy")


# --- PostgreSQL (database.type=postgres) ----------------------------------------------------------------

PG_VARIABLES = {"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DBNAME"}


def _env(item: dict) -> dict[str, dict]:
    return {e["name"]: e for e in item["env"]}


def _mysql_names(item: dict) -> set[str]:
    return {name for name in _env(item) if name.startswith("MYSQL_")}


@pytest.mark.parametrize("name", ["job-default", "job-external-db", "ragflow-initcontainer"])
def test_mysql_renders_byte_for_byte_as_before_the_postgres_mode(name, ragflow_chart):
    """fixtures/mysql-renders/*.yaml: `helm template` of the chart before database.type existed. A change to
    the MySQL render that is meant must rewrite them (same command, same values as below)."""
    external = {"database": {"sameRelease": False, "host": "mysql.example", "port": 3306, "user": "rag",
                             "name": "rag_flow", "secret": {"name": "db", "keys": {"MYSQL_PASSWORD": "pw"}}},
                "job": {"hooks": {"install": "pre-install", "upgrade": "pre-upgrade"}}}
    cases = {
        "job-default": lambda extra: template_text(extra),
        "job-external-db": lambda extra: template_text({**external, "database": {**external["database"], **extra.get(
            "database", {})}}),
        "ragflow-initcontainer": lambda extra: template_text(
            {"ragflow-migrate": {"mode": "initContainer", **extra}}, chart=ragflow_chart, upgrade=True),
    }
    expected = (MYSQL_RENDERS / f"{name}.yaml").read_text()
    assert cases[name]({}) == expected
    # database.type=mysql said out loud is the default, byte for byte: no DB_TYPE, no POSTGRES_*.
    assert cases[name]({"database": {"type": "mysql"}}) == expected
    assert "DB_TYPE" not in expected and "POSTGRES" not in expected and "PG_SSLMODE" not in expected


def test_postgres_mode_reads_ragflows_secret_and_renders_db_type():
    migrate = container(pod_spec(job({"database": {"type": "postgres"}})), "ragflow-migrate", init=False)
    env = _env(migrate)
    assert env["DB_TYPE"] == {"name": "DB_TYPE", "value": "postgres"}
    # The POSTGRES_* variables come from RAGFlow's Secret as a whole, as RAGFlow's own Deployment reads them.
    assert migrate["envFrom"] == [{"secretRef": {"name": "ragflow-env-config"}}]
    assert not _mysql_names(migrate)
    assert not PG_VARIABLES & set(env), "nothing overrides the Secret unless a value says so"
    assert "RAGFLOW_MIGRATE_PG_SSLMODE" not in env


def test_postgres_explicit_values_take_ragflows_postgres_names():
    migrate = container(pod_spec(job({"database": {"type": "postgres", "host": "pg.db.svc", "port": 6432,
                                                   "user": "ragflow", "name": "rag_flow_pg",
                                                   "pgSslmode": "verify-full"}})), "ragflow-migrate")
    values = {name: e.get("value") for name, e in _env(migrate).items()}
    assert {k: values[k] for k in PG_VARIABLES - {"POSTGRES_PASSWORD"}} == {
        "POSTGRES_HOST": "pg.db.svc", "POSTGRES_PORT": "6432", "POSTGRES_USER": "ragflow",
        "POSTGRES_DBNAME": "rag_flow_pg"}
    assert values["DB_TYPE"] == "postgres"
    assert values["RAGFLOW_MIGRATE_PG_SSLMODE"] == "verify-full"
    assert not _mysql_names(migrate)


def test_postgres_selected_secret_keys():
    keys = {"POSTGRES_HOST": "host", "POSTGRES_PORT": "port", "POSTGRES_USER": "username",
            "POSTGRES_PASSWORD": "password", "POSTGRES_DBNAME": "dbname"}
    migrate = container(pod_spec(job({"database": {"type": "postgres", "secret": {"name": "pg-creds", "keys": keys}}})),
                        "ragflow-migrate")
    assert "envFrom" not in migrate
    env = _env(migrate)
    for variable, key in keys.items():
        ref = env[variable]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "pg-creds" and ref["key"] == key
        # As for MySQL: the host and the password are required, the rest has defaults.
        assert ref["optional"] is (variable not in ("POSTGRES_HOST", "POSTGRES_PASSWORD")), variable
    assert env["DB_TYPE"]["value"] == "postgres"
    assert not _mysql_names(migrate)


def test_postgres_through_ragflows_chart_and_secret(ragflow_chart):
    """RAGFlow's chart writes env.DB_TYPE and env.POSTGRES_* into its Secret under the same names; the
    initContainer gets DB_TYPE=postgres and exactly those keys, from that Secret."""
    ragflow_env = {"DB_TYPE": "postgres", "POSTGRES_HOST": "pg.db.svc", "POSTGRES_PORT": "5432",
                   "POSTGRES_USER": "rag_flow", "POSTGRES_PASSWORD": "secret", "POSTGRES_DBNAME": "rag_flow"}
    identity = {name: name for name in PG_VARIABLES}
    for database in ({"type": "postgres"}, {"type": "postgres", "secret": {"keys": identity}}):
        docs = render({"env": ragflow_env, "ragflow-migrate": {"mode": "initContainer", "database": database}},
                      chart=ragflow_chart, upgrade=True)
        secret = one(docs, "Secret")
        assert PG_VARIABLES <= set(secret["stringData"]) and secret["stringData"]["DB_TYPE"] == "postgres"
        spec = pod_spec(one(docs, "Deployment"))
        ours = container(spec, "ragflow-migrate", init=True)
        assert _env(ours)["DB_TYPE"]["value"] == "postgres"
        assert not _mysql_names(ours)
        if "secret" in database:
            assert "envFrom" not in ours
            refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in _env(ours).items() if "valueFrom" in e
                    and "secretKeyRef" in e["valueFrom"]}
            assert set(refs) == PG_VARIABLES
            assert all(ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
                       for ref in refs.values())
        else:
            assert ours["envFrom"] == container(spec, "ragflow", init=False)["envFrom"] == \
                [{"secretRef": {"name": secret["metadata"]["name"]}}]


def test_postgres_mode_has_one_container_spec_everywhere(ragflow_chart):
    values = {"database": {"type": "postgres", "pgSslmode": "require"}}
    job_docs = render({"ragflow-migrate": {**values, "mode": "job"}}, chart=ragflow_chart)
    init_docs = render({"ragflow-migrate": {**values, "mode": "initContainer"}}, chart=ragflow_chart)
    as_job = container(pod_spec(one(job_docs, "Job")), "ragflow-migrate", init=False)
    as_init = container(pod_spec(one(init_docs, "Deployment")), "ragflow-migrate", init=True)
    assert as_job == as_init
    crons = find(render({**values, "mode": "none", "cronJobs": {"enabled": True}}), "CronJob")
    for cron in crons:
        env = _env(container(pod_spec(cron), "ragflow-migrate"))
        assert env["DB_TYPE"]["value"] == "postgres" and env["RAGFLOW_MIGRATE_PG_SSLMODE"]["value"] == "require"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"database": {"pgSslmode": "require"}}, "database.pgSslmode=require is PostgreSQL's sslmode and needs "
                                                 "database.type=postgres"),
        ({"database": {"type": "postgres", "secret": {"keys": {"MYSQL_PASSWORD": "password"}}}},
         "imports MYSQL_PASSWORD, a variable the tool does not read with database.type=postgres; use POSTGRES_PASSWORD"),
        ({"database": {"secret": {"keys": {"POSTGRES_PASSWORD": "password"}}}},
         "imports POSTGRES_PASSWORD, a variable the tool does not read with database.type=mysql; use MYSQL_PASSWORD"),
    ],
)
def test_the_other_databases_settings_are_refused(values, message):
    assert message in template_error(values)


# --- values schema ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["mode=upgrade"], "at '/mode': value must be one of 'job', 'initContainer', 'none'"),
        (["job.backoffLimit=lots"], "at '/job/backoffLimit': got string, want integer"),
        (["job.activeDeadlineSeconds=5"], "at '/job/activeDeadlineSeconds'"),
        (["ragflow.version=latest"], "at '/ragflow/version'"),
        (["catalog.source=s3"], "at '/catalog/source': value must be one of 'image', 'configMap', 'none'"),
        (["job.hooks.install=pre-upgrade"], "at '/job/hooks/install'"),
        (["job.hooks.upgrade=post-install"], "at '/job/hooks/upgrade'"),
        (["database.port=99999"], "at '/database/port'"),
        (["migrate.lockTimeout=soon"], "at '/migrate/lockTimeout'"),
        (["migrate.logFormat=xml"], "at '/migrate/logFormat'"),
        (["image.digest=latest"], "at '/image/digest'"),
        (["image.pullPolicy=Sometimes"], "at '/image/pullPolicy'"),
        (["unknownKey=1"], "additional properties 'unknownKey' not allowed"),
        (["job.deletePolicy=never"], "at '/job/deletePolicy'"),
        (["argocd.hook=PreDelete"], "at '/argocd/hook'"),
        (["waitForVersion.enabled=maybe"], "at '/waitForVersion/enabled': got string, want boolean"),
        (["database.type=postgresql"], "at '/database/type': value must be one of 'mysql', 'postgres'"),
        (["database.type=oceanbase"], "at '/database/type': value must be one of 'mysql', 'postgres'"),
        (["database.pgSslmode=strict"], "at '/database/pgSslmode'"),
    ],
)
def test_schema_rejects_bad_values_with_a_clear_message(sets, message):
    err = template_error(sets=sets)
    assert "values don't meet the specifications of the schema" in err
    assert message in err, err


def test_every_value_is_documented_and_in_the_schema_and_the_readme():
    text = (CHART / "values.yaml").read_text()
    documented = set(re.findall(r"^\s*## @param (\S+)", text, re.M))
    leaves: set[str] = set()

    def walk(prefix: str, node):
        if isinstance(node, dict) and node and prefix not in documented:
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            leaves.add(prefix)

    walk("", values_yaml())
    assert leaves == documented, f"undocumented: {leaves - documented}; documented but absent: {documented - leaves}"
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    for name in documented:
        node = schema
        for part in name.split("."):
            assert part in node.get("properties", {}), f"{name} is not in values.schema.json"
            node = node["properties"][part]
    readme = (CHART / "README.md").read_text()
    table = readme.split("<!-- values-table:begin -->")[1].split("<!-- values-table:end -->")[0]
    in_table = set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    assert in_table == documented, f"README table: missing {documented - in_table}, extra {in_table - documented}"
    # ... and it is exactly what tests/tools/values_table.py generates from values.yaml (descriptions included).
    import importlib.util

    spec = importlib.util.spec_from_file_location("values_table", CHART.parents[1] / "tests/tools/values_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert table.strip() == module.table().strip(), "run: python tests/tools/values_table.py --write"


# --- NOTES.txt -----------------------------------------------------------------------------------------


def _notes(values: dict, tmp_path) -> str:
    """NOTES.txt rendered through a copy of the chart (helm template does not render NOTES)."""
    import shutil

    import yaml

    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "notes-render.yaml").write_text(
        '{{ define "test.notes" }}' + notes + '{{ end }}\nnotes: {{ include "test.notes" . | toJson }}\n')
    return yaml.safe_load(template_text(values, chart=chart, show_only=["templates/notes-render.yaml"]))["notes"]


def test_notes_tell_the_operator_what_to_run(tmp_path):
    notes = _notes({}, tmp_path / "a")
    assert "kubectl -n ragflow logs -f job/ragflow-ragflow-migrate" in notes
    assert "Secret ragflow-env-config (envFrom)" in notes
    assert "--set oneOff.command=status -s templates/oneoff-job.yaml | kubectl apply -f -" in notes
    notes = _notes({"mode": "initContainer", "cronJobs": {"enabled": True}}, tmp_path / "b")
    assert "deploy/ragflow -c ragflow-migrate" in notes
    assert "--from=cronjob/ragflow-ragflow-migrate-schema-diff" in notes
    assert "PostgreSQL" not in notes


def test_notes_on_postgres(tmp_path):
    notes = _notes({"database": {"type": "postgres", "pgSslmode": "verify-full"}}, tmp_path / "a")
    assert "PostgreSQL (DB_TYPE=postgres, POSTGRES_* variables, sslmode verify-full)" in notes
    assert "not through a transaction-pooling PgBouncer" in notes
    assert "gives up after about 3.7 s" in notes and "mode=initContainer is the recommended wiring" in notes
    notes = _notes({"database": {"type": "postgres"}, "mode": "initContainer"}, tmp_path / "b")
    assert "3.7 s" not in notes
