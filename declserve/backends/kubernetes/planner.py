"""The steps of one change to a serving on Kubernetes (pure): which objects are applied, and waits.

Every write is a server-side apply of the whole object declserve owns, so one step per object
carries any number of field changes; the plan says which fields each one changes and whether
the pods roll (anything in the pod template), in which case apply waits until every pod of
the new template is ready, each serving the pinned version. A member that stays unready is
repaired by deleting its pod: its Deployment makes a new one.
"""

from __future__ import annotations

from collections.abc import Sequence

from declserve.backends.kubernetes import kserve as K
from declserve.backends.kubernetes import manifests as M
from declserve.backends.kubernetes.essence import desired_essence
from declserve.backends.kubernetes.settings import KubernetesSettings
from declserve.desired import SERVING_KIND, DesiredServing
from declserve.live import LiveResource, LiveState
from declserve.plan import Action, DesiredResource, FieldChange, Shape, Step
from declserve.provider import Wanted
from declserve.registry import Registry

APPLY = "apply"
DELETE = "delete"
WAIT = "wait until ready:"
WAIT_GONE = "wait until stopped:"
DELETE_POD = "delete the pod"
CONFIG_MAP, DEPLOYMENT, SERVICE = "ConfigMap", "Deployment", "Service"

# Essence fields each object carries (prefixes); what is not here is in the Deployment only.
_CONFIG_FIELDS = ("model.", "modelConfig.", "batching.", "logging.", "labels.", "protected")
# (whether logging is on shows as service.target; its settings are the ConfigMap's alone)
_SERVICE_FIELDS = ("service.", "serviceSpec.", "labels.", "protected")
# Fields that leave the pod template alone: changing them rolls no pod.
_NO_ROLLOUT = ("instances", "state", "protected", "service.", "serviceSpec.")


def _any(paths: set[str], prefixes: Sequence[str]) -> bool:
    return any(p == x or p.startswith(x) for p in paths for x in prefixes)


def _rolls(paths: set[str]) -> bool:
    return any(not (p in _NO_ROLLOUT or p.startswith(_NO_ROLLOUT)) for p in paths)


class KubernetesPlanner:
    kind = SERVING_KIND
    delete_guard = "--prune"
    guard_everything = True

    def __init__(self, settings: KubernetesSettings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry  # where kserve servings' artifacts live

    def shape_of(self, d: DesiredServing) -> M.ServingShape:
        return M.ServingShape.of(d, self.settings)

    def essence_of(self, d: DesiredServing) -> dict[str, object]:
        if K.is_kserve(d):
            assert self.registry is not None, "kserve servings need the registry"
            return K.desired_essence(self.settings, self.registry, d)
        return desired_essence(self.settings, self.shape_of(d))

    def desired(self, servings: Sequence[DesiredServing]) -> list[Wanted]:
        return [Wanted(DesiredResource(self.kind, d.name, self.essence_of(d)), d)
                for d in servings]

    def check(self, servings: Sequence[DesiredServing], live: LiveState) -> list[str]:
        return []

    def kept_warning(self, live: LiveResource) -> str:
        verb = "runs" if live.essence.get("state") == "running" else "exists (stopped)"
        return f"serving {live.name!r} {verb} but has no spec; `--prune` would delete it"

    def shape(
        self,
        desired: DesiredResource | None,
        live: LiveResource | None,
        changes: Sequence[FieldChange],
    ) -> Shape:
        if desired is None:
            assert live is not None
            return Shape(Action.DELETE, self._delete_steps(live))
        if live is None:
            return Shape(Action.CREATE, self._create_steps(desired))
        paths = {c.path for c in changes}
        if desired.essence.get("tool") != live.essence.get("tool"):
            return Shape(Action.REPLACE, self._delete_steps(live) + self._create_steps(desired),
                         "a serving's tool cannot change in place")
        if desired.essence.get("tool") == K.TOOL:
            return self._kserve_shape(desired, live, paths)
        if "model.name" in paths:
            return Shape(Action.REPLACE, self._delete_steps(live) + self._create_steps(desired),
                         "model.name cannot change in place")
        if not changes:
            return Shape(Action.REPAIR, self._repair_steps(desired, live))
        steps = self._update_steps(desired, live, paths)
        if paths == {"state"}:
            running = desired.essence["state"] == "running"
            return Shape(Action.START if running else Action.STOP, steps)
        return Shape(Action.UPDATE, steps)

    def _kserve_shape(
        self, desired: DesiredResource, live: LiveResource, paths: set[str]
    ) -> Shape:
        e = desired.essence
        logs = live.essence.get("logger") is not None
        if not paths:
            return Shape(Action.REPAIR, K.apply_steps(e, desired.name, "as the spec says", logs))
        steps = K.apply_steps(e, desired.name, ", ".join(sorted(paths)), logs)
        if paths == {"state"}:
            return Shape(Action.START if e["state"] == "running" else Action.STOP, steps)
        return Shape(Action.UPDATE, steps)

    def _object(self, kind: str, name: str) -> str:
        return f"{kind} {self.settings.config_map_name(name) if kind == CONFIG_MAP else name}"

    def _wait(self, desired: DesiredResource, rolling: bool) -> Step:
        e = desired.essence
        n = e["instances"]
        how = "rolling update: a new pod ready before an old one goes; " if rolling else ""
        return Step(WAIT, f"{n} pod{'s' if n != 1 else ''} of Deployment {desired.name}",
                    f"{how}each serving version {e['model']['version']}")

    def _create_steps(self, desired: DesiredResource) -> tuple[Step, ...]:
        e = desired.essence
        if e.get("tool") == K.TOOL:
            return K.apply_steps(e, desired.name, f"model version {e['model']['version']}, "
                                 f"artifact {e['artifact']}")
        steps = [
            Step(APPLY, self._object(CONFIG_MAP, desired.name),
                 f"model config: version {e['model']['version']}"),
            Step(APPLY, self._object(DEPLOYMENT, desired.name),
                 f"replicas {e['instances'] if e['state'] == 'running' else 0}"),
            Step(APPLY, self._object(SERVICE, desired.name), _service_detail(e)),
        ]
        if e["state"] == "running":
            steps.append(self._wait(desired, rolling=False))
        return tuple(steps)

    def _delete_steps(self, live: LiveResource) -> tuple[Step, ...]:
        if live.essence.get("tool") == K.TOOL:
            return K.delete_steps(live.name, live.essence.get("logger") is not None)
        have = live.detail.get("objects", {})
        return tuple(
            Step(DELETE, self._object(kind, live.name))
            for kind in (SERVICE, DEPLOYMENT, CONFIG_MAP)
            if have.get(kind, True)
        )

    def _repair_steps(self, desired: DesiredResource, live: LiveResource) -> tuple[Step, ...]:
        steps = [Step(DELETE_POD, pod, why) for pod, why in live.detail.get("broken", [])]
        if not steps:  # a stalled rollout or a missing object: apply all of it again
            steps = [Step(APPLY, self._object(k, desired.name), "as the spec says")
                     for k in (CONFIG_MAP, DEPLOYMENT, SERVICE)]
        if desired.essence["state"] == "running":
            steps.append(self._wait(desired, rolling=False))
        return tuple(steps)

    def _update_steps(
        self, desired: DesiredResource, live: LiveResource, paths: set[str]
    ) -> tuple[Step, ...]:
        e = desired.essence
        running = e["state"] == "running"
        rolls = _rolls(paths)
        steps = []
        # The Service's port moves between the server and the proxy only while both old and
        # new pods have the port it names: the server's before the pods lose their proxy,
        # the proxy's once every pod has one. Otherwise it would select no pod for a while.
        # Pods adopted by import have no port named `rest` either: the Service follows them.
        retarget = "service.target" in paths
        after = retarget and _only_new_pods_have(desired, live)
        service_step = Step(APPLY, self._object(SERVICE, desired.name),
                            _fields(paths, _SERVICE_FIELDS)) if _any(paths, _SERVICE_FIELDS) \
            else None
        if service_step is not None and retarget and not after:
            steps.append(service_step)
            service_step = None
        if _any(paths, _CONFIG_FIELDS):
            steps.append(Step(APPLY, self._object(CONFIG_MAP, desired.name),
                              _fields(paths, _CONFIG_FIELDS)))
        deployment_fields = sorted(p for p in paths if not p.startswith(("service.",
                                                                         "serviceSpec.")))
        if deployment_fields:
            detail = ", ".join(deployment_fields)
            if "state" in paths and not running:
                detail = f"replicas 0, instances {e['instances']} kept for start"
            elif rolls and running:
                detail += "; the pods roll"
            steps.append(Step(APPLY, self._object(DEPLOYMENT, desired.name), detail))
        if service_step is not None and not after:
            steps.append(service_step)
            service_step = None
        if running and (rolls or _any(paths, ("instances", "state"))):
            steps.append(self._wait(desired, rolling=rolls and "state" not in paths))
        if service_step is not None:
            steps.append(service_step)
        if not running and "state" in paths:
            steps.append(Step(WAIT_GONE, f"pods of Deployment {desired.name}"))
        return tuple(steps)


def _only_new_pods_have(desired: DesiredResource, live: LiveResource) -> bool:
    want = (desired.essence.get("service") or {}).get("target")
    have = (live.essence.get("service") or {}).get("target")
    return want != have and (want == M.PROXY_CONTAINER or have not in (
        M.SERVING_CONTAINER, M.PROXY_CONTAINER))


def _fields(paths: set[str], prefixes: Sequence[str]) -> str:
    return ", ".join(sorted(p for p in paths if any(p == x or p.startswith(x) for x in prefixes)))


def _service_detail(e: dict[str, object]) -> str:
    service = e.get("service") or {}
    assert isinstance(service, dict)
    port = service.get("nodePort")
    where = f"; nodePort {port}" if port else ""
    return f"{service.get('type')} to the {service.get('target')} container{where}"
