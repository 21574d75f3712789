"""The Kubernetes backend's essence of a serving: what declserve sets, from a spec or read back.

The essence has the neutral fields every backend shares (instances, model version, resources,
batching, labels, logging, ...), read from the very fields that carry them (`spec.replicas`,
the ConfigMap's model config, the container's limits), plus `deployment`, `pod` and `service`:
the other fields declserve applies (probes, ports, volumes, the rollout strategy), in the form
declserve applies them. The live side of those is the live object *projected onto what
declserve would apply to a serving with the same neutral fields*: fields the API server or a
webhook fills in never appear, and only the values declserve set are compared. The cheap
equality check comes first; deepdiff names the changed elements inside nested values (args,
volumes) in the plan, only for values that differ, so a plan of thousands of servings stays
fast.

Who changed a field comes from `managedFields`: for each essence field the entry of a manager
other than declserve (kubectl, an HPA, a controller's `Update`) that owns the Kubernetes field
behind it, with its time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from declserve.backends import tfserving as tfs
from declserve.backends.kubernetes import manifests as M
from declserve.backends.kubernetes.settings import MANAGER, KubernetesSettings
from declserve.registry import MODELS_DIR
from declserve.spec import format_cpu, format_memory, parse_cpu, parse_memory

Obj = dict[str, Any]
AUTO_NODE_PORT = "chosen once"

# Essence field → (object, the Kubernetes field behind it): for naming who changed it.
SOURCES: tuple[tuple[str, str, str], ...] = (
    ("instances", "deployment", "spec.replicas"),
    ("state", "deployment", "spec.replicas"),
    ("image", "deployment", "spec.template.spec.containers.serving.image"),
    ("resources", "deployment", "spec.template.spec.containers.serving.resources"),
    ("batching.enabled", "deployment", "spec.template.spec.containers.serving.args"),
    ("batching", "configmap", "data.batching.config"),
    ("model", "configmap", "data.models.config"),
    ("modelConfig", "configmap", "data.models.config"),
    ("logging", "configmap", "data.proxy.json"),
    ("pod.proxy", "deployment", "spec.template.spec.containers.proxy"),
    ("labels", "deployment", "metadata.labels"),
    ("protected", "deployment", "metadata.annotations"),
    ("modelSource", "deployment", "spec.template.spec.volumes"),
    ("service", "service", "spec"),
    ("deployment", "deployment", "spec"),
    ("pod", "deployment", "spec.template.spec"),
)


def keyed(value: Any) -> Any:
    """Lists of named items as mappings by name, so that fields inside compare one by one."""
    if isinstance(value, dict):
        return {k: keyed(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(
        isinstance(v, dict) and "name" in v for v in value
    ):
        return {v["name"]: keyed({k: x for k, x in v.items() if k != "name"}) for v in value}
    return value


def _named(items: Any) -> dict[str, Obj]:
    """A list of named items by name, one level only (`keyed` goes down through all of it)."""
    if not isinstance(items, list) or not all(isinstance(v, dict) and "name" in v
                                              for v in items):
        raise TypeError("not a list of named items")
    return {v["name"]: v for v in items}


def settings_part(deployment: Obj, service: Obj) -> dict[str, Any]:
    """The fields declserve applies that no neutral field covers, keyed, from its manifests."""
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    # only the parts kept below are keyed: a live pod spec is mostly what the server filled in
    containers = _named(pod.get("containers") or [])
    serving = containers[M.SERVING_CONTAINER]
    volumes = {}
    for name, whole in _named(pod.get("volumes") or []).items():
        volume = keyed({k: v for k, v in whole.items() if k != "name"})
        # the files listed follow from the neutral fields (logging adds the proxy's)
        volumes[name] = {k: v for k, v in volume.items() if k != "configMap"}
        if "configMap" in volume:
            volumes[name]["configMap"] = {"name": volume["configMap"].get("name")}
    ports = keyed(service["spec"].get("ports") or [])
    if not isinstance(ports, dict):
        ports = {}  # no Service, or ports without names: none of declserve's
    proxy = containers.get(M.PROXY_CONTAINER)
    sidecar = {} if proxy is None else {"proxy": {
        k: keyed(proxy.get(k))
        for k in ("image", "command", "ports", "readinessProbe", "livenessProbe", "lifecycle",
                  "resources", "imagePullPolicy", "volumeMounts")
    }}
    return {
        "deployment": {
            "strategy": spec.get("strategy"),
            "revisionHistoryLimit": spec.get("revisionHistoryLimit"),
        },
        "pod": {
            "terminationGracePeriodSeconds": pod.get("terminationGracePeriodSeconds"),
            "volumes": volumes,
            "serving": {
                k: keyed(serving.get(k))
                for k in ("command", "ports", "readinessProbe", "livenessProbe", "lifecycle",
                          "imagePullPolicy", "volumeMounts")
            },
            **sidecar,
        },
        "serviceSpec": {
            "ports": {
                name: {k: v for k, v in p.items() if k not in ("nodePort", "targetPort")}
                for name, p in ports.items()
            },
        },
    }


def neutral(s: KubernetesSettings, shape: M.ServingShape) -> dict[str, Any]:
    """The neutral fields of a serving of this shape (what a spec says, in the backend's terms)."""
    config = tfs.model_config_text(shape.model, shape.version)
    essence: dict[str, Any] = {
        "model": {"name": shape.model, "version": shape.version},
        "modelConfig": tfs.model_config_fields(config),
        "instances": shape.instances,
        "state": "running" if shape.running else "stopped",
        "protected": shape.protected,
        "image": shape.image,
        "modelSource": f"{MODELS_DIR}/{shape.model}",
        "resources": {"cpu": shape.cpu, "memory": shape.memory, "gpus": shape.gpus},
        "batching": {"enabled": shape.batching is not None, **(shape.batching or {})},
        "labels": dict(shape.labels),
        "service": {
            "type": s.service_type,
            "target": M.PROXY_CONTAINER if shape.logging else M.SERVING_CONTAINER,
        },
    }
    if s.service_type == "NodePort":
        essence["service"]["nodePort"] = shape.node_port or AUTO_NODE_PORT
    if shape.logging is not None:
        essence["logging"] = dict(shape.logging)
    return essence


def desired_essence(s: KubernetesSettings, shape: M.ServingShape) -> dict[str, Any]:
    return {
        **neutral(s, shape),
        **settings_part(M.deployment(s, shape), M.service(s, shape)),
    }


# ---- reading back ----------------------------------------------------------------------------
def _container(deployment: Obj, name: str) -> Obj | None:
    containers = deployment["spec"]["template"]["spec"].get("containers") or []
    return next((c for c in containers if c.get("name") == name), None)


def _quantity(value: Any, parse: Any, fmt: Any) -> Any:
    try:
        return fmt(parse(value))
    except (ValueError, TypeError):
        return value


def _resources(container: Obj) -> dict[str, Any]:
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}

    def one(key: str, parse: Any, fmt: Any) -> Any:
        limit = _quantity(limits.get(key), parse, fmt) if key in limits else None
        request = _quantity(requests.get(key), parse, fmt) if key in requests else limit
        return limit if request == limit else f"limit {limit}, request {request}"

    gpus = limits.get(M.GPU_RESOURCE)
    return {
        "cpu": one("cpu", parse_cpu, format_cpu),
        "memory": one("memory", parse_memory, format_memory),
        "gpus": int(gpus) if gpus is not None and str(gpus).isdigit() else 0,
    }


def _model_source(deployment: Obj) -> str | None:
    pod = deployment["spec"]["template"]["spec"]
    volume = next((v for v in pod.get("volumes") or () if v.get("name") == "models"), None)
    serving = _container(deployment, M.SERVING_CONTAINER) or {}
    mount: Obj = next(
        (m for m in serving.get("volumeMounts") or () if m.get("name") == "models"), {}
    )
    if volume is None:
        return None
    path = (volume.get("hostPath") or {}).get("path") or mount.get("subPath") or ""
    parts = path.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == MODELS_DIR:
        return f"{MODELS_DIR}/{parts[-1]}"
    return path or None


def _logging(deployment: Obj, data: dict[str, str]) -> dict[str, Any] | None:
    if _container(deployment, M.PROXY_CONTAINER) is None:
        return None
    try:
        doc = json.loads(data.get(M.PROXY_CONFIG) or "{}")
    except ValueError:
        doc = {}
    return {"topic": doc.get("topic"), "mode": doc.get("mode"),
            "maxRecordBytes": doc.get("maxRecordBytes"), "bootstrap": doc.get("bootstrap")}


def shape_of(deployment: Obj, config: Obj | None, service: Obj | None) -> M.ServingShape:
    """The neutral shape of a live serving: what declserve would apply to one like it."""
    meta = deployment["metadata"]
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    keys = [k for k in annotations.get(M.ANN_LABEL_KEYS, "").split(",") if k]
    data = (config or {}).get("data") or {}
    parsed = tfs.parse_model_config(data.get(tfs.MODEL_CONFIG, ""))
    container = _container(deployment, M.SERVING_CONTAINER) or {}
    _, batching_on = tfs.split_batching_args(list(container.get("args") or []))
    params = tfs.parse_batching_config(data.get(tfs.BATCHING_CONFIG, "")) if batching_on else None
    replicas = deployment["spec"].get("replicas", 1)
    instances = annotations.get(M.ANN_INSTANCES, "")
    res = _resources(container)
    version = parsed["version"]
    node_port = None
    for port in ((service or {}).get("spec") or {}).get("ports") or ():
        if port.get("name") == M.PORT_REST:
            node_port = port.get("nodePort")
    return M.ServingShape(
        name=meta["name"],
        model=parsed["name"] or str(labels.get(M.LABEL_SERVING)),
        version=version if isinstance(version, int) else 0,
        instances=replicas if replicas else (int(instances) if instances.isdigit() else 0),
        running=bool(replicas),
        image=container.get("image", ""),
        cpu=res["cpu"],
        memory=res["memory"],
        gpus=res["gpus"],
        batching=params,
        labels={k: labels.get(k) for k in keys},  # type: ignore[misc]
        logging=_logging(deployment, data),
        protected=annotations.get(M.ANN_PROTECTED) == "true",
        node_port=node_port,
    )


def project(want: Any, have: Any) -> Any:
    """`have` restricted to the fields `want` sets: what the server added around them drops."""
    if isinstance(want, dict) and isinstance(have, dict):
        return {k: project(v, have.get(k)) for k, v in want.items() if k in have}
    return have


def live_essence(
    s: KubernetesSettings, deployment: Obj, config: Obj | None, service: Obj | None
) -> tuple[dict[str, Any], M.ServingShape]:
    shape = shape_of(deployment, config, service)
    essence = neutral(s, shape)
    data = (config or {}).get("data") or {}
    text = data.get(tfs.MODEL_CONFIG)
    # the values really there, not those the shape would produce from them
    essence["model"] = tfs.parse_model_config(text or "")
    essence["modelConfig"] = tfs.model_config_fields(text) if text is not None else {}
    if config is None:
        essence["model"] = {"name": None, "version": None}
    if essence["batching"]["enabled"]:
        essence["batching"].update(tfs.parse_batching_config(data.get(tfs.BATCHING_CONFIG, "")))
    essence["modelSource"] = _model_source(deployment)
    if service is None:
        essence["service"] = {}
    else:
        rest: Obj = next(
            (p for p in service["spec"].get("ports") or () if p.get("name") == M.PORT_REST), {}
        )
        essence["service"]["type"] = service["spec"].get("type")
        target = rest.get("targetPort")
        essence["service"]["target"] = (
            M.PROXY_CONTAINER if target == M.PORT_FRONT
            else M.SERVING_CONTAINER if target == M.PORT_REST else target
        )
        if s.service_type == "NodePort" or "nodePort" in essence["service"]:
            essence["service"]["nodePort"] = (
                rest.get("nodePort") if _owns_node_port(service) else AUTO_NODE_PORT
            )
    want = settings_part(M.deployment(s, shape), M.service(s, shape))
    have = _settings_part_live(deployment, service)
    essence.update(want if have == want else project(want, have))
    return essence, shape


def _settings_part_live(deployment: Obj, service: Obj | None) -> dict[str, Any]:
    service = service or {"spec": {"ports": []}}
    try:
        return settings_part(deployment, service)
    except (KeyError, TypeError, AttributeError):
        return {}


# ---- who changed what (managedFields) --------------------------------------------------------
def _flat_fields(fields: Obj, prefix: str = "") -> Iterable[str]:
    for key, sub in fields.items():
        if key == ".":
            continue
        name = key[2:] if key.startswith(("f:", "v:")) else key
        if key.startswith("k:"):
            try:
                name = str(json.loads(key[2:]).get("name", key[2:]))
            except ValueError:
                name = key[2:]
        path = f"{prefix}.{name}" if prefix else name
        yield path
        if isinstance(sub, dict):
            yield from _flat_fields(sub, path)


def _owns_node_port(service: Obj) -> bool:
    for entry in service["metadata"].get("managedFields") or ():
        if entry.get("manager") != MANAGER:
            continue
        paths = set(_flat_fields(entry.get("fieldsV1") or {}))
        if any(p.startswith("spec.ports.") and p.endswith(".nodePort") for p in paths):
            return True
    return False


def foreign_entries(obj: Obj | None) -> list[tuple[str, str, set[str]]]:
    """(manager, time, owned paths) of every writer but declserve and status updates."""
    if obj is None:
        return []
    out = []
    for entry in obj["metadata"].get("managedFields") or ():
        if entry.get("manager") == MANAGER or entry.get("subresource") == "status":
            continue
        if entry.get("manager") == "kube-controller-manager":
            continue  # the revision annotation on Deployments, nothing declserve sets
        what = entry.get("manager", "?")
        if entry.get("subresource"):
            what += f" ({entry['subresource']})"
        out.append((what, entry.get("time", ""), set(_flat_fields(entry.get("fieldsV1") or {}))))
    return out


def changed_by(
    objects: dict[str, Obj | None], sources: tuple[tuple[str, str, str], ...] = SOURCES
) -> dict[str, str]:
    """Essence path → the latest other manager owning a field behind it, with its time;
    `sources` says which object field each essence path comes from."""
    entries = {kind: foreign_entries(obj) for kind, obj in objects.items()}
    if not any(entries.values()):
        return {}
    out: dict[str, str] = {}
    for path, kind, field in sources:
        found = [(time, who) for who, time, owned in entries.get(kind, ())
                 if any(p == field or p.startswith(field + ".") for p in owned)]
        if found:
            time, who = max(found)
            out[path] = f"{who} at {time}" if time else who
    return out
