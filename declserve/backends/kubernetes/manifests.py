"""The objects declserve applies for a serving on Kubernetes (pure): Deployment, Service, ConfigMap.

Everything here is a function of a `ServingShape`, the neutral description of a serving, so
that the same function gives what the spec asks for and, from a live serving's neutral fields,
what declserve would have applied to it: the essence compares the two (essence.py).

A version bump is a rolling update: the model config lives in the ConfigMap, each container
mounts its files one by one by subPath (a running pod keeps the config it started with, so a
broken new version never reaches the old pods; one subPath for the whole directory would not:
kubelet empties the old copy of the volume on every change, and a directory mount shows that
at once), the pod template carries the config's digest (any config change rolls out new pods)
and the pinned version (`DECLSERVE_MODEL_VERSION`), `maxUnavailable: 0` keeps every old pod
until a new one is ready, the readiness probe passes only when the server reports the pod's
pinned version AVAILABLE, and a `preStop` pause lets kube-proxy drop a pod from the Service
before it stops answering. TensorFlow Serving reads its config once (poll 0).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from declserve.backends import tfserving as tfs
from declserve.backends.kubernetes.settings import KubernetesSettings
from declserve.desired import DesiredServing
from declserve.registry import MODELS_DIR
from declserve.spec import DesiredState

LABEL_MANAGED = "app.kubernetes.io/managed-by"
LABEL_PROJECT = "declserve.io/project"
LABEL_SERVING = "declserve.io/serving"
ANN_VERSION = "declserve.io/model-version"
ANN_INSTANCES = "declserve.io/instances"  # the desired instances, kept while stopped
ANN_PROTECTED = "declserve.io/protected"
ANN_LABEL_KEYS = "declserve.io/label-keys"
ANN_CONFIG_HASH = "declserve.io/config-hash"
MANAGER_VALUE = "declserve"
SERVING_CONTAINER = "serving"
PROXY_CONTAINER = "proxy"
PROXY_PORT = 8080
PROXY_CONFIG = "proxy.json"
UPSTREAMS = "upstreams.json"
VERSION_ENV = "DECLSERVE_MODEL_VERSION"
CONFIG_SUBDIR = "files"  # the ConfigMap's files sit in one directory, each mounted by subPath
GPU_RESOURCE = "nvidia.com/gpu"
PORT_REST = "rest"
PORT_GRPC = "grpc"
PORT_FRONT = "front"
# The proxy's own settings, the same as on Docker where they matter: a logged request may use
# all but this much of a record (the rest holds the predictions), a larger one gets 413.
REPLY_ROOM = 2**20
# On SIGTERM the proxy stops accepting, answers what it holds for at most this long, then
# flushes its records for at most PROXY_FLUSH_S; the server in the same pod outlives the drain.
PROXY_DRAIN_S = 5
PROXY_FLUSH_S = 3
# Memory: the producer's queue may hold 256 MiB of records while the broker is away
# (queue.buffering.max.kbytes in proxy.py), plus the interpreter and the bodies in flight.
PROXY_REQUESTS = (("cpu", "50m"), ("memory", "96Mi"))
PROXY_LIMITS = (("cpu", "1"), ("memory", "512Mi"))


@dataclass(frozen=True)
class ServingShape:
    """A serving in the backend's neutral terms: made from a spec, or read back from the cluster."""

    name: str
    model: str
    version: int
    instances: int
    running: bool
    image: str
    cpu: str
    memory: str
    gpus: int = 0
    batching: dict[str, Any] | None = None  # TensorFlow Serving's parameters; None: off
    labels: dict[str, str] = field(default_factory=dict)
    logging: dict[str, Any] | None = None  # topic, mode, maxRecordBytes, bootstrap; None: off
    protected: bool = False
    node_port: int | None = None

    @classmethod
    def of(cls, d: DesiredServing, s: KubernetesSettings) -> ServingShape:
        spec = d.spec
        logging = spec.inference_logging
        return cls(
            name=d.name,
            model=spec.model.name,
            version=d.version,
            instances=spec.instances,
            running=spec.state is DesiredState.RUNNING,
            image=s.image,
            cpu=spec.resources.cpu,
            memory=spec.resources.memory,
            gpus=spec.resources.gpus,
            batching=spec.batching.parameters() if spec.batching.enabled else None,
            labels=dict(d.serving.metadata.labels),
            logging={"topic": d.topic, "mode": logging.mode.value,
                     "maxRecordBytes": s.max_message_bytes, "bootstrap": s.kafka_bootstrap}
            if d.topic is not None and logging is not None
            else None,
            protected=spec.protected,
            node_port=spec.endpoint.port if s.service_type == "NodePort" else None,
        )


def selector(s: KubernetesSettings, serving: str) -> dict[str, str]:
    return {LABEL_PROJECT: s.project, LABEL_SERVING: serving}


def object_labels(s: KubernetesSettings, shape: ServingShape) -> dict[str, str]:
    return {**shape.labels, LABEL_MANAGED: MANAGER_VALUE, **selector(s, shape.name)}


def config_data(s: KubernetesSettings, shape: ServingShape) -> dict[str, str]:
    data = {
        tfs.MODEL_CONFIG: tfs.model_config_text(shape.model, shape.version),
        # always present, so that the pods' mounts do not depend on whether batching is on
        tfs.BATCHING_CONFIG: tfs.batching_config_text(shape.batching or {}),
    }
    if shape.logging is not None:
        data[PROXY_CONFIG] = json.dumps(_proxy_config(s, shape), indent=2, sort_keys=True)
        data[UPSTREAMS] = json.dumps({"upstreams": [f"http://127.0.0.1:{tfs.REST_PORT}"]})
    return data


def _proxy_config(s: KubernetesSettings, shape: ServingShape) -> dict[str, Any]:
    """proxy.json, in the keys of declserve/logproxy/proxy.py's docstring."""
    assert shape.logging is not None
    max_record = shape.logging["maxRecordBytes"]
    return {
        "serving": shape.name,
        "model": shape.model,
        "listen": f"0.0.0.0:{PROXY_PORT}",
        "mode": shape.logging["mode"],
        "topic": shape.logging["topic"],
        # the brokers as the pods reach them (kubernetes.kafkaBootstrapServers)
        "bootstrap": shape.logging.get("bootstrap") or s.kafka_bootstrap,
        "upstreamsFile": f"{tfs.CONFIG_DIR}/{UPSTREAMS}",
        "modelConfigFile": f"{tfs.CONFIG_DIR}/{tfs.MODEL_CONFIG}",
        "maxRecordBytes": max_record,
        "maxRequestBytes": max_record - REPLY_ROOM,
        "drainSeconds": PROXY_DRAIN_S,
        "flushSeconds": PROXY_FLUSH_S,
    }


def config_hash(data: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _annotations(shape: ServingShape) -> dict[str, str]:
    out = {
        ANN_VERSION: str(shape.version),
        ANN_INSTANCES: str(shape.instances),
        ANN_LABEL_KEYS: ",".join(sorted(shape.labels)),
    }
    if shape.protected:
        out[ANN_PROTECTED] = "true"
    return out


def _metadata(s: KubernetesSettings, shape: ServingShape, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": s.namespace,
        "labels": object_labels(s, shape),
        "annotations": _annotations(shape),
    }


def readiness_command(model: str, port: int = tfs.REST_PORT) -> list[str]:
    """Ready only when the server reports the pod's pinned version AVAILABLE.

    `GET /v1/models/<name>` answers 200 while a version is still loading, so an HTTP probe
    cannot tell; bash's /dev/tcp reads the body with nothing but the shell the image has. The
    version comes from the pod template, not the file, so a pod is judged by what it was made
    for. The script bounds its own reads (`read -t`): kubelet treats an exec probe that it has
    to cancel as unknown, not as failed, so a hung server would otherwise stay ready.
    """
    script = (
        f"exec 3<>/dev/tcp/127.0.0.1/{port}"
        f" && printf 'GET /v1/models/{model}/versions/%s HTTP/1.0\\r\\n\\r\\n'"
        f' "${VERSION_ENV}" >&3'
        ' && while IFS= read -r -t 2 line <&3 || [ -n "$line" ];'
        ' do case "$line" in *AVAILABLE*) exit 0;; esac; line=; done; exit 1'
    )
    return ["bash", "-c", script]


def _models_volume(s: KubernetesSettings, model: str) -> tuple[dict[str, Any], str | None]:
    """The volume holding the registry's model directory, and the mount's subPath."""
    if s.models_claim:
        sub = "/".join(p for p in (s.models_sub_path.strip("/"), MODELS_DIR, model) if p)
        return {"name": "models",
                "persistentVolumeClaim": {"claimName": s.models_claim, "readOnly": True}}, sub
    root = (s.models_host_path or "/").rstrip("/")
    return {"name": "models",
            "hostPath": {"path": f"{root}/{MODELS_DIR}/{model}", "type": "Directory"}}, None


def config_mounts(*files: str) -> list[dict[str, Any]]:
    """The ConfigMap's files in the config directory, each by its own subPath: the container
    keeps the file it started with when the ConfigMap changes (a new pod sees the new one)."""
    return [{"name": "config", "mountPath": f"{tfs.CONFIG_DIR}/{f}",
             "subPath": f"{CONFIG_SUBDIR}/{f}", "readOnly": True} for f in files]


def serving_container(s: KubernetesSettings, shape: ServingShape) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": shape.cpu, "memory": shape.memory}
    if shape.gpus:
        limits[GPU_RESOURCE] = str(shape.gpus)
    _, sub_path = _models_volume(s, shape.model)
    models_mount: dict[str, Any] = {
        "name": "models", "mountPath": f"{tfs.MODELS_MOUNT}/{shape.model}", "readOnly": True
    }
    if sub_path:
        models_mount["subPath"] = sub_path
    container: dict[str, Any] = {
        "name": SERVING_CONTAINER,
        "image": shape.image,
        "imagePullPolicy": s.pull_policy,
        "command": ["tensorflow_model_server"],
        "args": tfs.server_args(0, shape.batching is not None),
        "env": [{"name": VERSION_ENV, "value": str(shape.version)}],
        "ports": [
            {"name": PORT_REST, "containerPort": tfs.REST_PORT, "protocol": "TCP"},
            {"name": PORT_GRPC, "containerPort": tfs.GRPC_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "exec": {"command": readiness_command(shape.model)},
            "periodSeconds": 2,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": f"/v1/models/{shape.model}", "port": PORT_REST},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "resources": {"requests": {"cpu": shape.cpu, "memory": shape.memory}, "limits": limits},
        "volumeMounts": [
            models_mount,
            *config_mounts(tfs.MODEL_CONFIG, tfs.BATCHING_CONFIG),
        ],
    }
    # With the proxy in front, the server answers until the proxy's drain is over.
    pause = s.pre_stop_seconds + (PROXY_DRAIN_S if shape.logging is not None else 0)
    if pause:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": pause}}}
    return container


def proxy_container(s: KubernetesSettings, shape: ServingShape) -> dict[str, Any]:
    """The inference-logging proxy in front of the server in the same pod.

    Its readiness is that it answers: the pod is ready only when the server's own probe passes
    too, so the proxy needs not repeat it. `preStop` keeps it accepting until kube-proxy has
    dropped the pod; SIGTERM then makes it drain its requests and flush its records.
    """
    container: dict[str, Any] = {
        "name": PROXY_CONTAINER,
        "image": s.proxy_image,
        "imagePullPolicy": s.pull_policy,
        # `command`, not `args`: the image has no ENTRYPOINT, args alone would replace its CMD
        "command": ["python3", "/app/proxy.py", "--config", f"{tfs.CONFIG_DIR}/{PROXY_CONFIG}"],
        "ports": [{"name": PORT_FRONT, "containerPort": PROXY_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/-/healthz", "port": PORT_FRONT},
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/-/healthz", "port": PORT_FRONT},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "resources": {"requests": dict(PROXY_REQUESTS), "limits": dict(PROXY_LIMITS)},
        "volumeMounts": [
            *config_mounts(PROXY_CONFIG, UPSTREAMS, tfs.MODEL_CONFIG),
        ],
    }
    if s.pre_stop_seconds:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": s.pre_stop_seconds}}}
    return container


def config_map(s: KubernetesSettings, shape: ServingShape) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(s, shape, s.config_map_name(shape.name)),
        "data": config_data(s, shape),
    }


def deployment(
    s: KubernetesSettings, shape: ServingShape, match: dict[str, str] | None = None
) -> dict[str, Any]:
    """`match`: the live Deployment's selector, which cannot change (an adopted one's)."""
    data = config_data(s, shape)
    pod_labels = {**shape.labels, **(match or selector(s, shape.name)), **selector(s, shape.name)}
    models_volume, _ = _models_volume(s, shape.model)
    containers = [serving_container(s, shape)]
    if shape.logging is not None:
        containers.append(proxy_container(s, shape))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(s, shape, shape.name),
        "spec": {
            "replicas": shape.instances if shape.running else 0,
            "selector": {"matchLabels": match or selector(s, shape.name)},
            "revisionHistoryLimit": 5,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": pod_labels,
                             "annotations": {ANN_CONFIG_HASH: config_hash(data),
                                             ANN_VERSION: str(shape.version)}},
                "spec": {
                    # covers the longest preStop pause, the proxy's drain and flush
                    "terminationGracePeriodSeconds": s.pre_stop_seconds + 30,
                    "containers": containers,
                    "volumes": [
                        models_volume,
                        {"name": "config", "configMap": {
                            "name": s.config_map_name(shape.name),
                            "items": [{"key": k, "path": f"{CONFIG_SUBDIR}/{k}"}
                                      for k in sorted(data)],
                        }},
                    ],
                },
            },
        },
    }


def service(s: KubernetesSettings, shape: ServingShape) -> dict[str, Any]:
    rest: dict[str, Any] = {
        "name": PORT_REST,
        "port": tfs.REST_PORT,
        "protocol": "TCP",
        "targetPort": PORT_FRONT if shape.logging is not None else PORT_REST,
    }
    if shape.node_port is not None:
        rest["nodePort"] = shape.node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(s, shape, shape.name),
        "spec": {
            "type": s.service_type,
            "selector": selector(s, shape.name),
            "ports": [
                rest,
                {"name": PORT_GRPC, "port": tfs.GRPC_PORT, "protocol": "TCP",
                 "targetPort": PORT_GRPC},
            ],
        },
    }
