"""The Docker backend: a serving is `instances` TensorFlow Serving containers on one engine.

Each container mounts the model directory read-only and a per-serving config directory holding
the model config file declserve writes; TensorFlow Serving polls that file, so a version bump
is a file write that every replica reloads in place, old version answering until the new one is
AVAILABLE. The steps of each change come from `planner` (pure); this module reads what runs
and carries out those steps. Only the modules of this package talk to the Docker engine.
"""

from __future__ import annotations

import http.client
import queue
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
from docker.types import DeviceRequest, Mount

from declserve import spec as S
from declserve.backends import tfserving as tfs
from declserve.backends.docker import adopt as A
from declserve.backends.docker import essence as E
from declserve.backends.docker import files as F
from declserve.backends.docker import planner as P
from declserve.backends.docker import proxy as X
from declserve.backends.docker.engine import connect, engine_errors, update_limits
from declserve.backends.docker.records import DockerRecords
from declserve.backends.docker.settings import DockerSettings
from declserve.desired import DesiredServing
from declserve.errors import NotFound, NotReady, Rejected
from declserve.live import Blocker, HealthStatus, LiveResource, LiveState
from declserve.loader import LoadedProject
from declserve.lock import LockInfo
from declserve.plan import DesiredResource, ResourceChange, Step
from declserve.provider import Adoption, ApplyContext, Wanted

_POLL = 0.2
# How long a hand-made container's port does not answer while it moves to the front proxy:
# 4-44 ms measured under load in tests/backends/docker/test_import.py, rounded up; the
# preview's promise, which that test holds it to.
HAND_OVER_ESTIMATE_MS = 100
Attrs = dict[str, Any]


class DockerBackend(P.DockerPlanner):
    def __init__(
        self,
        settings: DockerSettings,
        project: LoadedProject,
        client: docker.DockerClient | None = None,
    ) -> None:
        super().__init__(settings)
        self.project = project
        self.client = client or connect(settings.base_url)
        self.api = self.client.api

    def identity(self) -> str:
        return f"docker:{self.api.base_url}"

    # ---- reading ------------------------------------------------------------------------
    def _inspect(self, cid: str) -> Attrs | None:
        try:
            with engine_errors(f"inspect container {cid[:12]}"):
                return self.api.inspect_container(cid)  # type: ignore[no-any-return]
        except NotFound:
            return None  # removed between list and inspect

    def _list(self, **filters: Any) -> list[Attrs]:
        with engine_errors("list containers"):
            return self.api.containers(all=True, filters=filters or None)  # type: ignore[no-any-return]

    def _is_ours(self, labels: dict[str, str]) -> bool:
        return labels.get(E.LABEL_PROJECT) == self.settings.project and E.LABEL_SERVING in labels

    def _blockers(self, raw: list[Attrs], names: frozenset[str]) -> list[Blocker]:
        pattern = re.compile(rf"^/?{re.escape(self.settings.project)}-(.+)-(\d+(-next)?|proxy)$")
        out = []
        for c in raw:
            labels = c.get("Labels") or {}
            if self._is_ours(labels):
                continue
            for n in c.get("Names") or ():
                m = pattern.match(n)
                if m and m.group(1) in names:
                    owner = labels.get(E.LABEL_PROJECT)
                    why = f"managed by project {owner!r}" if owner else "not managed by declserve"
                    out.append(Blocker(n.lstrip("/"), f"{self.kind}.{m.group(1)}", why))
        return out

    def _endpoint(self, attrs: Attrs) -> str | None:
        ports = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(
            f"{tfs.REST_PORT}/tcp"
        )
        if not ports:
            return None
        return f"http://{self.settings.host}:{ports[0]['HostPort']}"

    def served_versions(
        self, endpoint: str | None, model: str | None, timeout: float = 1.0
    ) -> tuple[int, ...] | None:
        """Versions the server reports AVAILABLE; None when it does not answer.

        http.client rather than urllib: a plan asks every replica, and urllib's opener and
        proxy lookup cost more than the request itself on loopback.
        """
        if not endpoint or not model:
            return None
        host, port = endpoint.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            connection.request("GET", f"/v1/models/{model}")
            response = connection.getresponse()
            if response.status != 200:
                return None
            return tfs.available_versions(response.read())
        except (OSError, ValueError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    def _read(self, cid: str) -> tuple[Attrs, tuple[int, ...] | None] | None:
        """One container's inspect output and, for a running replica, what its server serves.

        Both in one worker so that the engine's answers and the servers' answers overlap.
        """
        attrs = self._inspect(cid)
        if attrs is None:
            return None
        labels = attrs["Config"]["Labels"]
        state = attrs["State"]
        if (
            labels.get(E.LABEL_ROLE) == X.ROLE_PROXY
            or not state.get("Running")
            or state.get("Paused")
        ):
            return attrs, None
        return attrs, self.served_versions(self._endpoint(attrs), labels.get(E.LABEL_MODEL))

    def observe(self, names: frozenset[str]) -> LiveState:
        raw = self._list()
        ours = [c["Id"] for c in raw if self._is_ours(c.get("Labels") or {})]
        # Few workers: reading is bound by CPU here (JSON parsing, and the servers answering on
        # the same cores), so more threads only add switching; measured in bench/plan.py.
        with ThreadPoolExecutor(max_workers=4) as pool:
            read = [r for r in pool.map(self._read, ours) if r is not None]
        replicas: dict[str, list[tuple[Attrs, tuple[int, ...] | None]]] = {}
        proxies: dict[str, Attrs] = {}
        for attrs, served in read:
            labels = attrs["Config"]["Labels"]
            serving = labels[E.LABEL_SERVING]
            replicas.setdefault(serving, [])
            if labels.get(E.LABEL_ROLE) == X.ROLE_PROXY:
                proxies[serving] = attrs
            else:
                replicas[serving].append((attrs, served))
        resources = {}
        for serving, containers in replicas.items():
            live = self._live(serving, containers, proxies.get(serving))
            resources[live.address] = live
        return LiveState(resources, tuple(self._blockers(raw, names)))

    def _replica(
        self, attrs: Attrs, served: tuple[int, ...] | None, version: Any
    ) -> dict[str, Any]:
        state = attrs["State"]
        index = attrs["Config"]["Labels"].get(E.LABEL_INDEX, "")
        name = attrs["Name"].lstrip("/")
        problem = None
        if state.get("Paused"):
            problem = f"{name} is paused"
        elif state.get("Restarting"):
            problem = f"{name} keeps restarting"
        elif state.get("Running") and served is None:
            problem = f"{name} does not answer GET /v1/models/<name> on its REST port"
        elif state.get("Running") and served is not None and version not in served:
            shown = ", ".join(map(str, served)) or "nothing"
            problem = f"{name} serves {shown}, not version {version}"
        return {
            "name": name,
            "id": attrs["Id"],
            "index": int(index) if index.isdigit() else None,
            "running": bool(state.get("Running")),
            "status": state.get("Status", "unknown"),
            "essence": E.replica_essence(attrs),
            "problem": problem,
            "endpoint": self._endpoint(attrs),
            "servedVersions": list(served or ()),
        }

    def _live(
        self,
        serving: str,
        containers: list[tuple[Attrs, tuple[int, ...] | None]],
        proxy: Attrs | None,
    ) -> LiveResource:
        dirs = [E.config_dir_of(a) for a, _ in containers] + (
            [E.config_dir_of(proxy)] if proxy else []
        )
        config_dir = next((d for d in dirs if d), None)
        files = E.files_essence(config_dir)
        version = files["model"].get("version")
        reps = sorted(
            (self._replica(a, served, version) for a, served in containers), key=lambda r: r["name"]
        )
        front = X.observed(proxy, config_dir) if proxy else {}
        essence = E.serving_essence([(r["name"], r["essence"]) for r in reps], files, front)
        problems = [r["problem"] for r in reps if r["problem"]]
        proxy_detail = None
        proxy_url = None
        running = [r for r in reps if r["running"]]
        endpoints = [r["endpoint"] for r in running if r["endpoint"]]
        if proxy is not None:
            up = bool(proxy["State"].get("Running"))
            current = X.read_upstreams(config_dir) == sorted(endpoints)
            proxy_url = X.endpoint(config_dir, self.settings.host) if up else None
            proxy_detail = {
                "name": proxy["Name"].lstrip("/"),
                "id": proxy["Id"],
                "running": up,
                "upstreamsCurrent": current,
                "url": proxy_url,
            }
            if running and not up:
                problems.append(f"the front proxy {proxy_detail['name']} is not running")
            elif running and not current:
                problems.append("the front proxy's list of replicas is stale")
        health = HealthStatus.degraded("; ".join(problems)) if problems else HealthStatus.ready()
        observed: dict[str, Any] = {
            "endpoints": [proxy_url] if proxy_url else endpoints,
            "servedVersions": sorted({v for r in reps for v in r["servedVersions"]}),
            "ready": sum(1 for r in running if not r["problem"]),
            "members": [
                {
                    "name": r["name"],
                    "state": r["status"],
                    "endpoint": r["endpoint"],
                    "servedVersions": r["servedVersions"],
                }
                for r in reps
            ],
        }
        revision = ",".join(sorted(f"{r['id'][:12]}:{r['status']}" for r in reps))
        if proxy_detail:
            revision += f";{proxy_detail['id'][:12]}:{proxy_detail['running']}"
        return LiveResource(
            kind=self.kind,
            name=serving,
            essence=essence,
            health=health,
            observed=observed,
            detail={"replicas": reps, "proxy": proxy_detail},
            protected=bool(files["protected"]),
            revision=revision,
        )

    def _containers(self, serving: str) -> tuple[dict[str, Attrs], Attrs | None]:
        """The serving's replica containers by name, and its proxy, as they are now."""
        found = self._list(
            label=[f"{E.LABEL_PROJECT}={self.settings.project}", f"{E.LABEL_SERVING}={serving}"]
        )
        replicas: dict[str, Attrs] = {}
        proxy = None
        for c in found:
            attrs = self._inspect(c["Id"])
            if attrs is None:
                continue
            if attrs["Config"]["Labels"].get(E.LABEL_ROLE) == X.ROLE_PROXY:
                proxy = attrs
            else:
                replicas[attrs["Name"].lstrip("/")] = attrs
        return replicas, proxy

    # ---- carrying out the steps -------------------------------------------------------------
    def execute(self, change: ResourceChange, wanted: Wanted | None, ctx: ApplyContext) -> None:
        desired = wanted.serving if wanted else None
        for step in change.steps:
            ctx.checkpoint()
            ctx.say(step.text())
            self._step(step, change.name, desired, ctx)

    def _step(self, step: Step, serving: str, d: DesiredServing | None, ctx: ApplyContext) -> None:
        directory = self.settings.config_dir(serving)
        if step.op == P.REMOVE and step.target == P.CONFIG_FILES:
            F.remove_serving_files(directory)
            return
        if step.op in (P.REMOVE, P.PROXY_REMOVE):
            ids = self._ids_named(step.target)
            if step.op == P.REMOVE:
                self._refresh_proxy(serving, leaving=set(ids))  # no request is sent its way
            for cid in ids:
                self._remove(cid)
            if step.op == P.PROXY_REMOVE:
                X.remove_files(directory)
            return
        if step.op in (P.STOP, P.PROXY_STOP):
            with engine_errors(f"stop {step.target}"):
                self.api.stop(self._one_named(step.target), timeout=10)
            return
        assert d is not None, f"step {step.text()!r} needs the serving's spec"
        if step.op == P.WRITE:
            F.write_serving_files(directory, d)
        elif step.op == P.CREATE:
            self._create(d, _index(step.target), step.target)
        elif step.op == P.RECREATE:
            self._recreate(d, step.target, ctx)
        elif step.op == P.LIMITS:
            self._limits(d, step.target)
        elif step.op in (P.START, P.PROXY_START):
            with engine_errors(f"start {step.target}"):
                self.api.start(self._one_named(step.target))
            if step.op == P.PROXY_START:
                self._point_proxy(d)
        elif step.op == P.WAIT:
            names = [self.settings.container_name(d.name, i) for i in range(d.spec.instances)]
            self.wait_ready(d, [self._one_named(n) for n in names], ctx)
        elif step.op == P.PROXY_CREATE:
            self._create_proxy(d)
        elif step.op == P.PROXY_RECREATE:
            for cid in self._ids_named(step.target):
                self._remove(cid)
            self._create_proxy(d)
        elif step.op == P.PROXY_POINT:
            self._point_proxy(d)
        elif step.op == P.PROXY_CONFIGURE:
            self._configure_proxy(d)
        else:
            raise Rejected(f"unknown step {step.text()!r} for the Docker backend")

    def _remove(self, cid: str) -> None:
        try:
            with engine_errors(f"remove container {cid[:12]}"):
                self.api.remove_container(cid, force=True)
        except NotFound:
            pass

    def _ids_named(self, name: str) -> list[str]:
        return [c["Id"] for c in self._list(name=f"^/{name}$")]

    def _one_named(self, name: str) -> str:
        ids = self._ids_named(name)
        if not ids:
            raise NotFound(f"container {name} is gone; run plan again")
        return ids[0]

    def _limits(self, d: DesiredServing, name: str) -> None:
        res = d.spec.resources
        # The SDK's update_container has no NanoCpus, and CPU quota would conflict with the
        # NanoCpus set at creation, so the engine's update endpoint is called directly.
        body = {
            "NanoCpus": int(res.cpu_cores * 10**9),
            "Memory": res.memory_bytes,
            "MemorySwap": res.memory_bytes,
        }
        with engine_errors(f"change the limits of {name}"):
            update_limits(self.api, self._one_named(name), body)

    def _recreate(self, d: DesiredServing, final: str, ctx: ApplyContext) -> None:
        """Rolling: the new container is ready before the old one goes."""
        old = self._ids_named(final)
        temporary = f"{final}-next" if old else final
        for leftover in self._ids_named(f"{final}-next"):
            self._remove(leftover)  # from an apply killed mid-way
        new_id = self._create(d, _index(final), temporary)
        if d.spec.state is S.DesiredState.RUNNING:
            self.wait_ready(d, [new_id], ctx)
        self._refresh_proxy(d.name, leaving=set(old))  # the proxy sends to the new one first
        for cid in old:
            self._remove(cid)
        self._refresh_proxy(d.name)
        if temporary != final:
            with engine_errors(f"rename {temporary} to {final}"):
                self.api.rename(new_id, final)

    def _labels(self, d: DesiredServing, index: int) -> dict[str, str]:
        user = dict(d.serving.metadata.labels)
        return {
            **user,
            E.LABEL_MANAGED: E.MANAGER,
            E.LABEL_PROJECT: self.settings.project,
            E.LABEL_SERVING: d.name,
            E.LABEL_INDEX: str(index),
            E.LABEL_MODEL: d.spec.model.name,
            E.LABEL_USER_KEYS: ",".join(sorted(user)),
            E.LABEL_SPEC_HASH: E.spec_hash(E.desired_essence(d, self.settings)),
        }

    def ensure_image(self) -> None:
        image = self.settings.image
        try:
            with engine_errors(f"find image {image}"):
                self.client.images.get(image)
            return
        except NotFound:
            pass
        if self.settings.pull_policy == "never":
            raise Rejected(f"image {image} is not on the Docker engine and pullPolicy is 'never'")
        try:
            with engine_errors(f"pull image {image}"):
                self.client.images.pull(image)
        except (NotFound, Rejected) as exc:
            raise Rejected(
                f"image {image} is not on the Docker engine and could not be pulled"
            ) from exc

    def model_host_path(self, d: DesiredServing) -> str:
        """Where this runner's registry holds the serving's model: what the replicas mount."""
        return str(self.project.registry.model_dir(d.model.name).resolve())

    def _create(self, d: DesiredServing, index: int, name: str) -> str:
        self.ensure_image()
        spec = d.spec
        gpus = spec.resources.gpus
        policy: dict[str, Any] = {"Name": self.settings.restart_policy}
        if self.settings.restart_policy == "on-failure":
            policy["MaximumRetryCount"] = 5
        with engine_errors(f"create container {name}"):
            container = self.client.containers.create(
                self.settings.image,
                name=name,
                entrypoint=["tensorflow_model_server"],
                command=tfs.server_args(self.settings.poll_seconds, spec.batching.enabled),
                labels=self._labels(d, index),
                mounts=[
                    Mount(
                        f"{tfs.MODELS_MOUNT}/{spec.model.name}",
                        self.model_host_path(d),
                        type="bind",
                        read_only=True,
                    ),
                    Mount(
                        tfs.CONFIG_DIR,
                        str(self.settings.config_dir(d.name)),
                        type="bind",
                        read_only=True,
                    ),
                ],
                # None: the engine picks a free host port (the SDK's stubs omit that case).
                ports={f"{tfs.REST_PORT}/tcp": (self.settings.bind_address, None)},  # type: ignore[dict-item]
                nano_cpus=int(spec.resources.cpu_cores * 10**9),
                mem_limit=spec.resources.memory_bytes,
                memswap_limit=spec.resources.memory_bytes,
                device_requests=[DeviceRequest(count=gpus, capabilities=[["gpu"]])]
                if gpus
                else None,
                restart_policy=policy,  # type: ignore[arg-type]
            )
        if spec.state is S.DesiredState.RUNNING:
            with engine_errors(f"start {name}"):
                container.start()
        return str(container.id)

    def wait_ready(self, d: DesiredServing, ids: list[str], ctx: ApplyContext) -> None:
        """Every replica serves exactly the target version, or NotReady with the reason."""
        if not ids:
            return
        model, version = d.spec.model.name, d.version
        deadline = time.monotonic() + self.settings.ready_timeout
        pending = set(ids)
        last: dict[str, Any] = {}
        while pending:
            for cid in sorted(pending):
                attrs = self._inspect(cid)
                if attrs is None or not attrs["State"].get("Running"):
                    with engine_errors(f"read the log of {cid[:12]}"):
                        logs = (
                            self.api.logs(cid, tail=5).decode(errors="replace").strip()
                            if attrs
                            else ""
                        )
                    what = attrs["Name"].lstrip("/") if attrs else cid[:12]
                    status = attrs["State"].get("Status") if attrs else "removed"
                    raise NotReady(
                        f"{what} stopped ({status}) before serving version {version}: {logs[-400:]}"
                    )
                served = self.served_versions(self._endpoint(attrs), model)
                last[cid] = served
                if served == (version,):
                    pending.discard(cid)
            if pending and time.monotonic() > deadline:
                detail = ", ".join(f"{cid[:12]} serves {last.get(cid)}" for cid in sorted(pending))
                raise NotReady(
                    f"serving {d.name} did not serve version {version} within "
                    f"{self.settings.ready_timeout:.0f}s ({detail})"
                )
            if pending:
                time.sleep(_POLL)  # polling the server's own status, bounded by the deadline

    # ---- the front proxy: the serving's one address, and its inference logging --------------
    def _ready_endpoints(self, serving: str, leaving: set[str] | None = None) -> list[str]:
        """The endpoints of the serving's running replicas, but those with ids in `leaving`."""
        replicas, _ = self._containers(serving)
        found = [
            self._endpoint(a)
            for a in replicas.values()
            if a["State"].get("Running") and a["Id"] not in (leaving or set())
        ]
        return sorted(e for e in found if e)

    def _refresh_proxy(self, serving: str, leaving: set[str] | None = None) -> None:
        """Point a serving's front proxy, if it has one, at its running replicas but `leaving`."""
        directory = self.settings.config_dir(serving)
        if (directory / X.PROXY_CONFIG).exists():
            X.write_upstreams(directory, self._ready_endpoints(serving, leaving))

    def _point_proxy(self, d: DesiredServing) -> None:
        X.write_upstreams(self.settings.config_dir(d.name), self._ready_endpoints(d.name))

    def _write_proxy_config(self, d: DesiredServing) -> int:
        logging = d.spec.inference_logging
        on = d.topic is not None and logging is not None
        directory = self.settings.config_dir(d.name)
        directory.mkdir(parents=True, exist_ok=True)
        port = X.listen_port(directory, self.settings.bind_address, d.spec.endpoint.port)
        X.write_config(
            directory,
            serving=d.name,
            model=d.spec.model.name,
            topic=d.topic if on else None,
            mode=logging.mode.value if on and logging is not None else "none",
            bootstrap=self.settings.kafka_bootstrap,
            bind=self.settings.bind_address,
            port=port,
            max_record_bytes=self.settings.max_message_bytes,
        )
        return port

    def _configure_proxy(self, d: DesiredServing) -> None:
        """New settings for a running proxy, which re-reads them: no moment without an answer."""
        port = self._write_proxy_config(d)
        _, proxy = self._containers(d.name)
        if proxy is None or not proxy["State"].get("Running"):
            return  # it reads the file when it starts
        logging = d.spec.inference_logging
        on = d.topic is not None and logging is not None
        want = {
            "mode": logging.mode.value if on and logging is not None else "none",
            "topic": d.topic if on else None,
            "maxRecordBytes": self.settings.max_message_bytes,
        }
        X.wait_settings(f"http://{self.settings.host}:{port}", want, self.settings.ready_timeout)

    def _create_proxy(self, d: DesiredServing) -> None:
        running = d.spec.state is S.DesiredState.RUNNING
        cid, port = self._make_proxy(d, start=running)
        if running:
            self._wait_proxy(cid, port)

    def _make_proxy(
        self, d: DesiredServing, *, start: bool, take_over: bool = False
    ) -> tuple[str, int]:
        """The serving's front proxy container, pointed at its running replicas; and its port."""
        directory = self.settings.config_dir(d.name)
        directory.mkdir(parents=True, exist_ok=True)
        self._point_proxy(d)
        port = self._write_proxy_config(d)
        labels = {
            E.LABEL_MANAGED: E.MANAGER,
            E.LABEL_PROJECT: self.settings.project,
            E.LABEL_SERVING: d.name,
        }
        cid = X.create(
            self.client,
            name=self.settings.proxy_name(d.name),
            image=self.settings.proxy_image,
            labels=labels,
            config_dir=directory,
            start=start,
            take_over_seconds=self.settings.ready_timeout if take_over else None,
        )
        return cid, port

    def _wait_proxy(self, cid: str, port: int, interval: float = 0.2) -> None:
        """Until the started front proxy answers on its port; NotReady with its log if it died."""
        try:
            X.wait_healthy(
                f"http://{self.settings.host}:{port}", self.settings.ready_timeout, interval
            )
        except NotReady as exc:
            attrs = self._inspect(cid)
            if attrs is None or attrs["State"].get("Running"):
                raise
            name = attrs["Name"].lstrip("/")
            with engine_errors(f"read the log of {name}"):
                tail = self.api.logs(cid, tail=5).decode(errors="replace").strip()
            raise NotReady(
                f"the front proxy {name} stopped ({attrs['State'].get('Status')}): {tail[-400:]}"
            ) from exc

    # ---- project records: lock, history, protection ---------------------------------------
    @property
    def records(self) -> DockerRecords:
        return DockerRecords(self.api, self.settings.project, self.settings.image)

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        self.ensure_image()  # the lock container is made from the serving image
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
        replicas, proxy = self._containers(name)
        if not replicas and proxy is None:
            raise NotFound(f"serving {name!r} has no containers on the Docker engine")
        return F.remove_protection(self.settings.config_dir(name))

    # ---- reading for humans -------------------------------------------------------------
    def details(self, live: LiveResource) -> dict[str, Any]:
        """The front proxy's record counters, asked of it only for `status`, never by plan."""
        proxy = live.detail.get("proxy") or {}
        if "logging" not in live.essence or not proxy.get("url"):
            return {}
        counters = X.read_stats(proxy["url"])
        if counters is None:
            return {}
        return {
            "records": {
                "produced": counters.get("recordsProduced", 0),
                "failed": counters.get("recordsFailed", {}),
                "refused": counters.get("requestsTooLarge", 0),
            }
        }

    def logs(self, name: str, tail: int, follow: bool) -> Iterator[tuple[str, str]]:
        replicas, proxy = self._containers(name)
        if not replicas and proxy is None:
            raise NotFound(f"serving {name!r} has no containers on the Docker engine")
        members = sorted(replicas.items()) + ([(proxy["Name"].lstrip("/"), proxy)] if proxy else [])
        if not follow:
            for member, attrs in members:
                with engine_errors(f"read the log of {member}"):
                    text = self.api.logs(attrs["Id"], tail=tail).decode(errors="replace")
                for line in text.splitlines():
                    yield member, line
            return
        yield from self._follow(members, tail)

    def _follow(self, members: list[tuple[str, Attrs]], tail: int) -> Iterator[tuple[str, str]]:
        lines: queue.Queue[tuple[str, str]] = queue.Queue()

        def pump(member: str, cid: str) -> None:
            try:
                for chunk in self.api.logs(cid, stream=True, follow=True, tail=tail):
                    for line in chunk.decode(errors="replace").splitlines():
                        lines.put((member, line))
            except (docker.errors.DockerException, OSError):
                lines.put((member, "(log stream ended)"))

        for member, attrs in members:
            threading.Thread(target=pump, args=(member, attrs["Id"]), daemon=True).start()
        while True:
            yield lines.get()

    # ---- adopting hand-made servings --------------------------------------------------------
    def find_adoption(self, name: str) -> Adoption | None:
        pattern = re.compile(rf"^/{re.escape(name)}(-\d+)?$")
        ids = [
            c["Id"]
            for c in self._list()
            if any(pattern.match(n) for n in c.get("Names") or ())
            and E.LABEL_PROJECT not in (c.get("Labels") or {})
        ]
        found = sorted(
            (
                a
                for a in map(self._inspect, ids)
                if a is not None and a["Config"].get("Image") == self.settings.image
            ),
            key=lambda a: a["Name"],
        )
        if not found:
            return None
        served = next(
            (
                v
                for v in (
                    self.served_versions(self._endpoint(a), A.model_of(a))
                    for a in found
                    if a["State"].get("Running")
                )
                if v
            ),
            None,
        )
        taken = next(
            (p for p in (A.published_rest_port(a, self.settings.bind_address) for a in found) if p),
            None,
        )
        document = A.spec_from_containers(
            name, found, self.project, served, taken.port if taken else None
        )
        instances = document["spec"]["instances"]
        holder = next((a for a in found if taken and _name(a) == taken.container), None)
        others = [a for a in found if a is not holder]
        running = holder is not None and bool(holder["State"].get("Running"))
        preview = [
            f"create {instances} managed replica(s) "
            f"{', '.join(self.settings.container_name(name, i) for i in range(instances))}"
            " and wait until they serve",
        ]
        if others:
            gone = f"remove the hand-made container(s) {', '.join(_name(a) for a in others)}"
            preview.append(
                f"{gone} (ports they publish stop answering)"
                if taken
                else f"{gone}; none publishes its REST port where the front proxy can listen "
                f"({self.settings.bind_address}), so the serving's front proxy "
                f"{self.settings.proxy_name(name)} listens on a port chosen once"
            )
        if taken is not None and running:
            where = taken.address(self.settings.host)
            only = (
                f" (published on every address, it is kept on {self.settings.bind_address} only)"
                if taken.host_ip in A.WILDCARDS and self.settings.bind_address not in A.WILDCARDS
                else ""
            )
            preview.append(
                f"start the front proxy {self.settings.proxy_name(name)} waiting for port "
                f"{taken.port}, then disconnect {taken.container} from its networks: {where} "
                f"moves to the front proxy of serving {name}{only}; requests to it may fail for "
                f"up to about {HAND_OVER_ESTIMATE_MS} ms while it moves; then remove "
                f"{taken.container}"
            )
        elif taken is not None:
            preview.append(
                f"remove {taken.container}, then create the front proxy "
                f"{self.settings.proxy_name(name)} on port {taken.port}, the one "
                f"{taken.container} published (not in use while it is stopped)"
            )

        def adopt(d: DesiredServing, ctx: ApplyContext) -> None:
            for step in self._create_steps(
                DesiredResource(self.kind, d.name, E.desired_essence(d, self.settings))
            ):
                if step.op == P.PROXY_CREATE and holder is not None:
                    continue  # made at the hand-over, once the port is free
                ctx.say(step.text())
                self._step(step, d.name, d, ctx)
            for a in others:
                ctx.say(f"remove {_name(a)}")
                self._remove(a["Id"])
            if holder is not None:
                self._hand_over(d, holder, ctx)

        return Adoption(name, document, tuple(preview), adopt)

    def _hand_over(self, d: DesiredServing, holder: Attrs, ctx: ApplyContext) -> None:
        """The hand-made container's port to the serving's front proxy, with the shortest gap.

        Docker cannot publish one host port from two containers, and the engine's port holder
        (docker-proxy) sets no SO_REUSEPORT, so the port cannot be shared for a moment. Instead
        everything slow happens while the hand-made container still answers: the replicas are
        ready, the front proxy is started and waits for the port. Disconnecting the hand-made
        container from its networks releases its port within milliseconds (removing it takes
        the engine a quarter of a second: kill, then teardown); the proxy binds it at once.
        """
        proxy = self.settings.proxy_name(d.name)
        if not (d.spec.state is S.DesiredState.RUNNING and holder["State"].get("Running")):
            ctx.say(f"remove {_name(holder)}")
            self._remove(holder["Id"])  # it holds no port while it is stopped
            ctx.say(Step(P.PROXY_CREATE, proxy).text())
            self._create_proxy(d)
            return
        cid, port = self._make_proxy(d, start=True, take_over=True)
        ctx.say(f"started the front proxy {proxy}; it waits for port {port}")
        self._wait_log(cid, X.WAITING_FOR_PORT)
        ctx.say(f"disconnect {_name(holder)} from its networks: its port goes to {proxy}")
        networks = (holder.get("NetworkSettings") or {}).get("Networks") or {}
        try:
            for network in networks:
                with engine_errors(f"disconnect {_name(holder)} from {network}"):
                    self.api.disconnect_container_from_network(holder["Id"], network, force=True)
        except Rejected:
            self._remove(holder["Id"])  # a network that cannot be left: the slower way
        self._wait_proxy(cid, port, interval=0.001)
        ctx.say(f"port {port} answers through the front proxy {proxy}")
        ctx.say(f"remove {_name(holder)}")
        self._remove(holder["Id"])

    def _wait_log(self, cid: str, line: str) -> None:
        """Until a container's log holds `line`; NotReady, with its log, at the deadline."""
        deadline = time.monotonic() + self.settings.ready_timeout
        text = ""
        while time.monotonic() < deadline:
            with engine_errors(f"read the log of {cid[:12]}"):
                text = self.api.logs(cid, tail=20).decode(errors="replace")
            if line in text:
                return
            time.sleep(0.01)  # polling the container's log, bounded by the deadline
        raise NotReady(f"container {cid[:12]} did not log {line!r}: {text[-400:]}")


def _name(attrs: Attrs) -> str:
    return str(attrs["Name"]).lstrip("/")


def _index(name: str) -> int:
    return int(name.rsplit("-", 1)[1])
