"""What the contract suite needs from each serving backend's real server, beyond declserve itself.

A harness makes a throwaway project on its backend and does, by hand and with the backend's
own tools, what a user or an operator might do behind declserve's back: scale a serving,
break one of its members, start a serving by hand for `declserve import`. Each backend that
joins the contract suite adds a harness here and a parameter in `conftest.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Protocol

from tests.backends.docker.project import TestProject
from tests.backends.kubernetes.project import KubeProject
from tests.fixtures.cluster import CACHE, Cluster
from tests.fixtures.polling import wait_until


class Harness(Protocol):
    name: str

    def project(self, **kw: Any) -> TestProject: ...

    def members(self, project: TestProject, serving: str) -> int:
        """How many members (replicas, pods) of the serving exist on the backend."""
        ...

    def scale_by_hand(self, project: TestProject, serving: str, instances: int) -> None: ...

    def break_member(self, project: TestProject, serving: str) -> None:
        """Leave one member of a running serving unable to answer."""
        ...

    def hand_made(self, project: TestProject, name: str) -> None:
        """A serving of model iris started by hand, not by declserve, for import."""
        ...

    def cleanup(self) -> None: ...


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


class DockerHarness:
    name = "docker"

    def __init__(self, base: Path, image: str, proxy_image: str) -> None:
        self.base = base
        self.image = image
        self.proxy_image = proxy_image
        self.made: list[TestProject] = []
        self.hand: list[str] = []

    def project(self, **kw: Any) -> TestProject:
        kw.setdefault("proxy_image", self.proxy_image)
        project = TestProject(self.base, self.image, **kw)
        self.made.append(project)
        return project

    def members(self, project: TestProject, serving: str) -> int:
        rows = project.containers(serving)
        return sum(1 for r in rows if "declserve.io/role=" not in r["Labels"])

    def scale_by_hand(self, project: TestProject, serving: str, instances: int) -> None:
        names = sorted(
            r["Names"]
            for r in project.containers(serving)
            if "declserve.io/role=" not in r["Labels"]
        )
        for name in names[instances:]:
            docker("rm", "-f", name)

    def break_member(self, project: TestProject, serving: str) -> None:
        docker("pause", f"{project.name}-{serving}-0")

    def hand_made(self, project: TestProject, name: str) -> None:
        model_dir = project.root / "registry" / "Models" / "iris"
        docker(
            "run",
            "-d",
            "--name",
            name,
            "-p",
            "127.0.0.1::8501",
            "-v",
            f"{model_dir}:/models/iris:ro",
            "-e",
            "MODEL_NAME=iris",
            self.image,
        )
        self.hand.append(name)

    def cleanup(self) -> None:
        for name in self.hand:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        for project in self.made:
            paused = docker(
                "ps",
                "-q",
                "--filter",
                f"label=declserve.io/project={project.name}",
                "--filter",
                "status=paused",
            ).split()
            if paused:
                docker("unpause", *paused)
            project.cleanup()


class KubernetesHarness:
    name = "kubernetes"
    SOCKET = CACHE / "cluster" / "run" / "containerd" / "containerd.sock"

    def __init__(self, base: Path, cluster: Cluster, images: dict[str, str]) -> None:
        self.base = base
        self.cluster = cluster
        self.images = images
        self.made: list[KubeProject] = []
        self.stopped: list[int] = []

    def project(self, **kw: Any) -> TestProject:
        kw.setdefault("proxy_image", self.images["proxy"])
        project = KubeProject(self.base, self.images["serving"], cluster=self.cluster, **kw)
        self.made.append(project)
        return project

    def _kube(self, project: TestProject) -> KubeProject:
        assert isinstance(project, KubeProject)
        return project

    def members(self, project: TestProject, serving: str) -> int:
        return len(self._kube(project).pods(serving))

    def scale_by_hand(self, project: TestProject, serving: str, instances: int) -> None:
        kube = self._kube(project)
        kube.kubectl("scale", f"deployment/{serving}", f"--replicas={instances}")
        wait_until(lambda: len(kube.pods(serving)) == instances, timeout=60,
                   message=f"{serving} scaled to {instances} by hand")

    def break_member(self, project: TestProject, serving: str) -> None:
        """Stop one pod's server process (SIGSTOP from the host), as a hung server would be:
        connections are still accepted, nothing answers."""
        pod = sorted(self._kube(project).pods(serving), key=lambda p: p["metadata"]["name"])[0]
        status = next(c for c in pod["status"]["containerStatuses"] if c["name"] == "serving")
        cid = status["containerID"].split("://", 1)[1]
        tasks = subprocess.run(["ctr", "-a", str(self.SOCKET), "-n", "k8s.io", "task", "ls"],
                               check=True, capture_output=True, text=True).stdout
        pid = next(int(line.split()[1]) for line in tasks.splitlines()
                   if line.split() and line.split()[0] == cid)
        os.kill(pid, signal.SIGSTOP)
        self.stopped.append(pid)
        # kubelet notices through the readiness probe (seconds), declserve once it lasts
        wait_until(lambda: project.detailed_exitcode() == 2, timeout=90,
                   message=f"the stopped server of pod {pod['metadata']['name']} seen as broken")

    def hand_made(self, project: TestProject, name: str, *, service: bool = False) -> None:
        """With `service`, a NodePort Service named `name` in front of it too."""
        kube = self._kube(project)
        registry = (kube.root / "registry").resolve()
        manifest = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{
                        "name": "serving",
                        "image": self.images["serving"],
                        "imagePullPolicy": "Never",
                        "env": [{"name": "MODEL_NAME", "value": "iris"}],
                        "ports": [{"containerPort": 8501}],
                        "readinessProbe": {"httpGet": {"path": "/v1/models/iris",
                                                       "port": 8501}, "periodSeconds": 2},
                        "volumeMounts": [{"name": "models", "mountPath": "/models/iris",
                                          "readOnly": True}],
                    }],
                        "volumes": [{"name": "models", "hostPath": {
                            "path": f"{registry}/Models/iris", "type": "Directory"}}]},
                },
            },
        }
        kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        if service:
            kube.kubectl("apply", "-f", "-", input=json.dumps({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {"type": "NodePort", "selector": {"app": name},
                         "ports": [{"port": 8501, "targetPort": 8501}]},
            }))
        kube.kubectl("rollout", "status", f"deployment/{name}", "--timeout=90s")

    def cleanup(self) -> None:
        for pid in self.stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        for project in self.made:
            project.cleanup()
