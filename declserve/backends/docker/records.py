"""Project-wide records kept on the Docker engine itself, so every runner sees them.

The lock is a container that is created (never started) under a fixed name: the engine refuses
a second container of that name, which makes taking the lock atomic; its labels say who holds
it. The apply history is one labelled volume per apply: cheap, listed with a label filter, and
living as long as the engine does.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import docker

from declserve.backends.docker.engine import engine_errors
from declserve.errors import Conflict, NotFound
from declserve.lock import LockInfo

LABEL_LOCK = "declserve.io/lock"
LABEL_HISTORY = "declserve.io/history"
LABEL_ENTRY = "declserve.io/entry"


class DockerRecords:
    def __init__(self, api: docker.APIClient, project: str, image: str) -> None:
        self.api = api
        self.project = project
        self.image = image

    @property
    def lock_name(self) -> str:
        return f"declserve-lock-{self.project}"

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
                self.api.create_container(
                    self.image,
                    name=self.lock_name,
                    labels=labels,
                    entrypoint=["true"],
                    command=[],
                    network_disabled=True,
                )
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

    def record(self, entry: dict[str, Any]) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        name = f"declserve-history-{self.project}-{stamp}-{uuid.uuid4().hex[:6]}"
        with engine_errors("record the apply in the history"):
            self.api.create_volume(
                name=name,
                labels={
                    LABEL_HISTORY: self.project,
                    LABEL_ENTRY: json.dumps(entry, sort_keys=True),
                },
            )

    def history(self) -> list[dict[str, Any]]:
        with engine_errors("read the apply history"):
            found = self.api.volumes(filters={"label": f"{LABEL_HISTORY}={self.project}"})
        entries = [json.loads(v["Labels"][LABEL_ENTRY]) for v in (found.get("Volumes") or [])]
        return sorted(entries, key=lambda e: (e.get("time", ""), e.get("id", "")))
