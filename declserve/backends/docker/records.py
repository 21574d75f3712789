"""Project-wide records kept on the Docker engine itself, so every runner sees them.

The lock is a container that is created (never started) under a fixed name: the engine refuses
a second container of that name, which makes taking the lock atomic; its labels say who holds
it. The apply history is one JSON-lines file in a volume that a never-started records container
holds: `docker volume prune` (with or without `-a` or a label filter) removes only volumes no
container uses, so housekeeping keeps it. Entries are written through the engine's archive
API, under the project lock, and the oldest are dropped past the retention the caller gives.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from typing import Any

import docker

from declserve.backends.docker.engine import engine_errors
from declserve.errors import Conflict, NotFound
from declserve.lock import LockInfo

LABEL_LOCK = "declserve.io/lock"
LABEL_HISTORY = "declserve.io/history"
LABEL_ENTRY = "declserve.io/entry"  # history of earlier versions: one labelled volume per apply
LABEL_ROLE = "declserve.io/role"
HISTORY_DIR = "/history"
HISTORY_FILE = "history.jsonl"
DEFAULT_KEEP = 100


class DockerRecords:
    def __init__(self, api: docker.APIClient, project: str, image: str) -> None:
        self.api = api
        self.project = project
        self.image = image

    @property
    def lock_name(self) -> str:
        return f"declserve-lock-{self.project}"

    @property
    def store_name(self) -> str:
        return f"declserve-records-{self.project}"

    # ---- the lock ------------------------------------------------------------------------
    def read_lock(self) -> LockInfo | None:
        try:
            with engine_errors("read the project lock"):
                attrs = self.api.inspect_container(self.lock_name)
        except NotFound:
            return None
        return LockInfo(**json.loads(attrs["Config"]["Labels"][LABEL_LOCK]))

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        labels = {"declserve.io/project": self.project, LABEL_LOCK: json.dumps(info.to_dict())}
        try:
            with engine_errors("take the project lock"):
                self.api.create_container(self.image, name=self.lock_name, labels=labels,
                                          entrypoint=["true"], command=[], network_disabled=True)
            return None
        except Conflict:
            pass  # another run holds it
        holder = self.read_lock()
        return holder or LockInfo("unknown", "?", "?", "?", 0, "?", "?")

    def unlock(self, lock_id: str) -> bool:
        holder = self.read_lock()
        if holder is None or holder.id != lock_id:
            return False
        try:
            with engine_errors("remove the project lock"):
                self.api.remove_container(self.lock_name, force=True)
        except NotFound:
            return False
        return True

    # ---- the history ---------------------------------------------------------------------
    def _store(self) -> str:
        """The records container, made (never started) with its volume when missing."""
        try:
            with engine_errors("find the history store"):
                return str(self.api.inspect_container(self.store_name)["Id"])
        except NotFound:
            pass
        labels = {"declserve.io/project": self.project, LABEL_ROLE: "records",
                  LABEL_HISTORY: self.project}
        with engine_errors("create the history store"):
            self.api.create_volume(name=self.store_name, labels=labels)
            host = self.api.create_host_config(binds={self.store_name: {"bind": HISTORY_DIR,
                                                                       "mode": "rw"}})
            made = self.api.create_container(self.image, name=self.store_name, labels=labels,
                                             entrypoint=["true"], command=[], host_config=host,
                                             network_disabled=True)
        return str(made["Id"])

    def _read_file(self, cid: str) -> list[dict[str, Any]]:
        try:
            with engine_errors("read the apply history"):
                stream, _ = self.api.get_archive(cid, f"{HISTORY_DIR}/{HISTORY_FILE}")
                raw = b"".join(stream)
        except NotFound:
            return []
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            member = tar.extractfile(HISTORY_FILE)
            text = member.read().decode() if member else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def record(self, entry: dict[str, Any], keep: int = DEFAULT_KEEP) -> None:
        cid = self._store()
        entries = (self._read_file(cid) + [entry])[-max(1, keep):]
        body = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(HISTORY_FILE)
            info.size, info.mtime, info.mode = len(body), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(body))
        with engine_errors("record the apply in the history"):
            self.api.put_archive(cid, HISTORY_DIR, buffer.getvalue())

    def _legacy(self) -> list[dict[str, Any]]:
        with engine_errors("read the apply history"):
            found = self.api.volumes(filters={"label": f"{LABEL_HISTORY}={self.project}"})
        return [json.loads(v["Labels"][LABEL_ENTRY]) for v in (found.get("Volumes") or [])
                if LABEL_ENTRY in (v.get("Labels") or {})]

    def history(self) -> list[dict[str, Any]]:
        try:
            with engine_errors("find the history store"):
                cid = str(self.api.inspect_container(self.store_name)["Id"])
            entries = self._read_file(cid)
        except NotFound:
            entries = []
        entries += self._legacy()
        return sorted(entries, key=lambda e: (e.get("time", ""), e.get("id", "")))
