"""Adopting a Deployment made by hand that runs TensorFlow Serving (pure): what it serves, and
what taking ownership of it means.

`declserve import NAME` reads the Deployment (and a Service named NAME, when there is one)
back into a Serving document and takes the objects over without touching the pod template,
so no pod restarts and the Service keeps answering:

- one server-side apply of the Deployment as declserve, with declserve's labels and
  annotations and the fields it manages (`spec.replicas`, the server container's image and
  resources) at their *current* values;
- the fields the hand-made writers own (kubectl's, any `Update` manager's) are handed to
  declserve's entry in `managedFields`, as kubectl does when it moves a client-side applied
  object to server-side apply. Without that, declserve would only share them: its next apply
  could not remove what it does not set (a hand-made env variable would stay, an `httpGet`
  readiness probe would merge with declserve's `exec` one into an invalid probe);
- declserve's ConfigMap, and its Service pointed at the port number the adopted pods listen
  on (they have no port named `rest` yet, so a named target would select none of them).

The next plan then shows what differs between the hand-made pod template and declserve's as
an update, which rolls the pods with `maxUnavailable: 0`.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any

from declserve import spec as S
from declserve.backends import tfserving as tfs
from declserve.backends.kubernetes import manifests as M
from declserve.backends.kubernetes.settings import MANAGER, KubernetesSettings
from declserve.registry import MODELS_DIR

Obj = dict[str, Any]
SERVER_BINARY = "tensorflow_model_server"
DECLSERVE_LABELS = (M.LABEL_MANAGED, M.LABEL_PROJECT, M.LABEL_SERVING)
# Writers whose fields are not the hand-made configuration: status, the revision annotation.
NOT_HANDED_OVER = ("kube-controller-manager",)


def _pod_spec(dep: Obj) -> Obj:
    spec: Obj = ((dep.get("spec") or {}).get("template") or {}).get("spec") or {}
    return spec


def _argv(container: Obj) -> list[str]:
    return [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]


def _flag(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _env(container: Obj) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "")) for e in container.get("env") or ()
            if "name" in e and "valueFrom" not in e}


def server_container(dep: Obj, image: str) -> Obj | None:
    """The container that runs TensorFlow Serving: the configured image, or the server binary."""
    for c in _pod_spec(dep).get("containers") or ():
        if c.get("image") == image or any(SERVER_BINARY in a for a in _argv(c)):
            return dict(c)
    return None


def other_containers(dep: Obj, server: str) -> list[str]:
    """Containers declserve would not keep: its template has the server (and its own proxy)."""
    pod = _pod_spec(dep)
    return [c["name"] for c in pod.get("containers") or () if c.get("name") != server] + [
        f"{c['name']} (init)" for c in pod.get("initContainers") or ()
    ]


def model_config_file(container: Obj) -> str | None:
    return _flag(_argv(container), "--model_config_file")


def model_of(container: Obj, config_text: str | None = None) -> str | None:
    """The model the server serves: its flag, its environment, or its model config file."""
    found = _flag(_argv(container), "--model_name") or _env(container).get("MODEL_NAME")
    if found is None and config_text is not None:
        found = tfs.parse_model_config(config_text)["name"]
    return found


def rest_port(container: Obj) -> int:
    port = _flag(_argv(container), "--rest_api_port")
    return int(port) if port and port.isdigit() else tfs.REST_PORT


def _model_base_path(container: Obj, model: str) -> str:
    """Where the server reads the model (the official image: $MODEL_BASE_PATH/$MODEL_NAME)."""
    flag = _flag(_argv(container), "--model_base_path")
    if flag:
        return flag.rstrip("/")
    base = _env(container).get("MODEL_BASE_PATH", tfs.MODELS_MOUNT)
    return f"{base.rstrip('/')}/{model}"


def model_source(dep: Obj, container: Obj, model: str) -> tuple[str, str] | None:
    """(volume kind, where) of the model directory the server reads: ("hostPath", path) or
    ("claim", "name:sub/path"); None when no volume holds it."""
    base = _model_base_path(container, model)
    mounts = sorted(container.get("volumeMounts") or (), key=lambda m: -len(m["mountPath"]))
    for mount in mounts:
        top = mount["mountPath"].rstrip("/")
        if base != top and not base.startswith(top + "/"):
            continue
        rest = base[len(top):].strip("/")
        volume: Obj = next((v for v in _pod_spec(dep).get("volumes") or ()
                       if v.get("name") == mount["name"]), {})
        parts = [p for p in (mount.get("subPath", "").strip("/"), rest) if p]
        if "hostPath" in volume:
            return "hostPath", "/".join([volume["hostPath"]["path"].rstrip("/"), *parts])
        if "persistentVolumeClaim" in volume:
            return "claim", f"{volume['persistentVolumeClaim']['claimName']}:{'/'.join(parts)}"
        return None
    return None


def registry_source(s: KubernetesSettings, model: str) -> tuple[str, str]:
    """Where declserve's pods read the model: the same terms as `model_source`."""
    if s.models_claim:
        sub = "/".join(p for p in (s.models_sub_path.strip("/"), MODELS_DIR, model) if p)
        return "claim", f"{s.models_claim}:{sub}"
    return "hostPath", f"{(s.models_host_path or '').rstrip('/')}/{MODELS_DIR}/{model}"


def same_source(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Equal, or the same directory through a symlink (the single-node cluster's node is this
    machine; elsewhere the paths do not exist here and compare as written)."""
    if a[0] != b[0]:
        return False
    if a[0] == "hostPath":
        return os.path.realpath(a[1]) == os.path.realpath(b[1])
    return a[1] == b[1]


def selects(service: Obj, dep: Obj) -> bool:
    """Whether a Service's selector picks the Deployment's pods."""
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = (((dep.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _resources(container: Obj) -> Obj:
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out: Obj = {}
    cpu, memory = limits.get("cpu", requests.get("cpu")), limits.get(
        "memory", requests.get("memory"))
    if cpu is not None:
        out["cpu"] = S.format_cpu(S.parse_cpu(cpu))
    if memory is not None:
        out["memory"] = S.format_memory(S.parse_memory(memory))
    gpus = limits.get(M.GPU_RESOURCE)
    if gpus is not None and str(gpus).isdigit() and int(gpus):
        out["gpus"] = int(gpus)
    return out


def spec_labels(dep: Obj) -> dict[str, str]:
    """The Deployment's own labels that a spec can carry (declserve's are its own business)."""
    labels = dep["metadata"].get("labels") or {}
    return {k: str(v) for k, v in sorted(labels.items())
            if k not in DECLSERVE_LABELS and re.match(S.LABEL_KEY, k)
            and re.match(S.LABEL_VALUE, str(v))}


def document(name: str, dep: Obj, container: Obj, model: str, version: int) -> Obj:
    """The Serving document that describes the hand-made Deployment."""
    replicas = (dep.get("spec") or {}).get("replicas", 1)
    spec: Obj = {"model": {"name": model, "version": version},
                 "instances": replicas or 1}
    if not replicas:
        spec["state"] = "stopped"
    if tfs.split_batching_args(_argv(container))[1]:
        spec["batching"] = {"enabled": True}
    resources = _resources(container)
    if resources:
        spec["resources"] = resources
    doc: Obj = {"apiVersion": S.API_VERSION, "kind": "Serving", "metadata": {"name": name}}
    labels = spec_labels(dep)
    if labels:
        doc["metadata"]["labels"] = labels
    doc["spec"] = spec
    S.Serving.model_validate(doc)  # what import writes must load
    return doc


# ---- what ownership means --------------------------------------------------------------------
def ownership(declserve_deployment: Obj, live: Obj) -> Obj:
    """The server-side apply that makes declserve the Deployment's manager without a rollout:
    declserve's metadata, and `spec.replicas` and the pod template at their live values.

    The whole template, not only the server's image and resources: the server defaults an
    applied object before merging it, so a container given in part would come back with the
    defaults (`imagePullPolicy`, `terminationMessagePath`, ...) in place of the live values,
    which changes the template and rolls the pods.
    """
    meta = declserve_deployment["metadata"]
    spec = live.get("spec") or {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations")},
        "spec": {"replicas": spec.get("replicas", 1),
                 "template": copy.deepcopy(spec["template"])},
    }


def service_ownership(declserve_service: Obj) -> Obj:
    """A hand-made Service taken over: declserve's labels and annotations, its spec as it is."""
    meta = declserve_service["metadata"]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations")}}


def adopted_service(declserve_service: Obj, port: int) -> Obj:
    """declserve's Service, pointed at the port number the adopted pods listen on."""
    service = copy.deepcopy(declserve_service)
    for p in service["spec"]["ports"]:
        if p["name"] == M.PORT_REST:
            p["targetPort"] = port
    return service


def _union(a: Obj, b: Obj) -> Obj:
    out = dict(a)
    for key, sub in b.items():
        out[key] = _union(out.get(key) or {}, sub or {})
    return out


def _without(fields: Obj, key: str) -> Obj:
    return {k: _without(v, key) for k, v in fields.items() if k != key}


def handed_over(managed: list[Obj], keep_out: str = "") -> list[Obj] | None:
    """`managedFields` with every hand-made writer's fields moved into declserve's apply entry;
    None when there is nothing to move (or no declserve entry to move it into).

    `keep_out`: a field (`f:nodePort`) that nobody should own afterwards, so that it reads as
    the server's choice (a Service's allocated node port: declserve keeps it as it is).
    """
    ours = next((e for e in managed if e.get("manager") == MANAGER
                 and e.get("operation") == "Apply" and not e.get("subresource")), None)
    if ours is None:
        return None
    moved: list[Obj] = []
    kept: list[Obj] = []
    for e in managed:
        foreign = (e is not ours and not e.get("subresource")
                   and e.get("manager") not in NOT_HANDED_OVER
                   and e.get("apiVersion") == ours.get("apiVersion"))
        (moved if foreign else kept).append(e)
    if not moved:
        return None
    merged = dict(ours)
    for e in moved:
        merged["fieldsV1"] = _union(merged.get("fieldsV1") or {}, e.get("fieldsV1") or {})
    if keep_out:
        merged["fieldsV1"] = _without(merged["fieldsV1"], keep_out)
    return [merged if e is ours else e for e in kept]


def with_metadata(live: Obj, declserve_object: Obj) -> Obj:
    """The live object as it is after the ownership apply (labels and annotations added)."""
    out = copy.deepcopy(live)
    meta = out["metadata"]
    for key in ("labels", "annotations"):
        meta[key] = {**(meta.get(key) or {}), **declserve_object["metadata"][key]}
    return out


def _field_group(path: str) -> str:
    """A changed field as the plan groups it for people: the probe, the volume, the setting."""
    parts = path.split(".")
    return ".".join(parts[:3] if parts[0] == "pod" and len(parts) > 2 else parts[:2])


def rolled_fields(paths: list[str]) -> tuple[list[str], list[str]]:
    """The plan's changed fields after import, grouped: (the Deployment's, the Service's)."""
    groups = list(dict.fromkeys(_field_group(p) for p in paths))
    service = [p for p in groups if p.startswith(("service.", "serviceSpec."))]
    return [p for p in groups if p not in service], service
