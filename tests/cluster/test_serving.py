"""The TensorFlow Serving double as a Kubernetes Deployment on the real single-node cluster:
it goes Ready behind a readiness probe, answers on 127.0.0.1 through a NodePort, rolls to a new
version without dropping a request, sees ConfigMap changes, and its logs are readable through
the API (what `declserve logs` will use)."""

from __future__ import annotations

import re
import subprocess
import threading
import time

import pytest

from tests.cluster.workloads import (
    MODEL,
    PRESTOP_SECONDS,
    apply,
    configmap,
    double_deployment,
    http,
    node_port,
    pods_of,
    service,
    wait_rollout,
)
from tests.fixtures.cluster import Cluster, no_proxy_env
from tests.fixtures.polling import wait_until

# The first run may build the cluster's binaries inside the session fixture.
pytestmark = pytest.mark.timeout(3600)

NAME = "mnist"


@pytest.fixture(scope="module")
def serving(cluster: Cluster, cluster_namespace: str) -> tuple[str, str]:
    """Deployment (2 replicas) + NodePort Service of the double, serving mnist version 1."""
    ns = cluster_namespace
    t0 = time.monotonic()
    apply(
        cluster,
        ns,
        configmap("mnist-v1", 1),
        double_deployment(NAME, "mnist-v1"),
        service(NAME, node_port=True),
    )
    wait_rollout(cluster, ns, NAME)
    print(f"2 replicas Ready {time.monotonic() - t0:.1f}s after apply")
    url = f"http://127.0.0.1:{node_port(cluster, ns, NAME)}"
    return ns, url


def test_deployment_goes_ready_and_answers_on_loopback(cluster: Cluster, serving) -> None:
    ns, url = serving
    pods = pods_of(cluster, ns, NAME)
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running"
        assert all(c.ready for c in pod.status.container_statuses)
        assert pod.status.pod_ip.startswith("10.244.0."), pod.status.pod_ip
        mount = next(m for m in pod.spec.containers[0].volume_mounts if m.name == "registry")
        assert mount.read_only is True
    status, body = wait_until(
        lambda: (r := http("GET", f"{url}/v1/models/{MODEL}"))[0] == 200 and r,
        timeout=30,
        message=f"GET {url}/v1/models/{MODEL}",
    )
    assert body["model_version_status"][0]["state"] == "AVAILABLE"
    assert body["model_version_status"][0]["version"] == "1"
    status, body = http("POST", f"{url}/v1/models/{MODEL}:predict", {"instances": [[1.0, 2.0]]})
    assert status == 200 and body["model_version"] == "1", body


def test_port_forward_on_loopback_answers(cluster: Cluster, serving) -> None:
    """`kubectl port-forward --address 127.0.0.1` (API server -> kubelet -> containerd)."""
    ns, _ = serving
    proc = subprocess.Popen(
        [
            "/usr/bin/kubectl",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "-n",
            ns,
            "port-forward",
            "--address",
            "127.0.0.1",
            f"svc/{NAME}",
            ":8501",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=no_proxy_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 8501"
        m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8501", line)
        assert m, line
        url = f"http://127.0.0.1:{m.group(1)}/v1/models/{MODEL}"
        status, body = wait_until(
            lambda: (r := http("GET", url))[0] == 200 and r, timeout=30, message=f"GET {url}"
        )
        assert body["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_pod_logs_readable_through_the_api(cluster: Cluster, serving) -> None:
    ns, _ = serving
    core = cluster.core()
    for pod in pods_of(cluster, ns, NAME):
        logs = core.read_namespaced_pod_log(pod.metadata.name, ns, container="serving")
        assert f"Successfully loaded servable version {{name: {MODEL} version: 1}}" in logs, logs


def test_configmap_change_reaches_the_mounted_file(cluster: Cluster, serving) -> None:
    ns, _ = serving
    pod = next(p for p in pods_of(cluster, ns, NAME) if p.metadata.deletion_timestamp is None)
    read = ["-n", ns, "exec", pod.metadata.name, "-c", "serving", "--", "cat", "/config/note"]
    assert cluster.kubectl(*read).stdout == "initial"
    t0 = time.monotonic()
    cluster.core().patch_namespaced_config_map("mnist-v1", ns, {"data": {"note": "changed"}})
    wait_until(
        lambda: cluster.kubectl(*read).stdout == "changed",
        timeout=120,
        interval=0.5,
        message="the new ConfigMap value in the running pod's mounted file",
    )
    seconds = time.monotonic() - t0
    print(f"ConfigMap change reached the mounted file in {seconds:.1f}s")
    assert seconds < 120


def test_rolling_update_drops_no_request(cluster: Cluster, serving) -> None:
    """maxUnavailable 0 + readiness probe + a preStop delay: a client that sends without pause
    sees no failed request while both pods are replaced (version 1 -> 2)."""
    ns, url = serving
    results: list[tuple[int, str]] = []
    errors: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                status, body = http(
                    "POST", f"{url}/v1/models/{MODEL}:predict", {"instances": [[1.0, 2.0]]}
                )
                results.append((status, body.get("model_version", "")))
            except Exception as exc:  # noqa: BLE001 - a refused/reset connection is a failure
                errors.append(repr(exc))
                results.append((0, ""))

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(results) >= 5, timeout=30, message="first answers")
        apply(cluster, ns, configmap("mnist-v2", 2))
        t0 = time.monotonic()
        cluster.apps().patch_namespaced_deployment(
            NAME,
            ns,
            {
                "spec": {
                    "template": {
                        "spec": {"volumes": [{"name": "config", "configMap": {"name": "mnist-v2"}}]}
                    }
                }
            },
        )
        wait_rollout(cluster, ns, NAME, timeout=180)
        rolled = time.monotonic() - t0
        def old_gone() -> bool:
            pods = pods_of(cluster, ns, NAME)
            return all(p.metadata.deletion_timestamp is None for p in pods) and len(pods) == 2

        wait_until(old_gone, timeout=60, message="old pods gone")
        n = len(results)
        wait_until(lambda: len(results) >= n + 20, timeout=30, message="answers after the roll")
    finally:
        stop.set()
        thread.join(timeout=10)
    failed = [r for r in results if r[0] != 200]
    versions = {v for s, v in results if s == 200}
    print(
        f"rolling update in {rolled:.1f}s with preStop sleep {PRESTOP_SECONDS}s: "
        f"{len(results)} requests, {len(failed)} failed"
    )
    assert not failed, f"{len(failed)} of {len(results)} requests failed: {errors[:5]}"
    assert versions == {"1", "2"}, versions
    assert results[-1] == (200, "2")
