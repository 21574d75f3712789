"""The project's records on the cluster: the lock as a Lease, history as labelled ConfigMaps.

The lock is a `coordination.k8s.io` Lease created by name (creation is atomic: a second apply
gets 409 and reads who holds it). While apply runs, a thread renews it; a holder that died
stops renewing, so its lock shows as stale with the age of its last renewal. The history is
one small ConfigMap per apply, labelled with the project, the oldest removed beyond `keep`.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from declserve.backends.kubernetes.client import Kube
from declserve.errors import Conflict, NotFound
from declserve.lock import LockInfo

LEASE_SECONDS = 60
RENEW_EVERY = 15.0
LABEL_HISTORY = "declserve.io/history-of"
ANN_LOCK = "declserve.io/lock"
HISTORY_KEY = "entry.json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _age(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (datetime.now(UTC) - then).total_seconds()


class KubernetesRecords:
    def __init__(self, kube: Kube, project: str) -> None:
        self.kube = kube
        self.project = project
        self.lease = f"declserve-lock-{project}"
        self._renewing: dict[str, threading.Event] = {}

    # ---- the lock ---------------------------------------------------------------------------
    def try_lock(self, info: LockInfo) -> LockInfo | None:
        now = _now()
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.lease,
                "labels": {"declserve.io/lock-of": self.project},
                "annotations": {ANN_LOCK: json.dumps(info.to_dict(), sort_keys=True)},
            },
            "spec": {
                "holderIdentity": info.id,
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": now,
                "renewTime": now,
            },
        }
        try:
            self.kube.create("Lease", body)
        except Conflict:
            held = self._read()
            if held is None:
                return self.try_lock(info)  # released between our create and our read
            return held
        stop = threading.Event()
        self._renewing[info.id] = stop
        threading.Thread(target=self._renew, args=(info.id, stop), daemon=True).start()
        return None

    def _renew(self, lock_id: str, stop: threading.Event) -> None:
        while not stop.wait(RENEW_EVERY):
            try:
                lease = self.kube.get("Lease", self.lease)
                if lease is None or lease["spec"].get("holderIdentity") != lock_id:
                    return
                lease["spec"]["renewTime"] = _now()
                self.kube.replace("Lease", lease)
            except Exception:  # noqa: BLE001 - a missed renewal shows as age, apply goes on
                continue

    def _read(self) -> LockInfo | None:
        lease = self.kube.get("Lease", self.lease)
        if lease is None:
            return None
        raw = (lease["metadata"].get("annotations") or {}).get(ANN_LOCK, "{}")
        try:
            doc: dict[str, Any] = json.loads(raw)
            info = LockInfo(**doc)
        except (TypeError, ValueError):
            holder = lease["spec"].get("holderIdentity") or "unknown"
            info = LockInfo(holder, "unknown", "unknown", "unknown", 0, "", "")
        age = _age(lease["spec"].get("renewTime"))
        duration = lease["spec"].get("leaseDurationSeconds") or LEASE_SECONDS
        if age is not None and age > duration:
            info = LockInfo(
                info.id,
                f"{info.operation}; STALE: not renewed for {age:.0f}s, its holder looks dead",
                info.who, info.host, info.pid, info.command, info.since,
            )
        return info

    def read_lock(self) -> LockInfo | None:
        return self._read()

    def unlock(self, lock_id: str) -> bool:
        stop = self._renewing.pop(lock_id, None)
        if stop is not None:
            stop.set()
        lease = self.kube.get("Lease", self.lease)
        if lease is None or lease["spec"].get("holderIdentity") != lock_id:
            return False
        meta = lease["metadata"]
        precondition = {"preconditions": {"uid": meta["uid"],
                                          "resourceVersion": meta["resourceVersion"]}}
        try:
            return self.kube.delete("Lease", self.lease, precondition)
        except Conflict:
            return False  # renewed or taken in between: not ours to delete any more

    # ---- history ----------------------------------------------------------------------------
    def record(self, entry: dict[str, Any], keep: int) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"declserve-history-{self.project}-{stamp}-{uuid.uuid4().hex[:4]}",
                "labels": {LABEL_HISTORY: self.project},
                "annotations": {"declserve.io/recorded": stamp},
            },
            "data": {HISTORY_KEY: json.dumps(entry, sort_keys=True)},
        }
        self.kube.create("ConfigMap", body)
        for old in self._entries()[:-keep] if keep > 0 else []:
            try:
                self.kube.delete("ConfigMap", old["metadata"]["name"])
            except NotFound:
                pass

    def _entries(self) -> list[dict[str, Any]]:
        found = self.kube.list("ConfigMap", f"{LABEL_HISTORY}={self.project}")
        return sorted(found, key=lambda c: (c["metadata"].get("annotations") or {}).get(
            "declserve.io/recorded", ""))

    def history(self) -> list[dict[str, Any]]:
        out = []
        for c in self._entries():
            try:
                out.append(json.loads((c.get("data") or {}).get(HISTORY_KEY, "")))
            except ValueError:
                continue
        return out
