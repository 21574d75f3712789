"""The normalized live view a backend returns: what really runs, in the plan engine's terms.

A backend reads its objects and reduces each to an *essence*: the same nested dict of fields
that it makes from a desired spec, so that plan can compare the two without knowing the
backend. Serving-wide fields (the version in the model config file) sit on the serving;
per-replica fields (image, limits, running) on each replica. Nothing here talks to a server.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LiveReplica:
    name: str
    id: str
    index: int | None
    running: bool
    status: str
    essence: dict[str, Any]
    endpoint: str | None = None
    served_versions: tuple[int, ...] | None = None  # AVAILABLE versions; None when unknown


@dataclass(frozen=True)
class LiveServing:
    name: str
    essence: dict[str, Any]
    replicas: tuple[LiveReplica, ...]
    proxy: LiveReplica | None = None  # the inference-logging proxy, where the backend has one

    @property
    def running_count(self) -> int:
        return sum(1 for r in self.replicas if r.running)


@dataclass(frozen=True)
class LiveTopic:
    name: str
    essence: dict[str, Any]
    managed: bool


@dataclass(frozen=True)
class Blocker:
    """An object in the way of a managed one (same name, not ours)."""

    object_name: str
    serving: str
    reason: str


@dataclass(frozen=True)
class LiveState:
    servings: dict[str, LiveServing] = field(default_factory=dict)
    topics: dict[str, LiveTopic] = field(default_factory=dict)
    blockers: tuple[Blocker, ...] = ()

    def fingerprint(self) -> str:
        """A digest of everything the plan was made from; any live change alters it."""
        doc = {
            "servings": {
                name: {
                    "essence": s.essence,
                    "replicas": sorted(
                        [r.name, r.id, r.running, r.essence] for r in s.replicas
                    ),
                }
                for name, s in sorted(self.servings.items())
            },
            "topics": {n: t.essence for n, t in sorted(self.topics.items())},
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
