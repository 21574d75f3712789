"""A throwaway declserve project on the real Docker engine, for tests.

Each project has a unique name, its own copy of the example registry and its own state
directory, runs the TensorFlow Serving double image (the real image cannot be pulled here), and
removes every container it labelled when the test ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "servings"


class TestProject:
    __test__ = False  # not a test class

    def __init__(
        self,
        base: Path,
        image: str,
        *,
        project_file: dict[str, Any] | None = None,
        kafka: str | None = None,
        proxy_image: str | None = None,
    ) -> None:
        self.name = "t" + uuid.uuid4().hex[:8]
        self.root = base / self.name
        self.root.mkdir(parents=True)
        shutil.copytree(EXAMPLES / "registry", self.root / "registry")
        self.state_dir = base / f"{self.name}-state"
        self.image = image
        doc = project_file or {
            "apiVersion": "declserve.io/v1",
            "kind": "Project",
            "metadata": {"name": self.name},
            "spec": {"registry": "registry", "backend": {}},
        }
        doc["metadata"]["name"] = self.name
        doc["spec"]["registry"] = "registry"
        doc["spec"]["backend"].update(self.backend_settings())
        if proxy_image:
            doc["spec"]["backend"]["loggingProxyImage"] = proxy_image
        if kafka:
            doc["spec"]["kafka"] = {"bootstrapServers": [kafka], "partitions": 2}
        self.write("declserve.yaml", doc)

    def backend_settings(self) -> dict[str, Any]:
        """The project file's backend section for this test project's backend."""
        return {
            "type": "docker",
            "image": self.image,
            "stateDir": str(self.state_dir),
            "pullPolicy": "never",
            "pollSeconds": 1,
            "readyTimeoutSeconds": 60,
        }

    @classmethod
    def clone_of(cls, other: TestProject, root: Path) -> TestProject:
        """The same project checked out at another path (its cleanup is the original's)."""
        clone = cls.__new__(cls)
        clone.name, clone.root, clone.image = other.name, root, other.image
        clone.state_dir = other.state_dir
        shutil.copytree(other.root, root)
        return clone

    def write(self, relative: str, *docs: dict[str, Any]) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return path

    def serving(
        self,
        name: str,
        *,
        model: str = "mnist",
        version: int | str = 1,
        labels: dict[str, str] | None = None,
        **spec: Any,
    ) -> Path:
        body = {
            "model": {"name": model, "version": version},
            "resources": {"cpu": "250m", "memory": "128Mi"},
        }
        body.update(spec)
        doc = {
            "apiVersion": "declserve.io/v1",
            "kind": "Serving",
            "metadata": {"name": name, **({"labels": labels} if labels else {})},
            "spec": body,
        }
        return self.write(f"servings/{name}.yaml", doc)

    def remove_serving(self, name: str) -> None:
        (self.root / "servings" / f"{name}.yaml").unlink()

    def command(self, name: str, *args: str) -> list[str]:
        """The argv of `declserve NAME -C <this project> ARGS...`, for a process of its own."""
        return [sys.executable, "-m", "declserve.cli", name, "-C", str(self.root), *args]

    def run(
        self, *args: str, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "declserve.cli", args[0], "-C", str(self.root), *args[1:]]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, (
            f"declserve {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
        return result

    def apply(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.ok("apply", "--auto-approve", "--no-color", *args)

    def plan(self, *args: str) -> dict[str, Any]:
        return json.loads(self.ok("plan", "--json", *args).stdout)

    def detailed_exitcode(self) -> int:
        return self.run("plan", "--detailed-exitcode", "--no-color").returncode

    def status(self) -> dict[str, dict[str, Any]]:
        return {row["name"]: row for row in json.loads(self.ok("status", "--json").stdout)}

    def containers(
        self, serving: str | None = None, *, proxies: bool = False
    ) -> list[dict[str, Any]]:
        """The project's replica containers (and front proxies too with `proxies`)."""
        label = f"declserve.io/project={self.name}"
        out = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label={label}", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        # the project's records (history store) belong to no serving
        rows = [r for r in rows if "declserve.io/role=records" not in r["Labels"]]
        if not proxies:
            rows = [r for r in rows if "declserve.io/role=" not in r["Labels"]]
        if serving is not None:
            rows = [r for r in rows if f"declserve.io/serving={serving}" in r["Labels"]]
        return rows

    def cleanup(self) -> None:
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=declserve.io/project={self.name}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        ids += subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"name=^/{self.name}-"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *sorted(set(ids))], capture_output=True)
        volumes = subprocess.run(
            ["docker", "volume", "ls", "-q", "--filter", f"label=declserve.io/history={self.name}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if volumes:
            subprocess.run(["docker", "volume", "rm", "-f", *volumes], capture_output=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def run_hand_made(project: TestProject, name: str, *flags: str) -> None:
    """A TensorFlow Serving (double) container of model iris, run by hand as a user would:
    not labelled by declserve; `flags` for `docker run` (ports, limits)."""
    model_dir = project.root / "registry" / "Models" / "iris"
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            *flags,
            "-v",
            f"{model_dir}:/models/iris:ro",
            "-e",
            "MODEL_NAME=iris",
            project.image,
        ],
        capture_output=True,
        text=True,
        check=True,
    )


def resource_change(plan: dict[str, Any], address: str) -> dict[str, Any]:
    for rc in plan["resource_changes"]:
        if rc["address"] == address:
            return rc  # type: ignore[no-any-return]
    raise AssertionError(
        f"{address} is not in the plan: {[rc['address'] for rc in plan['resource_changes']]}"
    )


def changes(plan: dict[str, Any], address: str) -> set[tuple[Any, ...]]:
    """The changed fields of one resource in a plan --json document, as comparable tuples."""
    rc = resource_change(plan, address)
    return {(c["path"], json.dumps(c["before"]), json.dumps(c["after"])) for c in rc["changes"]}


def steps(plan: dict[str, Any], address: str) -> list[tuple[str, str]]:
    """The steps of one resource's change, as (verb, target) pairs."""
    return [(s["op"], s["target"]) for s in resource_change(plan, address)["steps"]]


def field(path: str, before: Any, after: Any) -> tuple[Any, ...]:
    return (path, json.dumps(before), json.dumps(after))
