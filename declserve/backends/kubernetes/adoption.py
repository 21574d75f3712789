"""`declserve import NAME` on Kubernetes: find the hand-made Deployment, preview, take it over.

The rules (what is adoptable, the document, what ownership means) are in `adopt` (pure); here
they meet the cluster: reads of the Deployment, its pods, the Services and ConfigMap by the
names declserve needs, the served version through the API server's pod proxy, and the writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from declserve.backends.kubernetes import adopt as A
from declserve.backends.kubernetes import essence as E
from declserve.backends.kubernetes import manifests as M
from declserve.backends.kubernetes import planner as P
from declserve.backends.kubernetes.settings import MANAGER
from declserve.desired import DesiredServing
from declserve.errors import BackendUnavailable, Conflict, NotFound, Rejected
from declserve.importer import ImportRefused, desired_of, spec_path
from declserve.plan import field_diff
from declserve.provider import Adoption, ApplyContext

if TYPE_CHECKING:
    from declserve.backends.kubernetes.backend import KubernetesBackend

Obj = dict[str, Any]


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def served_version(backend: KubernetesBackend, dep: Obj, model: str, port: int) -> int | None:
    """The highest version any ready pod reports AVAILABLE, through the API server's proxy."""
    match = dep["spec"]["selector"].get("matchLabels") or {}
    found: set[int] = set()
    for pod in backend.kube.list("Pod", _selector(match)):
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or ())
        if not ready or pod["metadata"].get("deletionTimestamp"):
            continue
        try:
            status = backend.kube.pod_proxy_get(pod["metadata"]["name"], port,
                                                f"/v1/models/{model}")
        except (NotFound, Rejected, BackendUnavailable):
            continue  # the registry's latest stands in for a pod that does not say
        found |= {int(v["version"]) for v in status.get("model_version_status") or ()
                  if v.get("state") == "AVAILABLE"}
    return max(found) if found else None


def _config_text(backend: KubernetesBackend, dep: Obj, container: Obj) -> str | None:
    """The model config file a server reads, when it comes from a ConfigMap volume."""
    path = A.model_config_file(container)
    if path is None:
        return None
    for mount in container.get("volumeMounts") or ():
        top = mount["mountPath"].rstrip("/")
        if not path.startswith(top + "/") and path != top:
            continue
        volume: Obj = next((v for v in dep["spec"]["template"]["spec"].get("volumes") or ()
                       if v.get("name") == mount["name"]), {})
        if "configMap" not in volume:
            return None
        rel = mount.get("subPath") or path[len(top):].strip("/")
        key = next((i["key"] for i in volume["configMap"].get("items") or ()
                    if i.get("path") == rel), rel)
        config = backend.kube.get(P.CONFIG_MAP, volume["configMap"]["name"]) or {}
        return (config.get("data") or {}).get(key)
    return None


def _refuse_if_managed(obj: Obj, what: str) -> None:
    owner = (obj["metadata"].get("labels") or {}).get(M.LABEL_PROJECT)
    if owner:
        raise ImportRefused(f"{what} is managed by declserve project {owner!r}")


def find(backend: KubernetesBackend, name: str) -> Adoption | None:
    s, kube = backend.settings, backend.kube
    dep = kube.get(P.DEPLOYMENT, name)
    if dep is None:
        return None
    where = f"Deployment {name} in namespace {s.namespace}"
    _refuse_if_managed(dep, where)
    container = A.server_container(dep, s.image)
    if container is None:
        raise ImportRefused(f"{where} runs no TensorFlow Serving container (image {s.image} "
                            f"or {A.SERVER_BINARY})")
    server = container["name"]
    extra = A.other_containers(dep, server)
    if extra:
        raise ImportRefused(
            f"{where} also runs {', '.join(extra)}, which declserve's pods do not have and its "
            "next apply would remove; remove them from the Deployment first")
    model = A.model_of(container, _config_text(backend, dep, container))
    if model is None:
        raise ImportRefused(f"cannot tell which model {where} serves (no --model_name, "
                            "MODEL_NAME or readable --model_config_file)")
    source, ours = A.model_source(dep, container, model), A.registry_source(s, model)
    if source is None or not A.same_source(source, ours):
        raise ImportRefused(
            f"{where} reads model {model} from "
            f"{'no volume' if source is None else source[0] + ' ' + source[1]}, not from the "
            f"project's registry ({ours[0]} {ours[1]})")
    port = A.rest_port(container)
    version = served_version(backend, dep, model, port)
    if version is None:
        valid = backend.project.registry.valid_versions(model)
        if not valid:
            raise ImportRefused(f"model {model!r} has no valid version in the registry")
        version = valid[-1]  # no pod says: what the server would load, the latest
    doc = A.document(name, dep, container, model, version)
    d = desired_of(doc, backend.project, spec_path(backend.project, name))
    shape = backend.shape_of(d)
    match = dep["spec"]["selector"].get("matchLabels")
    wanted = backend.manifests_for(shape, match)

    service = kube.get(P.SERVICE, name)
    if service is not None:
        _refuse_if_managed(service, f"Service {name}")
        if not A.selects(service, dep):
            raise ImportRefused(f"Service {name} exists and does not select the pods of {where}")
    config_name = s.config_map_name(name)
    if kube.get(P.CONFIG_MAP, config_name) is not None:
        raise ImportRefused(f"ConfigMap {config_name} exists already; declserve needs the name "
                            "for the serving's model config")
    others = sorted(o["metadata"]["name"] for o in kube.list("Service")
                    if o["metadata"]["name"] != name and A.selects(o, dep))

    service_after = (A.with_metadata(service, wanted[P.SERVICE]) if service is not None
                     else A.adopted_service(wanted[P.SERVICE], port))
    live, _ = E.live_essence(s, A.with_metadata(dep, wanted[P.DEPLOYMENT]),
                             wanted[P.CONFIG_MAP], service_after)
    pod_fields, service_fields = A.rolled_fields(
        [c.path for c in field_diff(live, E.desired_essence(s, shape))])
    preview = [f"take ownership of Deployment {name} (no pod restarts)",
               f"create ConfigMap {config_name} (model config: version {version})"]
    if service is None:
        preview.append(f"create Service {name} selecting the adopted pods "
                       f"({_selector(match or {})}), to their port {port}")
    else:
        preview.append(f"take ownership of Service {name} (it keeps answering)")
    preview += [f"leave Service {o} alone (it keeps selecting the pods)" for o in others]
    if pod_fields:
        preview.append("the next apply rolls the pods to declserve's template: "
                       + ", ".join(pod_fields))
    if service_fields:
        preview.append(f"the next apply also changes Service {name}: "
                       + ", ".join(service_fields))

    def adopt(desired: DesiredServing, ctx: ApplyContext) -> None:
        take_over(backend, desired, dep, server, service, port, ctx)

    return Adoption(name, doc, tuple(preview), adopt)


def take_over(backend: KubernetesBackend, d: DesiredServing, dep: Obj, server: str,
              service: Obj | None, port: int, ctx: ApplyContext) -> None:
    kube, name = backend.kube, d.name
    match = dep["spec"]["selector"].get("matchLabels")
    wanted = backend.manifests_for(backend.shape_of(d), match)
    ctx.say(f"apply ConfigMap {backend.settings.config_map_name(name)}")
    kube.apply(wanted[P.CONFIG_MAP])
    ctx.say(f"take ownership of Deployment {name}")
    # no force: the values are the live ones, so a conflict means someone changed them since
    after = kube.apply(A.ownership(wanted[P.DEPLOYMENT], dep), force=False)
    # (the generation goes up all the same: Deployments count annotation changes, which their
    # ReplicaSets copy; only a changed template rolls pods)
    if after["spec"]["template"] != dep["spec"]["template"]:
        raise Rejected(f"taking ownership of Deployment {name} changed its pod template; "
                       "its pods roll now")
    _hand_over(backend, P.DEPLOYMENT, after)
    if service is None:
        ctx.say(f"create Service {name} (to port {port} of the adopted pods)")
        kube.apply(A.adopted_service(wanted[P.SERVICE], port))
    else:
        ctx.say(f"take ownership of Service {name}")
        _hand_over(backend, P.SERVICE,
                   kube.apply(A.service_ownership(wanted[P.SERVICE]), force=False))


def _hand_over(backend: KubernetesBackend, kind: str, obj: Obj) -> None:
    """Make declserve the only owner of the fields the hand-made writers set."""
    for _ in range(_HAND_OVER_TRIES):
        fields = A.handed_over(obj["metadata"].get("managedFields") or [],
                               "f:nodePort" if kind == P.SERVICE else "")
        if fields is None:
            return
        meta = obj["metadata"]
        try:
            # the resourceVersion makes it a compare-and-swap: a write in between fails it
            backend.kube.patch(kind, meta["name"], {"metadata": {
                "managedFields": fields, "resourceVersion": meta["resourceVersion"]}}, MANAGER)
            return
        except Conflict:
            # the Deployment controller writes right after the apply (status, revision)
            fresh = backend.kube.get(kind, meta["name"])
            if fresh is None:
                raise NotFound(f"{kind} {meta['name']} disappeared during import") from None
            obj = fresh
    raise Conflict(f"{kind} {obj['metadata']['name']} kept changing while declserve took "
                   "ownership of its fields; run import again")


_HAND_OVER_TRIES = 5
