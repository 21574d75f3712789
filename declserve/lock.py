"""The project lock: one apply at a time per project, held on the backend so every runner sees it.

This module describes the holder and waits; the backend creates and removes the lock object
atomically (on Docker a container created by name). A lock left by a killed process is cleared
with `declserve force-unlock ID`.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Iterator, Protocol

from declserve.errors import DeclserveError


@dataclass(frozen=True)
class LockInfo:
    id: str
    operation: str
    who: str
    host: str
    pid: int
    command: str
    since: str

    @classmethod
    def mine(cls, operation: str) -> "LockInfo":
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = str(os.getuid())
        return cls(
            id=str(uuid.uuid4()),
            operation=operation,
            who=who,
            host=socket.gethostname(),
            pid=os.getpid(),
            command=" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:500],
            since=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    def describe(self) -> str:
        return (f"lock {self.id} held by {self.who}@{self.host} (pid {self.pid}, "
                f"{self.operation}) since {self.since}: {self.command}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class LockHeld(DeclserveError):
    def __init__(self, holder: LockInfo) -> None:
        self.holder = holder
        super().__init__(f"the project is locked: {holder.describe()}")


class Lockable(Protocol):
    def try_lock(self, info: LockInfo) -> LockInfo | None:
        """Take the lock atomically; the current holder when it is taken already."""

    def unlock(self, lock_id: str) -> bool:
        """Remove the lock if its id is `lock_id`; whether it was removed."""

    def read_lock(self) -> LockInfo | None: ...


@contextmanager
def project_lock(backend: Lockable, operation: str, timeout: float) -> Iterator[LockInfo]:
    """Hold the lock for the block, waiting up to `timeout` seconds for another holder."""
    info = LockInfo.mine(operation)
    deadline = time.monotonic() + timeout
    while True:
        holder = backend.try_lock(info)
        if holder is None:
            break
        if time.monotonic() >= deadline:
            raise LockHeld(holder)
        time.sleep(0.5)  # another runner holds it; polled until the deadline
    try:
        yield info
    finally:
        backend.unlock(info.id)


def parse_duration(text: str) -> float:
    """`30s`, `5m`, `1h` or plain seconds, as Terraform's -lock-timeout takes them."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip()
    try:
        if text and text[-1] in units:
            value = float(text[:-1]) * units[text[-1]]
        else:
            value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h") from None
    if value < 0 or value > 24 * 3600:
        raise ValueError(f"{text!r} must be between 0s and 24h")
    return value
