"""`status` and `logs` on the real cluster: the Service's addresses, health from the Deployment
and its pods, and every pod's log, followed as it grows."""

from __future__ import annotations

import subprocess

from tests.backends.docker.traffic import predict
from tests.backends.kubernetes.project import KubeProject
from tests.fixtures.polling import wait_until


def test_status_shows_the_service_inside_and_on_loopback(make_kube_project) -> None:
    project: KubeProject = make_kube_project()
    project.serving("m", instances=2)
    project.apply()
    row = project.status()["m"]
    assert row["health"] == "ready" and row["instancesReady"] == 2
    assert row["servedVersions"] == [1] and len(row["members"]) == 2
    (outside,) = row["endpoints"]
    assert outside.startswith("http://127.0.0.1:") and str(predict(outside)["model_version"]) == "1"
    assert row["innerEndpoints"] == [f"http://m.{project.namespace}.svc:8501/v1/models/mnist"]
    text = project.ok("status").stdout
    assert outside in text and "(inside the cluster)" in text


def test_logs_follow_every_pod(make_kube_project) -> None:
    project: KubeProject = make_kube_project()
    project.serving("m", instances=2)
    project.apply()
    pods = {p["metadata"]["name"] for p in project.pods("m")}
    tail = project.ok("logs", "m", "--tail", "5").stdout.splitlines()
    assert {line.split("/", 1)[0] for line in tail} == pods
    follow = subprocess.Popen(project.command("logs", "m", "-f", "--tail", "1"),
                              stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert follow.stdout is not None
        first = {follow.stdout.readline().split("/", 1)[0] for _ in range(2)}
        assert first == pods  # one line of each pod, then it follows
        victim = sorted(pods)[0]
        project.kubectl("delete", "pod", victim, "--wait=false")
        later: list[str] = []

        def shutdown_logged() -> bool:
            later.append(follow.stdout.readline())  # type: ignore[union-attr]
            return any(line.startswith(victim) and "(log stream ended)" not in line
                       for line in later)

        # the server's own shutdown line, written after the preStop pause, arrives live
        wait_until(shutdown_logged, timeout=60, message=lambda: f"{victim}'s last lines: {later}")
    finally:
        follow.terminate()
        follow.wait(timeout=30)
