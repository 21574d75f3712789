"""Rollouts on the real cluster: a version bump under load drops nothing, a batching change
reaches the server processes, a rollout that cannot finish fails with the pods' reason and
leaves the serving Degraded, two applies never act at once, and an unreachable API server is
one sentence and exit 1."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.backends.docker.project import changes, field
from tests.backends.docker.traffic import SteadyClient
from tests.backends.kubernetes.project import KubeProject
from tests.fixtures.docker_engine import free_port


def model_url(project: KubeProject, serving: str) -> str:
    (url,) = project.status()[serving]["endpoints"]
    return str(url)


def served_by_each_pod(project: KubeProject, serving: str) -> dict[str, list[str]]:
    """What every pod's server reports AVAILABLE, asked through the API server's pod proxy."""
    out = {}
    for pod in project.pods(serving):
        name = pod["metadata"]["name"]
        raw = project.cluster.kubectl(
            "get", "--raw",
            f"/api/v1/namespaces/{project.namespace}/pods/{name}:8501/proxy/v1/models/mnist",
        ).stdout
        out[name] = sorted(v["version"] for v in json.loads(raw)["model_version_status"]
                           if v["state"] == "AVAILABLE")
    return out


def test_a_version_bump_under_load_drops_no_request(make_kube_project) -> None:
    project: KubeProject = make_kube_project()
    project.serving("m", version=1, instances=2)
    project.apply()
    url = model_url(project, "m")
    project.serving("m", version=2, instances=2)
    assert changes(project.plan(), "serving.m") == {field("model.version", 1, 2)}
    with SteadyClient([url]) as client:
        project.apply()
    assert client.failures == [], client.failures[:5]
    assert client.ok > 50 and client.versions == {"1", "2"}, (client.ok, client.versions)
    assert model_url(project, "m") == url  # the Service is the one stable address
    assert set(map(tuple, served_by_each_pod(project, "m").values())) == {("2",)}
    assert len(project.pods("m")) == 2 and project.detailed_exitcode() == 0


def loaded_batch_sizes(project: KubeProject, serving: str) -> set[str]:
    """The max_batch_size each pod's server process says it loaded when it started."""
    found = set()
    for line in project.ok("logs", serving, "--tail", "200").stdout.splitlines():
        match = re.search(r"max_batch_size: (\d+)\)", line)
        if match:
            found.add(match.group(1))
    return found


def test_a_batching_change_reaches_the_server_processes(make_kube_project) -> None:
    project: KubeProject = make_kube_project()
    project.serving("m", instances=2, batching={"enabled": True, "maxBatchSize": 8})
    project.apply()
    assert loaded_batch_sizes(project, "m") == {"8"}
    project.serving("m", instances=2, batching={"enabled": True, "maxBatchSize": 16})
    plan = project.plan()
    assert changes(plan, "serving.m") == {field("batching.max_batch_size", 8, 16)}
    assert any("the pods roll" in s["detail"] for s in plan["resource_changes"][0]["steps"])
    project.apply()
    assert loaded_batch_sizes(project, "m") == {"16"} and project.detailed_exitcode() == 0


def test_a_rollout_that_cannot_finish_fails_with_the_reason_and_is_degraded(
    make_kube_project,
) -> None:
    project: KubeProject = make_kube_project()
    project.serving("m", instances=1)
    project.apply()
    missing = {"DECLSERVE_IMAGE": "declserve/no-such-image:0"}
    failed = project.run("apply", "--auto-approve", "--no-color", env=missing)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "ErrImageNeverPull" in failed.stdout + failed.stderr
    # the old pod still answers: maxUnavailable 0 kept it
    assert project.status()["m"]["instancesReady"] == 1
    broken = project.run("plan", "--json", env=missing)
    assert broken.returncode == 0
    (rc,) = json.loads(broken.stdout)["resource_changes"]
    assert rc["action"] == "repair" and "ErrImageNeverPull" in rc["reason"], rc
    project.apply()  # the spec's image again
    assert project.detailed_exitcode() == 0 and project.status()["m"]["health"] == "ready"


def test_two_applies_at_once_one_acts_the_other_names_the_lease_holder(
    make_kube_project,
) -> None:
    project: KubeProject = make_kube_project()
    project.serving("m", instances=2)
    procs = [subprocess.Popen(project.command("apply", "--auto-approve", "--no-color"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)
             for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    _, _, refused = next(r for r in results if r[0] == 1)
    assert "locked" in refused and "held by" in refused, refused
    assert len(project.pods("m")) == 2 and project.detailed_exitcode() == 0
    assert project.kubectl("get", "lease", "-o", "name").stdout.strip() == ""  # released


def test_an_unreachable_api_server_is_one_sentence_and_changes_nothing(
    make_kube_project, tmp_path: Path
) -> None:
    project: KubeProject = make_kube_project()
    project.serving("m")
    config = yaml.safe_load(Path(project.cluster.kubeconfig).read_text())
    for c in config["clusters"]:
        c["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    down = tmp_path / "down.kubeconfig"
    down.write_text(yaml.safe_dump(config))
    down.chmod(0o600)
    doc = yaml.safe_load((project.root / "declserve.yaml").read_text())
    doc["spec"]["backend"]["kubeconfig"] = str(down)
    project.write("declserve.yaml", doc)
    for command in (("plan",), ("apply", "--auto-approve"), ("status",)):
        result = project.run(*command)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot reach the Kubernetes API server" in lines[0], lines
        assert "token" not in result.stderr.lower()
    assert project.objects("deployments") == [] and project.objects("configmaps") == []
