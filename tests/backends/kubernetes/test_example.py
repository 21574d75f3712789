"""examples/kubernetes, applied as it is checked in (but for test settings) on the real cluster.

The copy differs from the example only where this machine needs it: a fresh namespace, the
TensorFlow Serving test double (DECLSERVE_IMAGE, imported into the cluster, never pulled),
NodePort Services (tests reach servings on 127.0.0.1 only), the admin kubeconfig, and smaller
CPU and memory requests (the one node has 2 CPUs for every engineer's tests; the example asks
for 2.25 CPUs running). None of the example's servings logs inferences, so no Kafka is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.backends.docker.traffic import predict
from tests.fixtures.cluster import Cluster

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "kubernetes"
REGISTRY = ROOT / "examples" / "servings" / "registry"
CYCLES = 10


class Example:
    def __init__(self, base: Path, cluster: Cluster, image: str) -> None:
        self.root = base / "kubernetes"
        shutil.copytree(EXAMPLE, self.root)
        shutil.copytree(REGISTRY, base / "servings" / "registry")  # ../servings/registry
        self.namespace = f"rbac-ex-{uuid.uuid4().hex[:8]}"
        self.image = image
        project = self.root / "declserve.yaml"
        doc = yaml.safe_load(project.read_text())
        doc["spec"]["backend"].update({
            "namespace": self.namespace, "kubeconfig": str(cluster.kubeconfig),
            "pullPolicy": "Never", "serviceType": "NodePort",
            "preStopSeconds": 2, "readyTimeoutSeconds": 120,
        })
        project.write_text(yaml.safe_dump(doc, sort_keys=False))
        for path in sorted((self.root / "servings").glob("*.yaml")):
            docs = list(yaml.safe_load_all(path.read_text()))
            for serving in docs:
                serving["spec"]["resources"] = {"cpu": "50m", "memory": "64Mi"}
            path.write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "declserve.cli", args[0], "-C", str(self.root), *args[1:]],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            env={**os.environ, "DECLSERVE_IMAGE": self.image},
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        res = self.run(*args)
        assert res.returncode == 0, f"declserve {' '.join(args)}: {res.stdout}\n{res.stderr}"
        return res


@pytest.fixture
def example(
    cluster: Cluster, cluster_images: dict[str, str], tmp_path: Path
) -> Iterator[Example]:
    made = Example(tmp_path, cluster, cluster_images["serving"])
    cluster.kubectl("create", "namespace", made.namespace)
    cluster.kubectl("label", "namespace", made.namespace, "declserve.io/test=true")
    try:
        yield made
    finally:
        cluster.kubectl("delete", "namespace", made.namespace, "--wait=false", check=False)


def test_the_example_applies_answers_and_stays_converged(example: Example) -> None:
    assert example.run("plan", "--detailed-exitcode", "--no-color").returncode == 2
    example.ok("apply", "--auto-approve", "--no-color")

    rows: dict[str, dict[str, Any]] = {
        r["name"]: r for r in json.loads(example.ok("status", "--json").stdout)}
    specs = {d["metadata"]["name"]: d["spec"] for p in (example.root / "servings").glob("*.yaml")
             for d in yaml.safe_load_all(p.read_text())}
    assert set(rows) == set(specs) == {"iris", "iris-v1", "mnist", "mnist-batched"}
    running = [n for n, s in specs.items() if s.get("state", "running") == "running"]
    assert sorted(running) == ["iris", "mnist", "mnist-batched"]
    assert rows["iris-v1"]["state"] == "stopped"
    for name in running:
        endpoints = rows[name]["endpoints"]
        assert endpoints and all(u.startswith("http://127.0.0.1:") for u in endpoints), rows[name]
        for url in endpoints:
            answer = predict(url)
            assert answer["predictions"], (name, answer)
            pinned = str(rows[name]["configuredVersion"])
            assert str(answer["model_version"]) == pinned, (name, answer)

    assert example.run("plan", "--detailed-exitcode", "--no-color").returncode == 0
    for cycle in range(CYCLES):
        example.ok("apply", "--auto-approve", "--no-color")
        plan = example.run("plan", "--detailed-exitcode", "--no-color")
        assert plan.returncode == 0, f"cycle {cycle + 1}: a phantom diff:\n{plan.stdout}"
