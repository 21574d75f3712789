"""`declserve import` on the real cluster: a hand-made Deployment (and Service) running the
TensorFlow Serving double is taken over without a pod restart while its Service keeps answering
on 127.0.0.1, its spec is written, and the next apply rolls it to declserve's template."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from declserve import spec as S
from tests.backends.contract.harness import KubernetesHarness
from tests.backends.docker.traffic import SteadyClient, served_version
from tests.backends.kubernetes.project import KubeProject
from tests.fixtures.cluster import Cluster
from tests.fixtures.polling import wait_until


@pytest.fixture
def harness(tmp_path: Path, cluster: Cluster,
            cluster_images: dict[str, str]) -> Iterator[KubernetesHarness]:
    made = KubernetesHarness(tmp_path, cluster, cluster_images)
    try:
        yield made
    finally:
        made.cleanup()


def hand_made(harness: KubernetesHarness) -> tuple[KubeProject, str]:
    project = harness.project()
    assert isinstance(project, KubeProject)
    (project.root / "servings").mkdir()
    name = f"{project.name}h"
    harness.hand_made(project, name, service=True)
    return project, name


def get(project: KubeProject, kind: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(project.kubectl("get", kind, name, "-o", "json").stdout)
    return doc


def pod_uids(project: KubeProject, name: str) -> set[str]:
    pods = json.loads(project.kubectl("get", "pods", "-l", f"app={name}", "-o", "json").stdout)
    return {p["metadata"]["uid"] for p in pods["items"]
            if not p["metadata"].get("deletionTimestamp")}


def node_url(project: KubeProject, name: str) -> str:
    port = get(project, "service", name)["spec"]["ports"][0]["nodePort"]
    return f"http://127.0.0.1:{port}/v1/models/iris"


def test_import_takes_over_without_a_restart_while_the_service_answers(
    harness: KubernetesHarness,
) -> None:
    project, name = hand_made(harness)
    url = node_url(project, name)
    uids = pod_uids(project, name)
    template = get(project, "deployment", name)["spec"]["template"]
    # kube-proxy may take a moment to program a new NodePort: failures before the Service
    # first answers are not the import's
    wait_until(lambda: served_version(url), timeout=60, message="the hand-made Service answers")
    with SteadyClient([url]) as client:
        result = project.ok("import", name, "--auto-approve")
        done = client.ok
        wait_until(lambda: client.ok > done + 20, timeout=30,
                   message="the adopted Service answers after import")
    assert client.failures == [], client.failures[:5]
    assert client.versions == {"2"}
    out = result.stdout
    assert f"take ownership of Deployment {name} (no pod restarts)" in out, out
    assert f"create ConfigMap {name}-config" in out, out
    assert f"take ownership of Service {name}" in out, out
    assert "the next apply rolls the pods to declserve's template: " in out, out
    # no restart: the same pods, the same template
    assert pod_uids(project, name) == uids
    dep = get(project, "deployment", name)
    assert dep["spec"]["template"] == template
    wait_until(lambda: (d := get(project, "deployment", name))["status"].get(
        "observedGeneration") == d["metadata"]["generation"], timeout=30,
        message="the Deployment controller observed the adopted Deployment")
    sets = json.loads(project.kubectl("get", "rs", "-l", f"app={name}", "-o", "json").stdout)
    assert len(sets["items"]) == 1, [s["metadata"]["name"] for s in sets["items"]]
    assert pod_uids(project, name) == uids
    labels = dep["metadata"]["labels"]
    assert labels["declserve.io/project"] == project.name
    assert labels["declserve.io/serving"] == name
    assert labels["app.kubernetes.io/managed-by"] == "declserve"
    assert dep["metadata"]["annotations"]["declserve.io/model-version"] == "2"
    # declserve is now the only writer of the hand-made fields (kubectl's entry moved over)
    managers = {(e["manager"], e["operation"]) for e in json.loads(project.kubectl(
        "get", "deployment", name, "-o", "json", "--show-managed-fields").stdout)[
        "metadata"]["managedFields"] if not e.get("subresource")}
    assert ("kubectl-client-side-apply", "Update") not in managers, managers
    assert ("declserve", "Apply") in managers, managers

    # the spec file is written and loads
    path = project.root / "servings" / f"{name}.yaml"
    doc = yaml.safe_load(path.read_text())
    serving = S.Serving.model_validate(doc)
    assert (serving.spec.model.name, serving.spec.model.version) == ("iris", 2)
    assert serving.spec.instances == 1
    assert serving.metadata.labels == {"app": name}

    # the next plan: the hand-made template's differences, as an update that rolls the pods
    plan = project.plan()
    (rc,) = plan["resource_changes"]
    assert rc["action"] == "update", rc
    paths = {c["path"] for c in rc["changes"]}
    assert any(p.startswith("pod.serving.readinessProbe") for p in paths), paths
    assert any(p.startswith("pod.volumes") for p in paths), paths
    previewed = out.split("the next apply rolls the pods to declserve's template: ")[1]
    previewed = previewed.split("\n")[0].split(", ")
    assert all(any(p.startswith(f) for f in previewed) for p in paths
               if not p.startswith("service")), (paths, previewed)
    assert any("the pods roll" in s.get("detail", "") for s in rc["steps"]), rc["steps"]
    targets = [s["target"] for s in rc["steps"]]
    assert targets[-1] == f"Service {name}", targets  # after the wait for the new pods

    with SteadyClient([url]) as during:
        project.apply()
    # The Service turns to the pods' named port only once they all have it (before that
    # change, thousands of requests failed here). The hand-made pods have no preStop pause,
    # so the few requests kube-proxy still sends them as they stop can fail: not counted.
    assert during.ok > 0 and during.versions == {"2"}
    assert project.detailed_exitcode() == 0
    assert not (pod_uids(project, name) & uids)  # rolled to declserve's pods
    container = get(project, "deployment", name)["spec"]["template"]["spec"]["containers"][0]
    # the hand-made env (MODEL_NAME) went with kubectl's ownership; declserve's own stays
    assert container["env"] == [{"name": "DECLSERVE_MODEL_VERSION", "value": "2"}], container
    assert "exec" in container["readinessProbe"] and "httpGet" not in container[
        "readinessProbe"], container["readinessProbe"]
    assert node_url(project, name) == url  # the node port the hand-made Service had stays
    status = project.status()[name]
    assert status["endpoints"] == [url]


def test_import_without_a_service_creates_one_that_answers(harness: KubernetesHarness) -> None:
    project = harness.project()
    assert isinstance(project, KubeProject)
    (project.root / "servings").mkdir()
    name = f"{project.name}h"
    harness.hand_made(project, name)
    uids = pod_uids(project, name)
    out = project.ok("import", name, "--auto-approve").stdout
    assert f"create Service {name} selecting the adopted pods (app={name}), to their port 8501" \
        in out, out
    assert pod_uids(project, name) == uids
    url = node_url(project, name)
    wait_until(lambda: served_version(url) == "2", timeout=30,
               message="the created Service answers from the adopted pods")
    project.apply()
    assert project.detailed_exitcode() == 0


def test_answering_no_changes_nothing(harness: KubernetesHarness) -> None:
    project, name = hand_made(harness)
    before = {kind: get(project, kind, name)["metadata"]["resourceVersion"]
              for kind in ("deployment", "service")}
    result = subprocess.run(project.command("import", name), input="no\n",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result
    assert f"take ownership of Deployment {name} (no pod restarts)" in result.stdout
    assert "Cancelled; nothing was changed." in result.stderr
    after = {kind: get(project, kind, name)["metadata"]["resourceVersion"]
             for kind in ("deployment", "service")}
    assert after == before
    assert project.kubectl("get", "configmap", f"{name}-config", check=False).returncode != 0
    assert not (project.root / "servings" / f"{name}.yaml").exists()
    assert "declserve.io/project" not in get(project, "deployment", name)["metadata"]["labels"]


def test_a_sidecar_is_refused(harness: KubernetesHarness) -> None:
    project, name = hand_made(harness)
    project.kubectl("patch", "deployment", name, "--type=json", "-p", json.dumps([{
        "op": "add", "path": "/spec/template/spec/containers/-",
        "value": {"name": "sidecar", "image": harness.images["serving"],
                  "imagePullPolicy": "Never", "command": ["sleep", "infinity"]}}]))
    result = project.run("import", name, "--auto-approve")
    assert result.returncode == 1
    assert "also runs sidecar" in result.stderr, result.stderr
    assert "declserve.io/project" not in get(project, "deployment", name)["metadata"]["labels"]
