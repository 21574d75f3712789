"""The backend protocol: the one shape every serving backend has.

A backend turns a desired serving into its essence (pure), reads what the project runs into a
`LiveState`, carries out exactly one resource change (waiting until it is ready), and reads the
details `status` shows. The plan engine sees only essences and never imports a backend.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from declserve.desired import DesiredServing
from declserve.live import LiveServing, LiveState
from declserve.lock import LockInfo
from declserve.plan import DesiredResource, ResourceChange

Say = Callable[[str], None]


class Backend(Protocol):
    kind: str
    replace_fields: frozenset[str]

    def identity(self) -> str:
        """Which engine or cluster this is, for plan files and messages."""

    def desired_resource(self, desired: DesiredServing) -> DesiredResource:
        """The essence of a desired serving, in the same shape `observe` reads (pure)."""

    def observe(self, names: set[str]) -> LiveState:
        """Everything the project runs; objects in the way of `names` become blockers."""

    def apply_change(
        self,
        change: ResourceChange,
        desired: DesiredServing | None,
        live: LiveServing | None,
        say: Say,
    ) -> None:
        """Carry out one change and wait until the serving is ready; idempotent."""

    def logs(self, name: str, tail: int) -> list[tuple[str, str]]:
        """(replica, text) of each replica's recent log."""

    # The project's records on the backend: the lock, the apply history, protection marks.
    def try_lock(self, info: LockInfo) -> LockInfo | None:
        """Take the project lock atomically; the holder's info when it is taken already."""

    def unlock(self, lock_id: str) -> bool: ...

    def read_lock(self) -> LockInfo | None: ...

    def record_history(self, entry: dict[str, Any]) -> None: ...

    def history(self) -> list[dict[str, Any]]: ...

    def unprotect(self, name: str) -> bool:
        """Remove a live serving's protection mark; whether it had one."""
