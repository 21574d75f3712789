"""The project lock: one apply at a time per project, held on the backend so every runner sees it.

This module describes the holder, waits (saying so once on stderr) and reads `--lock-timeout`
durations; the backend creates and removes the lock object atomically (on Docker a container
created by name). A lock left by a killed process is cleared with `declserve force-unlock ID`.
It never removes a lock it does not hold.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Protocol

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
    def mine(cls, operation: str) -> LockInfo:
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
            command=" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[
                :500
            ],
            since=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def describe(self) -> str:
        return f"lock {self.id} {self.holder()}"

    def holder(self) -> str:
        """Who holds it, without its id (which only the lock error shows)."""
        return (
            f"held by {self.who}@{self.host} (pid {self.pid}, {self.operation}) "
            f"since {self.since}: {self.command}"
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class LockHeld(DeclserveError):
    """Another run holds the lock (still, after `waited` seconds)."""

    def __init__(self, holder: LockInfo, waited: float = 0.0) -> None:
        self.holder = holder
        self.waited = waited
        after = f" after waiting {format_duration(waited)}" if waited else ""
        super().__init__(f"the project is locked{after}: {holder.describe()}")

    def hint(self, force_unlock: str) -> str:
        """What the user can do, given the force-unlock command line to paste."""
        return (
            "wait for it with --lock-timeout (such as --lock-timeout 5m), "
            f"or, if that run has died, remove the lock with: {force_unlock}"
        )


class Lockable(Protocol):
    def try_lock(self, info: LockInfo) -> LockInfo | None:
        """Take the lock atomically; the current holder when it is taken already."""

    def unlock(self, lock_id: str) -> bool:
        """Remove the lock if its id is `lock_id`; whether it was removed."""

    def read_lock(self) -> LockInfo | None: ...


def waiting_message(holder: LockInfo, timeout: float) -> str:
    return (
        f"declserve: the project is locked; waiting up to {format_duration(timeout)} "
        f"for {holder.describe()}"
    )


def _say_waiting(holder: LockInfo, timeout: float) -> None:
    print(waiting_message(holder, timeout), file=sys.stderr, flush=True)


@contextmanager
def project_lock(
    backend: Lockable,
    operation: str,
    timeout: float,
    *,
    on_wait: Callable[[LockInfo, float], None] = _say_waiting,
    poll: float = 0.5,
) -> Iterator[LockInfo]:
    """Hold the lock for the block, waiting up to `timeout` seconds for another holder.

    A run that waits says so once, when it starts waiting, so that a silent pause is never
    mistaken for a hang.
    """
    info = LockInfo.mine(operation)
    start = time.monotonic()
    waiting = False
    while True:
        holder = backend.try_lock(info)
        if holder is None:
            break
        waited = time.monotonic() - start
        if waited >= timeout:
            raise LockHeld(holder, waited if waiting else 0.0)
        if not waiting:
            on_wait(holder, timeout)
            waiting = True
        time.sleep(poll)  # another runner holds it; polled until the deadline
    try:
        yield info
    finally:
        backend.unlock(info.id)


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_PART = re.compile(f"({_NUMBER.pattern})(ms|h|m|s)")
MAX_TIMEOUT = 24 * 3600.0


def parse_duration(text: str) -> float:
    """A duration as Terraform's -lock-timeout and Go take them (`1h30m`, `90s`, `1.5m`,
    `500ms`), or plain seconds (`30`), in seconds."""
    spelled = text.strip()
    if _NUMBER.fullmatch(spelled):
        value = float(spelled)
    else:
        parts = _PART.findall(spelled)
        if not parts or "".join(number + unit for number, unit in parts) != spelled:
            raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h30m or 1.5m")
        value = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not 0 <= value <= MAX_TIMEOUT:
        raise ValueError(f"{text!r} must be between 0s and 24h")
    return value


def format_duration(seconds: float) -> str:
    """Seconds spelled as `parse_duration` reads them back: `1h30m`, `2m5s`, `0.5s`."""
    hours, rest = divmod(round(seconds, 3), 3600)
    minutes, secs = divmod(rest, 60)
    out = (f"{int(hours)}h" if hours else "") + (f"{int(minutes)}m" if minutes else "")
    if secs or not out:
        out += f"{secs:g}s"
    return out
