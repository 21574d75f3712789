"""The Docker backend: a serving is `instances` TensorFlow Serving containers on one engine.

Each container mounts the model directory read-only and a per-serving config directory holding
the model config file declserve writes; TensorFlow Serving polls that file, so a version bump
is a file write that every replica reloads in place, old version answering until the new one is
AVAILABLE. Limits change with `docker update`; anything else is a rolling recreate (new
container ready before the old one goes). Only this module talks to the Docker engine.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import DeviceRequest, Mount

from declserve import spec as S
from declserve.backends import docker_essence as E
from declserve.backends import docker_proxy as P
from declserve.backends import tfserving as tfs
from declserve.backends.base import Say
from declserve.backends.docker_records import DockerRecords
from declserve.lock import LockInfo
from declserve.desired import DesiredServing
from declserve.errors import BackendUnavailable, Conflict, NotReady, Rejected
from declserve.live import Blocker, LiveReplica, LiveServing, LiveState
from declserve.plan import Action, DesiredResource, ResourceChange, kept_and_extra, field_diff

IN_PLACE = frozenset({"resources.cpu", "resources.memory", "running"})
DEFAULT_STATE_ROOT = "/var/lib/declserve"
_POLL = 0.2


@dataclass(frozen=True)
class DockerSettings:
    project: str
    image: str
    bind_address: str
    restart_policy: str
    state_root: Path
    poll_seconds: int
    ready_timeout: float
    pull_policy: str
    base_url: str | None = None
    proxy_image: str = "declserve/logproxy:latest"
    kafka_bootstrap: str = ""

    @classmethod
    def from_project(cls, project: S.Project, image_override: str | None = None) -> "DockerSettings":
        b = project.spec.backend
        assert isinstance(b, S.DockerBackend)
        return cls(
            project=project.name,
            image=image_override or b.image,
            bind_address=b.bind_address,
            restart_policy=b.restart_policy,
            state_root=Path(b.state_dir or DEFAULT_STATE_ROOT) / project.name,
            poll_seconds=b.poll_seconds,
            ready_timeout=float(b.ready_timeout_seconds),
            pull_policy=b.pull_policy,
            base_url=b.base_url,
            proxy_image=b.logging_proxy_image,
            kafka_bootstrap=",".join(project.spec.kafka.bootstrap_servers) if project.spec.kafka else "",
        )


def connect(base_url: str | None) -> docker.DockerClient:
    try:
        # Creating the client already asks the engine for its API version, so an engine that
        # is down fails here; no separate ping.
        return docker.DockerClient(base_url=base_url, version="auto") if base_url else docker.from_env(version="auto")
    except (docker.errors.DockerException, OSError) as exc:
        where = base_url or os.environ.get("DOCKER_HOST") or "the local socket"
        raise BackendUnavailable(
            f"cannot reach the Docker engine at {where}: is dockerd running?"
        ) from exc


class DockerBackend:
    kind = "docker"
    replace_fields = frozenset({"model.name"})

    def __init__(self, settings: DockerSettings, client: docker.DockerClient | None = None) -> None:
        self.settings = settings
        self.client = client or connect(settings.base_url)
        self.api = self.client.api

    # ---- naming -------------------------------------------------------------------------
    def identity(self) -> str:
        return f"docker:{self.api.base_url}"

    def container_name(self, serving: str, index: int) -> str:
        return f"{self.settings.project}-{serving}-{index}"

    def config_dir(self, serving: str) -> Path:
        return self.settings.state_root / serving

    @property
    def _host(self) -> str:
        bind = self.settings.bind_address
        return "127.0.0.1" if bind in ("0.0.0.0", "") else bind

    # ---- desired (pure) -----------------------------------------------------------------
    def desired_resource(self, desired: DesiredServing) -> DesiredResource:
        s = self.settings
        essence = E.desired_serving_essence(desired)
        logging = desired.spec.inference_logging
        proxy = P.desired_logging(desired.topic, logging.mode.value if logging else None, s.proxy_image,
                                  desired.spec.state is S.DesiredState.RUNNING)
        if proxy is not None:
            essence["logging"] = proxy
        return DesiredResource(
            kind="serving",
            name=desired.name,
            essence=essence,
            replica_essence=E.desired_replica_essence(desired, s.image, s.restart_policy, s.poll_seconds),
            instances=desired.spec.instances,
        )

    # ---- reading ------------------------------------------------------------------------
    def _inspect(self, cid: str) -> dict[str, Any] | None:
        try:
            return self.api.inspect_container(cid)
        except docker.errors.NotFound:
            return None  # removed between list and inspect

    def _inspect_all(self, ids: list[str]) -> list[dict[str, Any]]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return [a for a in pool.map(self._inspect, ids) if a is not None]

    def _list(self) -> list[dict[str, Any]]:
        try:
            return self.api.containers(all=True)
        except (docker.errors.DockerException, OSError) as exc:
            raise BackendUnavailable(f"cannot list containers on the Docker engine: {exc}") from exc

    def _is_ours(self, labels: dict[str, str]) -> bool:
        return labels.get(E.LABEL_PROJECT) == self.settings.project and E.LABEL_SERVING in labels

    def _blockers(self, raw: list[dict[str, Any]], names: set[str]) -> list[Blocker]:
        pattern = re.compile(rf"^/?{re.escape(self.settings.project)}-(.+)-(\d+(-next)?|proxy)$")
        out = []
        for c in raw:
            if self._is_ours(c.get("Labels") or {}):
                continue
            for n in c.get("Names") or ():
                m = pattern.match(n)
                if m and m.group(1) in names:
                    owner = (c.get("Labels") or {}).get(E.LABEL_PROJECT)
                    why = f"managed by project {owner!r}" if owner else "not managed by declserve"
                    out.append(Blocker(n.lstrip("/"), m.group(1), why))
        return out

    def _endpoint(self, attrs: dict[str, Any]) -> str | None:
        ports = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{tfs.REST_PORT}/tcp")
        if not ports:
            return None
        return f"http://{self._host}:{ports[0]['HostPort']}"

    def served_versions(self, endpoint: str | None, model: str | None, timeout: float = 1.0) -> tuple[int, ...] | None:
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

    def _read_container(self, cid: str) -> tuple[dict[str, Any], tuple[int, ...] | None] | None:
        """One container's inspect output and, for a running replica, what its server serves.

        Both in one worker so that the engine's answers and the servers' answers overlap.
        """
        attrs = self._inspect(cid)
        if attrs is None:
            return None
        labels = attrs["Config"]["Labels"]
        if labels.get(E.LABEL_ROLE) == P.ROLE_PROXY or not attrs["State"].get("Running"):
            return attrs, None
        return attrs, self.served_versions(self._endpoint(attrs), labels.get(E.LABEL_MODEL))

    def observe(self, names: set[str]) -> LiveState:
        raw = self._list()
        ours = [c["Id"] for c in raw if self._is_ours(c.get("Labels") or {})]
        # Few workers: reading is bound by CPU here (JSON parsing, and the servers answering on
        # the same cores), so more threads only add switching; measured in bench/plan.py.
        with ThreadPoolExecutor(max_workers=4) as pool:
            read = [r for r in pool.map(self._read_container, ours) if r is not None]
        by_serving: dict[str, list[tuple[dict[str, Any], tuple[int, ...] | None]]] = {}
        proxies: dict[str, dict[str, Any]] = {}
        for attrs, served in read:
            labels = attrs["Config"]["Labels"]
            replicas_of = by_serving.setdefault(labels[E.LABEL_SERVING], [])
            if labels.get(E.LABEL_ROLE) == P.ROLE_PROXY:
                proxies[labels[E.LABEL_SERVING]] = attrs
            else:
                replicas_of.append((attrs, served))
        servings = {}
        for serving, containers in by_serving.items():
            proxy = proxies.get(serving)
            dirs = [E.config_dir_of(a) for a, _ in containers] + ([E.config_dir_of(proxy)] if proxy else [])
            config_dir = next((d for d in dirs if d), None)
            essence = E.observed_serving_essence(config_dir)
            logging = P.observed_logging(proxy, config_dir)
            if logging is not None:
                essence["logging"] = logging
            replicas = tuple(sorted((self._replica(a, served) for a, served in containers), key=lambda r: r.name))
            if logging is not None:
                running = sorted(r.endpoint for r in replicas if r.running and r.endpoint)
                logging["upstreamsCurrent"] = P.read_upstreams(config_dir) == running
            servings[serving] = LiveServing(serving, essence, replicas, proxy=self._proxy_replica(proxy))
        return LiveState(servings=servings, blockers=tuple(self._blockers(raw, names)))

    def _replica(self, attrs: dict[str, Any], served: tuple[int, ...] | None) -> LiveReplica:
        index = attrs["Config"]["Labels"].get(E.LABEL_INDEX, "")
        return LiveReplica(
            name=attrs["Name"].lstrip("/"),
            id=attrs["Id"],
            index=int(index) if index.isdigit() else None,
            running=bool(attrs["State"].get("Running")),
            status=attrs["State"].get("Status", "unknown"),
            essence=E.observed_replica_essence(attrs),
            endpoint=self._endpoint(attrs),
            served_versions=served,
        )

    def _proxy_replica(self, attrs: dict[str, Any] | None) -> LiveReplica | None:
        if attrs is None:
            return None
        directory = E.config_dir_of(attrs)
        endpoint = None
        if directory is not None:
            try:
                listen = json.loads((directory / P.PROXY_CONFIG).read_text())["listen"]
                endpoint = f"http://{self._host}:{listen.rsplit(':', 1)[1]}"
            except (OSError, ValueError, KeyError):
                endpoint = None
        running = bool(attrs["State"].get("Running"))
        return LiveReplica(attrs["Name"].lstrip("/"), attrs["Id"], None, running,
                           attrs["State"].get("Status", "unknown"), {}, endpoint if running else None)

    # ---- changing -----------------------------------------------------------------------
    def apply_change(
        self, change: ResourceChange, desired: DesiredServing | None, live: LiveServing | None, say: Say
    ) -> None:
        if change.action is Action.DELETE:
            self._delete(change.name, live, say)
            return
        assert desired is not None
        if change.action is Action.REPLACE and live is not None:
            self._delete(change.name, live, say)
            live = None
        self._converge(desired, live, say)

    def _delete(self, name: str, live: LiveServing | None, say: Say) -> None:
        if live is not None and live.proxy is not None:
            say(f"removing {live.proxy.name}")
            self._remove(live.proxy.id)
        for r in live.replicas if live else ():
            say(f"removing {r.name}")
            self._remove(r.id)
        shutil.rmtree(self.config_dir(name), ignore_errors=True)

    def _remove(self, cid: str) -> None:
        try:
            self.api.remove_container(cid, force=True)
        except docker.errors.NotFound:
            pass

    def _write_files(self, desired: DesiredServing) -> None:
        """Model config (and batching) files, each replaced atomically so a poll never reads half."""
        directory = self.config_dir(desired.name)
        directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(directory / tfs.MODEL_CONFIG, tfs.model_config_text(desired.spec.model.name, desired.version))
        mark = directory / E.PROTECTED_MARK
        if desired.spec.protected:
            mark.write_text("declserve: --prune and destroy keep this serving\n")
        elif mark.exists():
            mark.unlink()
        batching = directory / tfs.BATCHING_CONFIG
        if desired.spec.batching.enabled:
            _atomic_write(batching, tfs.batching_config_text(desired.spec.batching.parameters()))
        elif batching.exists():
            batching.unlink()

    def _converge(self, desired: DesiredServing, live: LiveServing | None, say: Say) -> None:
        res = self.desired_resource(desired)
        wanted = desired.spec.instances
        self._write_files(desired)
        kept, extra = kept_and_extra(live.replicas if live else (), wanted)
        slots: list[tuple[LiveReplica, int | None]] = []
        used: set[int] = set()
        for r in kept:
            own = r.index if r.index is not None and r.index < wanted and r.index not in used else None
            if own is not None:
                used.add(own)
            slots.append((r, own))
        free = [i for i in range(wanted) if i not in used]
        assert res.replica_essence is not None
        ready: list[str] = []
        for r, own in slots:
            paths = {p for p, _, _ in field_diff(r.essence, res.replica_essence)}
            if own is None:
                paths.add("index")  # a container started by hand: renumber it
            if not paths:
                ready.append(r.id)
            elif paths <= IN_PLACE:
                self._change_in_place(r, desired, paths, say)
                ready.append(r.id)
            else:
                index = own if own is not None else free.pop(0)
                say(f"recreating {r.name} ({', '.join(sorted(paths))})")
                ready.append(self._recreate(r, desired, res, index, say))
        for index in free:
            say(f"creating {self.container_name(desired.name, index)}")
            ready.append(self._create(desired, res, index, self.container_name(desired.name, index)))
        if desired.spec.state is S.DesiredState.RUNNING:
            self.wait_ready(desired, ready, say)
        self._converge_proxy(desired, live, ready, say)
        for r in extra:
            say(f"removing extra replica {r.name}")
            self._remove(r.id)

    def _converge_proxy(self, desired: DesiredServing, live: LiveServing | None, ready: list[str], say: Say) -> None:
        """Put the logging proxy in the state the spec asks for, pointing at the ready replicas."""
        directory = self.config_dir(desired.name)
        have = live.proxy if live else None
        logging = desired.spec.inference_logging
        if desired.topic is None or logging is None:
            if have is not None:
                say(f"removing {have.name} (no inference logging)")
                self._remove(have.id)
            P.remove_files(directory)
            return
        endpoints = [e for e in (self._endpoint(self.api.inspect_container(c)) for c in ready) if e]
        P.write_upstreams(directory, endpoints)
        before = (directory / P.PROXY_CONFIG).read_text() if (directory / P.PROXY_CONFIG).exists() else ""
        port = P.listen_port(directory, self.settings.bind_address)
        P.write_config(directory, serving=desired.name, model=desired.spec.model.name, topic=desired.topic,
                       mode=logging.mode.value, bootstrap=self.settings.kafka_bootstrap,
                       bind=self.settings.bind_address, port=port)
        changed = before != (directory / P.PROXY_CONFIG).read_text()
        running = desired.spec.state is S.DesiredState.RUNNING
        image_differs = have is not None and self.api.inspect_container(have.id)["Config"]["Image"] != self.settings.proxy_image
        if have is not None and (image_differs or changed):
            say(f"recreating {have.name}")
            self._remove(have.id)
            have = None
        if have is None:
            name = P.proxy_name(self.settings.project, desired.name)
            say(f"creating {name}")
            labels = {E.LABEL_MANAGED: E.MANAGER, E.LABEL_PROJECT: self.settings.project, E.LABEL_SERVING: desired.name}
            P.create(self.client, name=name, image=self.settings.proxy_image, labels=labels,
                     config_dir=directory, start=running)
        elif running and not have.running:
            say(f"starting {have.name}")
            self.api.start(have.id)
        elif not running and have.running:
            say(f"stopping {have.name}")
            self.api.stop(have.id, timeout=10)
        if running:
            P.wait_healthy(f"http://{self._host}:{port}", self.settings.ready_timeout)

    def _change_in_place(self, r: LiveReplica, desired: DesiredServing, paths: set[str], say: Say) -> None:
        container = self.client.containers.get(r.id)
        if paths & {"resources.cpu", "resources.memory"}:
            res = desired.spec.resources
            say(f"updating limits of {r.name}")
            # The SDK's update_container has no NanoCpus, and CPU quota would conflict with the
            # NanoCpus set at creation, so the engine's update endpoint is called directly.
            url = self.api._url("/containers/{0}/update", r.id)  # type: ignore[attr-defined]
            body = {
                "NanoCpus": int(res.cpu_cores * 10**9),
                "Memory": res.memory_bytes,
                "MemorySwap": res.memory_bytes,
            }
            try:
                self.api._result(self.api._post_json(url, data=body), True)  # type: ignore[attr-defined]
            except docker.errors.APIError as exc:
                raise Rejected(f"the Docker engine refused to change the limits of {r.name}: "
                               f"{exc.explanation}") from exc
        if "running" in paths:
            if desired.spec.state is S.DesiredState.RUNNING:
                say(f"starting {r.name}")
                container.start()
            else:
                say(f"stopping {r.name}")
                container.stop(timeout=10)

    def _recreate(self, r: LiveReplica, desired: DesiredServing, res: DesiredResource, index: int, say: Say) -> str:
        final = self.container_name(desired.name, index)
        temporary = final if r.name != final else f"{final}-next"
        for leftover in self._ids_named(temporary):
            if leftover != r.id:
                self._remove(leftover)  # from an apply killed mid-way
        new_id = self._create(desired, res, index, temporary)
        if desired.spec.state is S.DesiredState.RUNNING:
            self.wait_ready(desired, [new_id], say)
        self._remove(r.id)
        if temporary != final:
            self.api.rename(new_id, final)
        return new_id

    def _ids_named(self, name: str) -> list[str]:
        return [c["Id"] for c in self.api.containers(all=True, filters={"name": f"^/{name}$"})]

    def _labels(self, desired: DesiredServing, res: DesiredResource, index: int) -> dict[str, str]:
        user = dict(desired.serving.metadata.labels)
        assert res.replica_essence is not None and res.instances is not None
        return {
            **user,
            E.LABEL_MANAGED: E.MANAGER,
            E.LABEL_PROJECT: self.settings.project,
            E.LABEL_SERVING: desired.name,
            E.LABEL_INDEX: str(index),
            E.LABEL_MODEL: desired.spec.model.name,
            E.LABEL_USER_KEYS: ",".join(sorted(user)),
            E.LABEL_SPEC_HASH: E.spec_hash(res.essence, res.replica_essence, res.instances),
        }

    def _ensure_image(self) -> None:
        image = self.settings.image
        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        if self.settings.pull_policy == "never":
            raise Rejected(f"image {image} is not on the Docker engine and pullPolicy is 'never'")
        try:
            self.client.images.pull(image)
        except docker.errors.DockerException as exc:
            raise Rejected(f"image {image} is not on the Docker engine and could not be pulled") from exc

    def _create(self, desired: DesiredServing, res: DesiredResource, index: int, name: str) -> str:
        self._ensure_image()
        spec = desired.spec
        gpus = spec.resources.gpus
        policy: dict[str, Any] = {"Name": self.settings.restart_policy}
        if self.settings.restart_policy == "on-failure":
            policy["MaximumRetryCount"] = 5
        try:
            container = self.client.containers.create(
                self.settings.image,
                name=name,
                entrypoint=["tensorflow_model_server"],
                command=tfs.server_args(self.settings.poll_seconds, spec.batching.enabled),
                labels=self._labels(desired, res, index),
                mounts=[
                    Mount(f"{tfs.MODELS_MOUNT}/{spec.model.name}", str(desired.model_dir), type="bind", read_only=True),
                    Mount(tfs.CONFIG_DIR, str(self.config_dir(desired.name)), type="bind", read_only=True),
                ],
                # None: the engine picks a free host port (the SDK's stubs omit that case).
                ports={f"{tfs.REST_PORT}/tcp": (self.settings.bind_address, None)},  # type: ignore[dict-item]
                nano_cpus=int(spec.resources.cpu_cores * 10**9),
                mem_limit=spec.resources.memory_bytes,
                memswap_limit=spec.resources.memory_bytes,
                device_requests=[DeviceRequest(count=gpus, capabilities=[["gpu"]])] if gpus else None,
                restart_policy=policy,  # type: ignore[arg-type]
            )
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise Conflict(f"container name {name} is already in use by another container") from exc
            raise Rejected(f"the Docker engine refused to create {name}: {exc.explanation}") from exc
        if spec.state is S.DesiredState.RUNNING:
            try:
                container.start()
            except docker.errors.APIError as exc:
                raise Rejected(f"the Docker engine could not start {name}: {exc.explanation}") from exc
        return str(container.id)

    def wait_ready(self, desired: DesiredServing, ids: list[str], say: Say) -> None:
        """Every replica serves exactly the target version, or NotReady with the reason."""
        if not ids:
            return
        model, version = desired.spec.model.name, desired.version
        say(f"waiting for version {version} on {len(ids)} replica(s)")
        deadline = time.monotonic() + self.settings.ready_timeout
        pending = set(ids)
        last: dict[str, Any] = {}
        while pending:
            for cid in sorted(pending):
                attrs = self.api.inspect_container(cid)
                if not attrs["State"].get("Running"):
                    logs = self.api.logs(cid, tail=5).decode(errors="replace").strip()
                    raise NotReady(
                        f"{attrs['Name'].lstrip('/')} stopped ({attrs['State'].get('Status')}) "
                        f"before serving version {version}: {logs[-400:]}"
                    )
                served = self.served_versions(self._endpoint(attrs), model)
                last[cid] = served
                if served == (version,):
                    pending.discard(cid)
            if pending and time.monotonic() > deadline:
                detail = ", ".join(f"{cid[:12]} serves {last.get(cid)}" for cid in sorted(pending))
                raise NotReady(
                    f"serving {desired.name} did not serve version {version} within "
                    f"{self.settings.ready_timeout:.0f}s ({detail})"
                )
            if pending:
                time.sleep(_POLL)  # polling the server's own status, bounded by the deadline

    # ---- project records: lock, history, protection ---------------------------------------
    @property
    def records(self) -> DockerRecords:
        return DockerRecords(self.api, self.settings.project, self.settings.image)

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        self._ensure_image()  # the lock container is made from the serving image
        return self.records.try_lock(info)

    def unlock(self, lock_id: str) -> bool:
        return self.records.unlock(lock_id)

    def read_lock(self) -> LockInfo | None:
        return self.records.read_lock()

    def record_history(self, entry: dict[str, Any]) -> None:
        self.records.record(entry)

    def history(self) -> list[dict[str, Any]]:
        return self.records.history()

    def unprotect(self, name: str) -> bool:
        """Remove the protection mark of a live serving; whether it had one."""
        live = self.observe({name}).servings.get(name)
        if live is None:
            raise Rejected(f"serving {name!r} has no containers on the Docker engine")
        removed = False
        for r in live.replicas:
            attrs = self.api.inspect_container(r.id)
            directory = E.config_dir_of(attrs)
            mark = directory / E.PROTECTED_MARK if directory else None
            if mark is not None and mark.exists():
                mark.unlink()
                removed = True
        return removed

    # ---- adopting hand-made servings --------------------------------------------------------
    def find_unmanaged(self, name: str) -> list[dict[str, Any]]:
        """Containers named NAME or NAME-<n> running the serving image, not labelled by declserve."""
        pattern = re.compile(rf"^/{re.escape(name)}(-\d+)?$")
        ids = [
            c["Id"] for c in self._list()
            if any(pattern.match(n) for n in c.get("Names") or ())
            and E.LABEL_PROJECT not in (c.get("Labels") or {})
        ]
        found = [a for a in self._inspect_all(ids) if a["Config"].get("Image") == self.settings.image]
        return sorted(found, key=lambda a: a["Name"])

    def served_by(self, containers: list[dict[str, Any]], model: str) -> tuple[int, ...] | None:
        for attrs in containers:
            if attrs["State"].get("Running"):
                served = self.served_versions(self._endpoint(attrs), model)
                if served:
                    return served
        return None

    def remove_containers(self, ids: list[str]) -> None:
        for cid in ids:
            self._remove(cid)

    # ---- reading for humans -------------------------------------------------------------
    def logs(self, name: str, tail: int) -> list[tuple[str, str]]:
        live = self.observe({name}).servings.get(name)
        if live is None:
            raise Rejected(f"serving {name!r} has no containers on the Docker engine")
        return [
            (r.name, self.api.logs(r.id, tail=tail, timestamps=False).decode(errors="replace"))
            for r in live.replicas
        ]


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
