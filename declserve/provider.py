"""The one shape of everything declserve manages: a provider per kind of resource.

A provider observes what the project has of its kind, turns the desired servings into
desired resources (pure), checks rules of its own against the live state (pure), plans the
steps of one change (pure, the `Planner` half that the plan engine consults), executes those
steps and waits until they took effect. A serving backend is a provider of the kind `serving`
that also keeps the project's records (lock, history, protection marks), reads logs and
adopts objects made by hand. Nothing in the core names a concrete provider: they are found
through `declserve.providers` by name.

The observed status a provider attaches to a live resource (`LiveResource.observed`) is read
by `status` only; these keys are understood there:

    endpoints       list[str]  the addresses clients on this machine use
    innerEndpoints  list[str]  the addresses inside the backend's own network (a Service's
                               in-cluster name), where they differ
    servedVersions  list[int]  model versions the servers report AVAILABLE
    servedName      str        the name the servers serve the model under, where it is not
                               the model's own
    ready           int        members (replicas, pods) ready to answer
    members         list[dict] each with name, state and, where known, endpoint and
                               servedVersions; shown with `status --verbose`
    records         dict       inference records: `produced` and `failed` (reason → count), and
                               `refused`: requests too large to log, answered 413
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from declserve.desired import DesiredServing
from declserve.errors import DeclserveError
from declserve.live import LiveResource, LiveState
from declserve.lock import LockInfo
from declserve.plan import DesiredResource, Planner, ResourceChange


class Interrupted(DeclserveError):
    """Apply was interrupted (Ctrl-C) between two steps of a change."""


@dataclass(frozen=True)
class ApplyContext:
    """What a provider's `execute` may do besides its own work: report, and notice a stop."""

    say: Callable[[str], None]
    stopping: Callable[[], bool] = lambda: False

    def checkpoint(self) -> None:
        """Between two steps: stop here when the user asked apply to stop."""
        if self.stopping():
            raise Interrupted("interrupted before its next step")


@dataclass(frozen=True)
class Wanted:
    """A desired resource and the serving spec it came from, if any, for `execute`."""

    resource: DesiredResource
    serving: DesiredServing | None = None
    required_by: tuple[str, ...] = field(default=())  # addresses that depend on this one


class Provider(Planner, Protocol):
    def observe(self, names: frozenset[str]) -> LiveState:
        """What the project has of this kind; objects in the way of `names` become blockers."""
        ...

    def desired(self, servings: Sequence[DesiredServing]) -> list[Wanted]:
        """The desired resources of this kind for these servings (pure)."""
        ...

    def check(self, servings: Sequence[DesiredServing], live: LiveState) -> list[str]:
        """Sentences saying why the live systems cannot do what the specs ask (pure)."""
        ...

    def execute(self, change: ResourceChange, wanted: Wanted | None, ctx: ApplyContext) -> None:
        """Carry out exactly the change's steps, each waited for; idempotent."""
        ...


@dataclass(frozen=True)
class Adoption:
    """Objects made by hand that `declserve import` can take over, and how."""

    name: str
    document: dict[str, Any]  # the Serving document that describes them
    preview: tuple[str, ...]  # lines saying what adopting will create and remove
    adopt: Callable[[DesiredServing, ApplyContext], None]


@runtime_checkable
class ManifestWriter(Protocol):
    """A backend whose changes are documents it sends whole (`plan --manifests` writes them),
    so that another tool can be given exactly what apply would send."""

    def manifests(self, desired: DesiredServing, /) -> dict[str, dict[str, Any]]:
        """The documents apply writes for this serving, by a name unique within it (its kind)."""
        ...


class ServingBackend(Provider, Protocol):
    def identity(self) -> str:
        """Which engine or cluster this is, for plan files and messages."""
        ...

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        """Take the project lock atomically; the holder's info when it is taken already."""
        ...

    def unlock(self, lock_id: str) -> bool: ...

    def read_lock(self) -> LockInfo | None: ...

    def record_history(self, entry: dict[str, Any], keep: int) -> None:
        """Add an entry to the project's history, keeping at most the newest `keep`."""
        ...

    def history(self) -> list[dict[str, Any]]: ...

    def unprotect(self, name: str) -> bool:
        """Remove a live serving's protection mark; whether it had one."""
        ...

    def details(self, live: LiveResource) -> dict[str, Any]:
        """More observed status for `status` alone: what costs a request to read (counters)."""
        ...

    def logs(self, name: str, tail: int, follow: bool) -> Iterator[tuple[str, str]]:
        """(member, line) of each member's recent log; with `follow`, until interrupted."""
        ...

    def find_adoption(self, name: str) -> Adoption | None:
        """Objects named `name` made by hand, ready to be adopted; None when there are none."""
        ...
