"""Pod simulation: run a container spec rendered by the chart with podman, as the kubelet would.

There is no Kubernetes API server on these machines, so the tests take what matters from the rendered
manifest and give it to podman: image, command and arguments, the environment (plain values, the downward
API's pod name, Secret keys and whole Secrets through envFrom), the user and group, a read-only root
filesystem, dropped capabilities, no privilege escalation, and the volumes (emptyDir as a fresh folder shared
by the pod's containers, ConfigMap/Secret items as files). The termination-message file is a host file
mounted where the spec says, as the kubelet does.

What podman cannot pull here (RAGFlow's image for the catalogue copy step) is replaced by the image under
test with the catalogue file mounted where RAGFlow's image has it: the step's command, user and mounts
are still the rendered ones.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers.harness import schema_root, shared_root

REPO = Path(__file__).resolve().parents[2]
SHARED = shared_root()
SCHEMA = schema_root()
CATALOG = SHARED / "ragflow-data" / "llm_factories-v0.27.0.json"

PODMAN_BASE = ["podman", "run", "--rm", "--pull=never", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
               "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "host"]
_COUNTER = itertools.count(1)


@dataclass
class ContainerRun:
    name: str
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    termination_message: str | None

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines (stdout and stderr), in order; other lines are skipped."""
        out = []
        for line in (self.stdout + "\n" + self.stderr).splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def finished(self) -> dict[str, Any]:
        found = [e for e in self.events() if e.get("event") == "run.finished"]
        assert len(found) == 1, f"{self.name}: expected one run.finished, got {len(found)}\n{self.output()}"
        return found[0]

    def output(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit {self.returncode}\n{self.stdout[-4000:]}\n{self.stderr[-4000:]}"


@dataclass
class Pod:
    """One simulated pod: its volumes live in ``workdir`` and are shared by its containers."""

    name: str
    spec: dict[str, Any]
    workdir: Path
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    image_overrides: dict[str, str] = field(default_factory=dict)  # rendered image -> image to run
    extra_mounts: dict[str, list[str]] = field(default_factory=dict)  # container name -> podman -v args

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._volumes: dict[str, Path] = {}

    def volume(self, name: str) -> Path:
        """The host folder of a pod volume, made on first use (only what the simulated containers mount)."""
        if name not in self._volumes:
            spec = next((v for v in self.spec.get("volumes") or [] if v["name"] == name), None)
            assert spec is not None, f"volumeMount {name!r} has no volume in the pod spec"
            self._volumes[name] = self._materialise(spec)
        return self._volumes[name]

    # --- volumes -------------------------------------------------------------------------------------

    def _materialise(self, volume: dict[str, Any]) -> Path:
        path = self.workdir / "volumes" / volume["name"]
        path.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            path.chmod(0o1777)  # an emptyDir is world-writable
            return path
        if "configMap" in volume or "secret" in volume:
            source = volume.get("configMap") or volume.get("secret")
            name = source.get("name") or source.get("secretName")
            data = (self.config_maps if "configMap" in volume else self.secrets).get(name)
            if data is None:
                raise AssertionError(f"volume {volume['name']}: no {'ConfigMap' if 'configMap' in volume else 'Secret'} "
                                     f"{name!r} given to the simulation")
            items = source.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                target = path / item["path"]
                target.write_text(data[item["key"]])
                target.chmod(0o644)
            path.chmod(0o755)
            return path
        raise AssertionError(f"volume {volume['name']}: kind not simulated: {sorted(volume)}")

    # --- environment ---------------------------------------------------------------------------------

    def _env(self, container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                ref = source["secretRef"]
                if ref["name"] not in self.secrets and not ref.get("optional"):
                    raise AssertionError(f"envFrom: Secret {ref['name']!r} not given to the simulation "
                                         f"(a pod would stay in CreateContainerConfigError)")
                env.update(self.secrets.get(ref["name"], {}))
            elif "configMapRef" in source:
                env.update(self.config_maps.get(source["configMapRef"]["name"], {}))
        for item in container.get("env") or []:  # env wins over envFrom
            if "value" in item:
                env[item["name"]] = str(item["value"])
            elif "valueFrom" in item:
                ref = item["valueFrom"]
                if "fieldRef" in ref:
                    assert ref["fieldRef"]["fieldPath"] == "metadata.name", ref
                    env[item["name"]] = self.name
                elif "secretKeyRef" in ref:
                    key = ref["secretKeyRef"]
                    value = self.secrets.get(key["name"], {}).get(key["key"])
                    if value is None:
                        assert key.get("optional"), f"secretKeyRef {key} missing and not optional"
                    else:
                        env[item["name"]] = value
                else:
                    raise AssertionError(f"env {item['name']}: valueFrom not simulated: {ref}")
        return env

    # --- containers ----------------------------------------------------------------------------------

    def argv(self, container: dict[str, Any]) -> tuple[list[str], Path | None]:
        sc = {**(self.spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
        cname = f"podsim-{os.getpid()}-{next(_COUNTER)}-{container['name']}"[:60]
        argv = [*PODMAN_BASE, "--name", cname, "--hostname", self.name]
        if "runAsUser" in sc:
            argv += ["--user", f"{sc['runAsUser']}:{sc.get('runAsGroup', sc['runAsUser'])}"]
        if sc.get("readOnlyRootFilesystem"):
            argv += ["--read-only", "--read-only-tmpfs=false"]
        if sc.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        for cap in (sc.get("capabilities") or {}).get("drop") or []:
            argv += ["--cap-drop", cap]
        assert not sc.get("privileged"), "privileged containers are not simulated"
        for key, value in sorted(self._env(container).items()):
            argv += ["--env", f"{key}={value}"]
        for mount in container.get("volumeMounts") or []:
            host = self.volume(mount["name"])
            argv += ["--volume", f"{host}:{mount['mountPath']}:{'ro' if mount.get('readOnly') else 'rw'}"]
        argv += self.extra_mounts.get(container["name"], [])
        termination = None
        if container.get("terminationMessagePath"):
            termination = self.workdir / f"termination-{container['name']}"
            termination.write_text("")
            termination.chmod(0o666)
            argv += ["--volume", f"{termination}:{container['terminationMessagePath']}:rw"]
        if container.get("command"):
            argv += ["--entrypoint", json.dumps(container["command"])]
        argv.append(self.image_overrides.get(container["image"], container["image"]))
        argv += [str(a) for a in container.get("args") or []]
        return argv, termination

    def start(self, container: dict[str, Any]) -> tuple[subprocess.Popen, list[str], Path | None, float]:
        argv, termination = self.argv(container)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return proc, argv, termination, time.monotonic()

    @staticmethod
    def wait(container: dict[str, Any], started: tuple, timeout: float = 300) -> ContainerRun:
        proc, argv, termination, t0 = started
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        message = termination.read_text() if termination and termination.exists() else None
        return ContainerRun(container["name"], argv, proc.returncode, stdout, stderr, time.monotonic() - t0, message)

    def run_container(self, container: dict[str, Any], timeout: float = 300) -> ContainerRun:
        return self.wait(container, self.start(container), timeout)

    def run_init_containers(self, names: list[str] | None = None) -> list[ContainerRun]:
        """Run initContainers in order (only those in ``names`` when given); stop at the first failure."""
        runs = []
        for item in self.spec.get("initContainers") or []:
            if names is not None and item["name"] not in names:
                continue
            result = self.run_container(item)
            runs.append(result)
            if result.returncode != 0:
                break
        return runs
