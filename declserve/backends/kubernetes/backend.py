"""The Kubernetes backend: a serving is a Deployment, a Service and a ConfigMap in one namespace.

Live state is read with one LIST per kind (Deployments, Services, ConfigMaps, Pods), selected
by the project's label; every write is a server-side apply with the field manager `declserve`.
Health follows the rule Argo CD uses for Deployments (the status is for the current
generation, every replica updated and available), plus what a pod's own status says: a
container that cannot start (image missing, crash loop) or a pod that stopped being ready is
Degraded, and the plan repairs it. The steps of each change come from `planner` (pure).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from declserve.backends import tfserving as tfs
from declserve.backends.kubernetes import essence as E
from declserve.backends.kubernetes import inferenceservice as I
from declserve.backends.kubernetes import kserve as K
from declserve.backends.kubernetes import logsink
from declserve.backends.kubernetes import manifests as M
from declserve.backends.kubernetes import planner as P
from declserve.backends.kubernetes.client import Kube
from declserve.backends.kubernetes.records import KubernetesRecords
from declserve.backends.kubernetes.settings import KubernetesSettings
from declserve.desired import DesiredServing, resolve_desired
from declserve.errors import BackendUnavailable, NotFound, NotReady, Rejected
from declserve.live import Blocker, Health, HealthStatus, LiveResource, LiveState
from declserve.loader import LoadedProject
from declserve.lock import LockInfo
from declserve.plan import ResourceChange, Step
from declserve.provider import Adoption, ApplyContext, Wanted

Obj = dict[str, Any]
_POLL = 0.5
# Container states that do not pass by waiting: the reason ends apply at once.
FATAL_WAITING = frozenset({
    "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
    "CrashLoopBackOff",
})
_REVISION = "deployment.kubernetes.io/revision"
_TEMPLATE_HASH = "pod-template-hash"
UNREADY_GRACE_S = 5.0  # a pod that was ready and has not been for this long is broken


def _parse_time(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _condition(obj: Obj, kind: str) -> Obj:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == kind:
            return dict(c)
    return {}


def pod_problem(pod: Obj, now: datetime) -> str | None:
    """Why a pod cannot serve, when that will not pass by itself; None otherwise."""
    name = pod["metadata"]["name"]
    if pod["metadata"].get("deletionTimestamp"):
        return None
    for c in (pod.get("status") or {}).get("containerStatuses") or ():
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            message = (waiting.get("message") or "").strip()
            return f"pod {name}: container {c['name']}: {waiting['reason']}" + (
                f": {message[:200]}" if message else "")
    ready = _condition(pod, "Ready")
    if ready.get("status") != "False":
        return None
    since = _parse_time(ready.get("lastTransitionTime"))
    for c in (pod.get("status") or {}).get("containerStatuses") or ():
        started = _parse_time(((c.get("state") or {}).get("running") or {}).get("startedAt"))
        # unready since after the container started: it was ready, and stopped being so
        if started and since and since > started and (now - since).total_seconds() > \
                UNREADY_GRACE_S and not c.get("ready"):
            return f"pod {name}: container {c['name']} has not been ready since {since:%H:%M:%S}"
    return None


def deployment_health(dep: Obj, pods: list[Obj], now: datetime) -> HealthStatus:
    """Argo CD's rule for Deployments, then the pods' own problems."""
    meta, spec, st = dep["metadata"], dep.get("spec") or {}, dep.get("status") or {}
    problems = [p for p in (pod_problem(pod, now) for pod in pods) if p]
    if problems:
        return HealthStatus.degraded("; ".join(problems))
    progressing = _condition(dep, "Progressing")
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return HealthStatus.degraded(f"the rollout stalled: {progressing.get('message', '')}")
    want = spec.get("replicas", 1)
    if st.get("observedGeneration", 0) < meta.get("generation", 0):
        return HealthStatus.progressing("the new spec is not yet observed by its controller")
    updated = st.get("updatedReplicas", 0)
    if updated < want:
        return HealthStatus.progressing(f"{updated} of {want} pods updated")
    if st.get("replicas", 0) > updated:
        return HealthStatus.progressing(f"{st['replicas'] - updated} old pods are terminating")
    if st.get("availableReplicas", 0) < updated:
        return HealthStatus.progressing(f"{st.get('availableReplicas', 0)} of {updated} pods "
                                        "available")
    return HealthStatus.ready()


class KubernetesBackend(P.KubernetesPlanner):
    def __init__(
        self, settings: KubernetesSettings, project: LoadedProject, kube: Kube | None = None
    ) -> None:
        super().__init__(settings, project.registry)
        self.project = project
        self.kube = kube or Kube(settings)
        self._no_kserve = False  # the last observe found no InferenceService CRD

    def identity(self) -> str:
        return f"kubernetes:{self.kube.host}/{self.settings.namespace}"

    @property
    def _selector(self) -> str:
        return f"{M.LABEL_PROJECT}={self.settings.project}"

    # ---- reading ----------------------------------------------------------------------------
    def _by_serving(self, kind: str) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for obj in self.kube.list(kind, self._selector):
            serving = (obj["metadata"].get("labels") or {}).get(M.LABEL_SERVING)
            if serving:
                out.setdefault(serving, []).append(obj)
        return out

    def _own(self, found: dict[str, list[Obj]]) -> dict[str, list[Obj]]:
        """Without what KServe made (it copies an InferenceService's labels onto its objects,
        which outlive it for a moment when it is deleted)."""
        out = {}
        for serving, objs in found.items():
            mine = [o for o in objs if not any(r.get("kind") == I.KIND for r in
                                               o["metadata"].get("ownerReferences") or ())]
            if mine:
                out[serving] = mine
        return out

    def _inference_services(self) -> dict[str, Obj]:
        """The project's InferenceServices; none when KServe's CRD is not installed (check
        refuses kserve servings then), or when a Role without them may not list them and no
        spec asks for one."""
        try:
            found = self._by_serving(I.KIND)
        except NotFound:
            self._no_kserve = True
            return {}
        except Rejected:
            if any(ls.serving.spec.tool.value == K.TOOL for ls in self.project.servings):
                raise
            return {}
        self._no_kserve = False
        return {name: obj for name, objs in found.items()
                if (obj := _named(objs, name)) is not None}

    def observe(self, names: frozenset[str]) -> LiveState:
        deployments = self._by_serving("Deployment")
        services = self._by_serving("Service")
        configs = self._by_serving("ConfigMap")
        pods = self._by_serving("Pod")
        isvcs = self._inference_services()
        now = datetime.now(UTC)
        resources = {}
        made_by_kserve = deployments
        deployments, services = self._own(deployments), self._own(services)
        for serving, isvc in isvcs.items():
            live = self._kserve_live(isvc, made_by_kserve.get(serving, []),
                                     pods.get(serving, []))
            resources[live.address] = live
        for serving in sorted((set(deployments) | set(services) | set(configs)) - set(isvcs)):
            live = self._live(
                serving,
                _named(deployments.get(serving), serving),
                _named(configs.get(serving), self.settings.config_map_name(serving)),
                _named(services.get(serving), serving),
                pods.get(serving, []),
                now,
            )
            resources[live.address] = live
        ours = {r.name for r in resources.values()}
        return LiveState(resources, tuple(self._blockers(names, ours)))

    def _kserve_live(self, isvc: Obj, deployments: list[Obj], pods: list[Obj]) -> LiveResource:
        name = isvc["metadata"]["name"]
        made = [_named(deployments, n) for n in K.component_deployments(isvc)]
        health = K.live_health(isvc, made, self.settings.kserve_mode == "Standard")
        live_pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in live_pods if _condition(p, "Ready").get("status") == "True"]
        essence = K.live_essence(isvc)
        address = ((isvc.get("status") or {}).get("address") or {}).get("url")
        version = essence["model"]["version"]
        return LiveResource(
            kind=self.kind,
            name=name,
            essence=essence,
            health=health,
            observed={
                "endpoints": [address] if address else [],
                "innerEndpoints": [address] if address else [],
                "servedName": name,  # KServe's runtime serves the model as the service's name
                "servedVersions": [int(version)] if health.state is Health.READY
                and str(version).isdigit() and ready else [],
                "ready": len(ready),
                "members": [{"name": p["metadata"]["name"],
                             "state": "ready" if p in ready else (p.get("status") or {}).get(
                                 "phase", "unknown").lower(), "endpoint": None}
                            for p in sorted(live_pods, key=lambda p: p["metadata"]["name"])],
            },
            detail={"objects": {I.KIND: True}},
            protected=essence["protected"],
            revision=f"{isvc['metadata'].get('uid', '')[:8]}:"
                     f"{isvc['metadata'].get('generation', '')}",
            changed_by=I.changed_by(isvc),
        )

    def check(self, servings: Sequence[DesiredServing], live: LiveState) -> list[str]:
        kserve = sorted(d.name for d in servings if K.is_kserve(d))
        if kserve and self._no_kserve:
            return [f"serving {kserve[0]!r} uses tool 'kserve', but KServe's InferenceService "
                    f"CRD ({I.PLURAL}.{I.GROUP}) is not installed on the cluster"]
        return []

    def _blockers(self, names: frozenset[str], ours: set[str]) -> list[Blocker]:
        """Objects by the names a new serving needs that this project does not own (one GET
        for each, and only for servings that are not there yet)."""
        out = []
        kserve = {ls.name for ls in self.project.servings
                  if ls.serving.spec.tool.value == K.TOOL}
        for serving in sorted(names - ours):
            wanted = ((I.KIND, serving),) if serving in kserve else ()
            for kind, name in wanted or ((P.DEPLOYMENT, serving), (P.SERVICE, serving),
                                         (P.CONFIG_MAP, self.settings.config_map_name(serving))):
                obj = self.kube.get(kind, name)
                if obj is None:
                    continue
                owner = (obj["metadata"].get("labels") or {}).get(M.LABEL_PROJECT)
                why = f"managed by project {owner!r}" if owner else "not managed by declserve"
                out.append(Blocker(f"{kind} {name}", f"{self.kind}.{serving}", why))
        return out

    def _live(
        self,
        serving: str,
        dep: Obj | None,
        config: Obj | None,
        service: Obj | None,
        pods: list[Obj],
        now: datetime,
    ) -> LiveResource:
        objects = {P.DEPLOYMENT: dep is not None, P.SERVICE: service is not None,
                   P.CONFIG_MAP: config is not None}
        if dep is None:
            essence: dict[str, Any] = {"state": "absent", "instances": 0}
            health = HealthStatus.degraded(f"its Deployment {serving} is missing")
            shape = None
        else:
            essence, shape = E.live_essence(self.settings, dep, config, service)
            health = deployment_health(dep, pods, now)
        broken = [(p["metadata"]["name"], why) for p in pods
                  if (why := pod_problem(p, now)) is not None]
        live_pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in live_pods if _condition(p, "Ready").get("status") == "True"]
        served = sorted({int(v) for p in ready
                         if (v := (p["metadata"].get("annotations") or {}).get(M.ANN_VERSION))
                         and v.isdigit()})
        revision = ";".join(
            f"{o['metadata'].get('uid', '')[:8]}:{o['metadata'].get('generation', '')}"
            for o in (dep, config, service) if o is not None
        )
        return LiveResource(
            kind=self.kind,
            name=serving,
            essence=essence,
            health=health,
            observed={
                "endpoints": self._endpoints(service),
                "innerEndpoints": [self._inner(service)] if service else [],
                "servedVersions": served,
                "ready": len(ready),
                "members": [
                    {"name": p["metadata"]["name"],
                     "state": "ready" if p in ready else (p.get("status") or {}).get(
                         "phase", "unknown").lower(),
                     "endpoint": None,
                     "servedVersions": [
                         int(v) for v in [(p["metadata"].get("annotations") or {}).get(
                             M.ANN_VERSION, "")] if v.isdigit() and p in ready]}
                    for p in sorted(live_pods, key=lambda p: p["metadata"]["name"])
                ],
            },
            detail={"objects": objects, "broken": broken,
                    "selector": ((dep or {}).get("spec") or {}).get("selector", {}).get(
                        "matchLabels")},
            protected=bool(shape.protected) if shape else False,
            revision=revision,
            changed_by=E.changed_by({"deployment": dep, "configmap": config,
                                     "service": service}),
        )

    def _endpoints(self, service: Obj | None) -> list[str]:
        """The addresses a client on this machine can use: a NodePort when the cluster's node
        is this machine (its API server is on loopback), else the in-cluster name."""
        if service is None:
            return []
        rest: Obj = next(
            (p for p in service["spec"].get("ports") or () if p.get("name") == M.PORT_REST), {}
        )
        host = urlsplit(self.kube.host).hostname
        if rest.get("nodePort") and host in ("127.0.0.1", "localhost"):
            return [f"http://127.0.0.1:{rest['nodePort']}"]
        return [self._inner(service)]

    def _inner(self, service: Obj) -> str:
        name = service["metadata"]["name"]
        return f"http://{name}.{self.settings.namespace}.svc:{tfs.REST_PORT}"

    # ---- carrying out the steps -------------------------------------------------------------
    def execute(self, change: ResourceChange, wanted: Wanted | None, ctx: ApplyContext) -> None:
        desired = wanted.serving if wanted else None
        for step in change.steps:
            ctx.checkpoint()
            ctx.say(step.text())
            self._step(step, change.name, desired, ctx)

    def _step(self, step: Step, serving: str, d: DesiredServing | None, ctx: ApplyContext) -> None:
        kind, _, name = step.target.partition(" ")
        if step.op == P.DELETE:
            self.kube.delete(kind, name)
            return
        if step.op == P.DELETE_POD:
            self.kube.delete("Pod", step.target)
            return
        if step.op == P.WAIT_GONE:
            self.wait_stopped(serving, ctx)
            return
        if step.op == P.APPLY and step.target == K.SINK:
            self.apply_sink(ctx)
            return
        assert d is not None, f"step {step.text()!r} needs the serving's spec"
        if step.op == K.WRITE_ARTIFACT:
            assert self.registry is not None
            K.write_artifact(self.registry, d)
        elif step.op == P.APPLY and kind == I.KIND:
            assert self.registry is not None
            self.kube.apply(K.manifest(self.settings, self.registry, d))
        elif step.op == P.WAIT and kind == I.KIND:
            self.wait_inference_service(d, ctx)
        elif step.op == P.APPLY:
            self.apply_object(kind, d)
        elif step.op == P.WAIT:
            self.wait_rollout(d, ctx)
        else:
            raise Rejected(f"unknown step {step.text()!r} for the Kubernetes backend")

    def manifests(self, d: DesiredServing) -> dict[str, Obj]:
        """The objects apply writes for a serving (what `plan --manifests` prints, too)."""
        if K.is_kserve(d):
            assert self.registry is not None
            return {I.KIND: K.manifest(self.settings, self.registry, d)}
        shape = self.shape_of(d)
        live = self.kube.get(P.DEPLOYMENT, d.name)
        match = ((live or {}).get("spec") or {}).get("selector", {}).get("matchLabels")
        return self.manifests_for(shape, match)

    def manifests_for(self, shape: M.ServingShape, match: dict[str, str] | None) -> dict[str, Obj]:
        service = M.service(self.settings, shape)
        if match:
            service["spec"]["selector"] = match
        return {
            P.CONFIG_MAP: M.config_map(self.settings, shape),
            P.DEPLOYMENT: M.deployment(self.settings, shape, match),
            P.SERVICE: service,
        }

    def apply_object(self, kind: str, d: DesiredServing) -> Obj:
        return self.kube.apply(self.manifests(d)[kind])

    def _serving_pods(self, serving: str) -> list[Obj]:
        return self.kube.list("Pod", f"{self._selector},{M.LABEL_SERVING}={serving}")

    def wait_rollout(self, d: DesiredServing, ctx: ApplyContext) -> None:
        """Every pod of the current template ready (serving the pinned version), old ones
        gone, or NotReady with the reason the pods give."""
        deadline = time.monotonic() + self.settings.ready_timeout
        while True:
            dep = self.kube.get(P.DEPLOYMENT, d.name)
            if dep is None:
                raise NotFound(f"Deployment {d.name} disappeared during apply")
            pods = self._serving_pods(d.name)
            # pods of an earlier template (a rollout that failed before) go as this one rolls;
            # which template is current is known once the controller has seen this generation
            seen = (dep.get("status") or {}).get("observedGeneration", 0) >= dep["metadata"].get(
                "generation", 0)
            current = self._current(dep, pods) if seen else []
            fatal = [w for w in (_fatal(p) for p in current) if w]
            if fatal:
                raise NotReady(f"serving {d.name} cannot start: {'; '.join(fatal)}")
            if K.rolled_out(dep):
                return
            if time.monotonic() > deadline:
                health = deployment_health(dep, pods, datetime.now(UTC))
                raise NotReady(
                    f"serving {d.name} was not ready within {self.settings.ready_timeout:.0f}s "
                    f"({health.reason or 'no reason given'}){self._events(pods)}"
                )
            ctx.checkpoint()
            time.sleep(_POLL)  # polling the Deployment's status, bounded by the deadline

    def apply_sink(self, ctx: ApplyContext) -> None:
        """The project's logging sink, knowing every logging kserve serving of the specs, and
        its pod rolled out (a changed config makes a new one, ready before the old goes)."""
        servings = [d for d in resolve_desired(self.project) if K.is_kserve(d)]
        for obj in logsink.objects(self.settings, servings):
            self.kube.apply(obj)
        deadline = time.monotonic() + self.settings.ready_timeout
        sink = logsink.name(self.settings)
        while not K.rolled_out(self.kube.get(P.DEPLOYMENT, sink) or {"metadata": {}}):
            if time.monotonic() > deadline:
                pods = self.kube.list("Pod", f"{self._selector},declserve.io/role=logsink")
                raise NotReady(f"the logging sink {sink} was not ready within "
                               f"{self.settings.ready_timeout:.0f}s{self._events(pods)}")
            ctx.checkpoint()
            time.sleep(_POLL)  # polling the sink's Deployment, bounded by the deadline

    def wait_inference_service(self, d: DesiredServing, ctx: ApplyContext) -> None:
        """Healthy as Argo CD judges it (and, in Standard mode, its Deployments rolled out),
        or NotReady with the failing condition's reason; a model KServe says cannot load
        ends the wait at once."""
        deadline = time.monotonic() + self.settings.ready_timeout
        while True:
            isvc = self.kube.get(I.KIND, d.name)
            if isvc is None:
                raise NotFound(f"InferenceService {d.name} disappeared during apply")
            made = [self.kube.get(P.DEPLOYMENT, n) for n in K.component_deployments(isvc)]
            health = K.live_health(isvc, made, self.settings.kserve_mode == "Standard")
            if health.state is Health.READY:
                return
            transition = ((isvc.get("status") or {}).get("modelStatus") or {}).get(
                "transitionStatus")
            if transition in ("BlockedByFailedLoad", "InvalidSpec"):
                raise NotReady(f"serving {d.name} cannot start: {health.reason}")
            pods = self._serving_pods(d.name)
            fatal = [w for w in (_fatal(p) for p in pods) if w]
            if fatal:
                raise NotReady(f"serving {d.name} cannot start: {'; '.join(fatal)}")
            if time.monotonic() > deadline:
                raise NotReady(
                    f"serving {d.name} was not ready within {self.settings.ready_timeout:.0f}s "
                    f"({health.reason or 'no reason given'}){self._events(pods)}")
            ctx.checkpoint()
            time.sleep(_POLL)  # polling KServe's status, bounded by the deadline

    def _current(self, dep: Obj, pods: list[Obj]) -> list[Obj]:
        """The pods of the Deployment's current template (its newest ReplicaSet's)."""
        revision = (dep["metadata"].get("annotations") or {}).get(_REVISION)
        if revision is None:
            return []  # the controller has not made its ReplicaSet yet
        sets = self.kube.list("ReplicaSet", f"{self._selector},{M.LABEL_SERVING}="
                              f"{dep['metadata']['name']}")
        hashes = {(r["metadata"].get("labels") or {}).get(_TEMPLATE_HASH) for r in sets
                  if (r["metadata"].get("annotations") or {}).get(_REVISION) == revision}
        return [p for p in pods
                if (p["metadata"].get("labels") or {}).get(_TEMPLATE_HASH) in hashes]

    def wait_stopped(self, serving: str, ctx: ApplyContext) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout
        while [p for p in self._serving_pods(serving)]:
            if time.monotonic() > deadline:
                raise NotReady(f"the pods of serving {serving} did not stop within "
                               f"{self.settings.ready_timeout:.0f}s")
            time.sleep(_POLL)

    def _events(self, pods: list[Obj]) -> str:
        names = {p["metadata"]["name"] for p in pods}
        try:
            events = self.kube.list("Event", fields="type=Warning")
        except (BackendUnavailable, Rejected):
            return ""
        found = [f"{e['involvedObject'].get('name')}: {e.get('reason')}: "
                 f"{(e.get('message') or '').strip()[:200]}"
                 for e in events if (e.get("involvedObject") or {}).get("name") in names]
        return "; events: " + " | ".join(found[-3:]) if found else ""

    # ---- project records --------------------------------------------------------------------
    @property
    def records(self) -> KubernetesRecords:
        if not hasattr(self, "_records"):
            self._records = KubernetesRecords(self.kube, self.settings.project)
        return self._records

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        return self.records.try_lock(info)

    def unlock(self, lock_id: str) -> bool:
        return self.records.unlock(lock_id)

    def read_lock(self) -> LockInfo | None:
        return self.records.read_lock()

    def record_history(self, entry: dict[str, Any], keep: int) -> None:
        self.records.record(entry, keep)

    def history(self) -> list[dict[str, Any]]:
        return self.records.history()

    def unprotect(self, name: str) -> bool:
        """The mark is an annotation of the serving's Deployment, or of its InferenceService."""
        for kind in (P.DEPLOYMENT, I.KIND):
            obj = self.kube.get(kind, name)  # None without KServe's CRD, too
            if obj is not None and (obj["metadata"].get("labels") or {}).get(
                    M.LABEL_PROJECT) == self.settings.project:
                break
        else:
            raise NotFound(f"serving {name!r} has no Deployment or InferenceService in "
                           f"namespace {self.settings.namespace}")
        had = (obj["metadata"].get("annotations") or {}).get(M.ANN_PROTECTED) == "true"
        if had:
            self.kube.patch(kind, name, {"metadata": {"annotations": {M.ANN_PROTECTED: None}}},
                            "declserve-unprotect")
        return had

    # ---- reading for humans -----------------------------------------------------------------
    def details(self, live: LiveResource) -> dict[str, Any]:
        """The logging proxies' record counters, summed over the serving's pods: asked of each
        pod through the API server's pod proxy, only for `status`, never by plan."""
        if "logging" not in live.essence:
            return {}
        stats = [s for pod in live.observed.get("members") or ()
                 if pod.get("state") == "ready" and (s := self._proxy_stats(pod["name"]))]
        if not stats:
            return {}
        failed: dict[str, int] = {}
        for s in stats:
            for reason, n in (s.get("recordsFailed") or {}).items():
                failed[reason] = failed.get(reason, 0) + int(n)
        return {"records": {"produced": sum(int(s.get("recordsProduced", 0)) for s in stats),
                            "failed": failed,
                            "refused": sum(int(s.get("requestsTooLarge", 0)) for s in stats),
                            "pods": len(stats)}}

    def _proxy_stats(self, pod: str) -> Obj | None:
        try:
            return self.kube.pod_proxy_get(pod, M.PROXY_PORT, "/-/stats")
        except (BackendUnavailable, NotFound, Rejected, ValueError):
            return None  # a pod going away, or a proxy not answering: not counted

    def logs(self, name: str, tail: int, follow: bool) -> Iterator[tuple[str, str]]:
        pods = [p for p in self._serving_pods(name) if not p["metadata"].get("deletionTimestamp")]
        if not pods:
            raise NotFound(f"serving {name!r} has no pods in namespace {self.settings.namespace}")
        members = [(f"{p['metadata']['name']}/{c['name']}", p["metadata"]["name"], c["name"])
                   for p in sorted(pods, key=lambda p: p["metadata"]["name"])
                   for c in p["spec"]["containers"]]
        if not follow:
            for member, pod, container in members:
                text = b"".join(self.kube.logs(pod, container, tail, False))
                for line in text.decode(errors="replace").splitlines():
                    yield member, line
            return
        lines: queue.Queue[tuple[str, str]] = queue.Queue()

        def pump(member: str, pod: str, container: str) -> None:
            buffer = b""
            try:
                for chunk in self.kube.logs(pod, container, tail, True):
                    buffer += chunk
                    *done, buffer = buffer.split(b"\n")
                    for line in done:
                        lines.put((member, line.decode(errors="replace")))
            except (BackendUnavailable, NotFound, Rejected, OSError):
                pass
            lines.put((member, "(log stream ended)"))

        for member, pod, container in members:
            threading.Thread(target=pump, args=(member, pod, container), daemon=True).start()
        while True:
            yield lines.get()

    def find_adoption(self, name: str) -> Adoption | None:
        from declserve.backends.kubernetes import adoption  # only `import` needs it

        return adoption.find(self, name)


def _named(objs: list[Obj] | None, name: str) -> Obj | None:
    return next((o for o in objs or () if o["metadata"]["name"] == name), None)


def _fatal(pod: Obj) -> str | None:
    for c in (pod.get("status") or {}).get("containerStatuses") or ():
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            message = (waiting.get("message") or "").strip()
            return (f"pod {pod['metadata']['name']}: {waiting['reason']}"
                    + (f": {message[:200]}" if message else ""))
    return None

