"""The normalized live view every provider returns: what really exists, in the plan engine's terms.

A provider reads its objects and reduces each to a `LiveResource`: an *essence* (the same nested
dict of fields it makes from a desired spec, so that the plan can compare the two without
knowing the provider), a health verdict, and an observed status that people read (`status`)
and the diff never sees. What a provider needs for itself to plan the steps of a change (its
members, their own fields) goes into `detail`, which the core passes back without reading.
Nothing here talks to a server.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Health(StrEnum):
    READY = "ready"
    PROGRESSING = "progressing"
    DEGRADED = "degraded"


@dataclass(frozen=True)
class HealthStatus:
    state: Health = Health.READY
    reason: str = ""

    @classmethod
    def ready(cls) -> HealthStatus:
        return cls(Health.READY)

    @classmethod
    def degraded(cls, reason: str) -> HealthStatus:
        return cls(Health.DEGRADED, reason)

    @classmethod
    def progressing(cls, reason: str) -> HealthStatus:
        return cls(Health.PROGRESSING, reason)


@dataclass(frozen=True)
class LiveResource:
    """One managed resource as it really is.

    `managed` is False for objects the project may use but does not own (an existing Kafka
    topic, say): they are never deleted. `revision` is the provider's own digest of the
    objects behind the resource (ids, generations), so that a saved plan notices a recreate
    that left the essence equal.
    """

    kind: str
    name: str
    essence: dict[str, Any]
    health: HealthStatus = field(default_factory=HealthStatus)
    observed: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    managed: bool = True
    protected: bool = False
    revision: str = ""
    # Who last changed an essence field that someone other than declserve set, where the
    # backend records it (Kubernetes' managedFields): path → "kubectl-edit at 2026-…Z".
    changed_by: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.kind}.{self.name}"


@dataclass(frozen=True)
class Blocker:
    """An object in the way of a managed one (same name, not ours)."""

    object_name: str
    resource: str
    reason: str


@dataclass(frozen=True)
class LiveState:
    resources: dict[str, LiveResource] = field(default_factory=dict)  # by address
    blockers: tuple[Blocker, ...] = ()
    unknown: dict[str, str] = field(default_factory=dict)  # kind → why it could not be read

    def of_kind(self, kind: str) -> dict[str, LiveResource]:
        return {r.name: r for r in self.resources.values() if r.kind == kind}

    def get(self, address: str) -> LiveResource | None:
        return self.resources.get(address)

    def merged(self, other: LiveState) -> LiveState:
        return LiveState(
            {**self.resources, **other.resources},
            self.blockers + other.blockers,
            {**self.unknown, **other.unknown},
        )

    def fingerprint(self) -> str:
        """A digest of everything a plan is made from; any live change alters it.

        Health enters by its state only: a reason's wording (a timing, a count) must not make
        a saved plan stale by itself. Resources the project does not own (other teams' topics
        on a shared cluster) are left out: their changes must not make a plan stale.
        """
        doc = {
            address: [r.essence, r.revision, r.health.state.value, r.protected]
            for address, r in sorted(self.resources.items())
            if r.managed
        }
        text = json.dumps(doc, sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def flatten(essence: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` → `{"a.b": 1}`; lists stay whole values, since they change as one."""
    out: dict[str, Any] = {}
    for key, value in essence.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(flatten(value, path))  # an empty mapping flattens to nothing
        else:
            out[path] = value
    return out
