"""Manifests and waits shared by the tests on the real single-node cluster (tests/cluster/).

The serving image is declserve's TEST DOUBLE of TensorFlow Serving
(declserve/tfserving-double, testinfra/tfserving-double/), imported into the cluster's
containerd by scripts/cluster.sh; pods never pull (imagePullPolicy: Never).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests.fixtures.cluster import REPO, Cluster
from tests.fixtures.polling import wait_until

DOUBLE_IMAGE = "declserve/tfserving-double:latest"
REGISTRY = REPO / "examples" / "servings" / "registry"
MODEL = "mnist"
PRESTOP_SECONDS = 2  # see testinfra/cluster/NOTES.md: without it a rolling update drops requests


def model_config(version: int, model: str = MODEL) -> str:
    return (
        "model_config_list {\n  config {\n"
        f"    name: '{model}'\n    base_path: '/registry/Models/{model}'\n"
        "    model_platform: 'tensorflow'\n"
        f"    model_version_policy {{ specific {{ versions: {version} }} }}\n"
        "  }\n}\n"
    )


def configmap(name: str, version: int, note: str = "initial") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"models.config": model_config(version), "note": note},
    }


def double_deployment(
    name: str, config: str, replicas: int = 2, prestop_seconds: int = PRESTOP_SECONDS
) -> dict:
    container = {
        "name": "serving",
        "image": DOUBLE_IMAGE,
        "imagePullPolicy": "Never",
        "args": [
            "--model_config_file=/config/models.config",
            "--model_config_file_poll_wait_seconds=1",
        ],
        "ports": [{"name": "rest", "containerPort": 8501}],
        "readinessProbe": {
            "httpGet": {"path": f"/v1/models/{MODEL}", "port": 8501},
            "periodSeconds": 1,
            "failureThreshold": 1,
            "timeoutSeconds": 1,
        },
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
        "volumeMounts": [
            {"name": "registry", "mountPath": "/registry", "readOnly": True},
            {"name": "config", "mountPath": "/config", "readOnly": True},
        ],
    }
    if prestop_seconds:
        container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(prestop_seconds)]}}}
    pod_spec = {
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": [
            {"name": "registry", "hostPath": {"path": str(REGISTRY), "type": "Directory"}},
            {"name": "config", "configMap": {"name": config}},
        ],
    }
    labels = {"app": name}
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": strategy,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def service(name: str, node_port: bool) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": "NodePort" if node_port else "ClusterIP",
            "selector": {"app": name},
            "ports": [{"name": "rest", "port": 8501, "targetPort": 8501}],
        },
    }


def apply(cluster: Cluster, namespace: str, *objs: dict) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)})
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=body)


def rollout_done(cluster: Cluster, namespace: str, name: str) -> bool:
    d = cluster.apps().read_namespaced_deployment(name, namespace)
    s, want = d.status, d.spec.replicas
    return (
        (s.observed_generation or 0) >= d.metadata.generation
        and (s.updated_replicas or 0) == want
        and (s.ready_replicas or 0) == want
        and (s.available_replicas or 0) == want
        and (s.replicas or 0) == want
        and not s.unavailable_replicas
    )


def wait_rollout(cluster: Cluster, namespace: str, name: str, timeout: float = 120) -> None:
    def why() -> str:
        pods = cluster.kubectl("-n", namespace, "get", "pods", "-o", "wide", check=False).stdout
        events = cluster.kubectl("-n", namespace, "get", "events", check=False).stdout
        return f"Deployment {namespace}/{name} rolled out\n{pods}\n{events[-3000:]}"

    wait_until(
        lambda: rollout_done(cluster, namespace, name), timeout=timeout, interval=0.5, message=why
    )


def http(method: str, url: str, body: dict | None = None, timeout: float = 3.0) -> tuple[int, dict]:
    """One request without any proxy; (status, JSON body)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def node_port(cluster: Cluster, namespace: str, name: str) -> int:
    svc = cluster.core().read_namespaced_service(name, namespace)
    return svc.spec.ports[0].node_port


def pods_of(cluster: Cluster, namespace: str, app: str) -> list:
    return cluster.core().list_namespaced_pod(namespace, label_selector=f"app={app}").items
