"""What the contract suite needs from each serving backend's real server, beyond declserve itself.

A harness makes a throwaway project on its backend and does, by hand and with the backend's
own tools, what a user or an operator might do behind declserve's back: scale a serving,
break one of its members, start a serving by hand for `declserve import`. Each backend that
joins the contract suite adds a harness here and a parameter in `conftest.py`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Protocol

from tests.backends.docker.project import TestProject


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
