"""The logging sink of a project's `tool: kserve` servings (pure): where KServe's logger posts.

KServe's agent sidecar posts each logged request or response as a CloudEvent; declserve's sink
(`declserve/logproxy/sink.py`, in the logging proxy's image) turns them into the same records,
on the same topics, as the logging proxy of the other tools. One sink per project, in the
namespace: a ConfigMap with `sink.json` (every logging kserve serving of the project), a
Deployment of one pod whose template carries the config's digest (a changed config rolls a new
pod, ready before the old one goes, so no event finds a sink that does not know its serving),
and a Service. Its objects carry the project's label but no serving's, so the servings' diff
never sees them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from declserve.backends.kubernetes import manifests as M
from declserve.backends.kubernetes.settings import KubernetesSettings
from declserve.desired import DesiredServing

Obj = dict[str, Any]
PORT = 8080
CONFIG_DIR = "/etc/declserve"
CONFIG_FILE = "sink.json"
PAIR_SECONDS = 10  # mode all: how long a request waits for its response before it goes alone


def name(s: KubernetesSettings) -> str:
    """`<project>-logsink`, shortened with a digest when that would not be a DNS label."""
    full = f"{s.project}-logsink"
    if len(full) <= 63:
        return full
    return f"{s.project[:40]}-{hashlib.sha256(s.project.encode()).hexdigest()[:8]}-logsink"


def url(s: KubernetesSettings) -> str:
    return f"http://{name(s)}.{s.namespace}.svc.cluster.local/"


def config(s: KubernetesSettings, servings: Sequence[DesiredServing]) -> Obj:
    """sink.json: the keys of declserve/logproxy/sink.py's docstring."""
    services = {}
    for d in servings:
        logging = d.spec.inference_logging
        if d.topic is None or logging is None:
            continue
        services[d.name] = {"serving": d.name, "model": d.spec.model.name, "topic": d.topic,
                            "mode": logging.mode.value, "version": str(d.version)}
    return {
        "listen": f"0.0.0.0:{PORT}",
        "bootstrap": s.kafka_bootstrap,
        "maxRecordBytes": s.max_message_bytes,
        "flushSeconds": M.PROXY_FLUSH_S,
        "pairSeconds": PAIR_SECONDS,
        "services": services,
    }


def _metadata(s: KubernetesSettings, object_name: str) -> Obj:
    return {"name": object_name, "namespace": s.namespace,
            "labels": {M.LABEL_MANAGED: M.MANAGER_VALUE, M.LABEL_PROJECT: s.project,
                       "declserve.io/role": "logsink"}}


def objects(s: KubernetesSettings, servings: Sequence[DesiredServing]) -> list[Obj]:
    """ConfigMap, Deployment and Service, in the order apply writes them."""
    sink = name(s)
    text = json.dumps(config(s, servings), indent=2, sort_keys=True)
    labels = {M.LABEL_PROJECT: s.project, "declserve.io/role": "logsink"}
    probe = {"httpGet": {"path": "/-/ready", "port": PORT}, "periodSeconds": 2,
             "timeoutSeconds": 2, "failureThreshold": 2}
    container: Obj = {
        "name": "sink",
        "image": s.proxy_image,
        "imagePullPolicy": s.pull_policy,
        "command": ["python3", "/app/sink.py", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        "ports": [{"name": "events", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "resources": {"requests": dict(M.PROXY_REQUESTS), "limits": dict(M.PROXY_LIMITS)},
        "volumeMounts": [{"name": "config", "mountPath": f"{CONFIG_DIR}/{CONFIG_FILE}",
                          "subPath": CONFIG_FILE, "readOnly": True}],
    }
    if s.pre_stop_seconds:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": s.pre_stop_seconds}}}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(s, f"{sink}-config"),
         "data": {CONFIG_FILE: text}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(s, sink),
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": labels},
             "strategy": {"type": "RollingUpdate",
                          "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
             "template": {
                 "metadata": {"labels": labels, "annotations": {
                     M.ANN_CONFIG_HASH: hashlib.sha256(text.encode()).hexdigest()[:16]}},
                 "spec": {"terminationGracePeriodSeconds": s.pre_stop_seconds + 30,
                          "containers": [container],
                          "volumes": [{"name": "config",
                                       "configMap": {"name": f"{sink}-config"}}]},
             }}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(s, sink),
         "spec": {"selector": labels,
                  "ports": [{"name": "http", "port": 80, "targetPort": PORT,
                             "protocol": "TCP"}]}},
    ]
