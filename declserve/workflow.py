"""The steps every command shares: load the project, open its backends, read live state, plan.

Plain functions over the core pieces so that the CLI stays a thin layer of flags and printing.
Servings go to the serving backend; inference-logging topics to Kafka, as resources of their
own that the servings logging to them depend on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import subprocess
from datetime import datetime, timezone
from typing import Any

from declserve import __version__
from declserve.apply import Outcome, Status
from declserve.backends import open_backend
from declserve.backends.base import Backend
from declserve.desired import DesiredServing, resolve_desired
from declserve.errors import DeclserveError, InputError, display_path
from declserve.lock import LockInfo
from declserve.live import LiveState
from declserve.loader import LoadedProject, load_project
from declserve.plan import Action, DesiredResource, Plan, ResourceChange, make_plan
from declserve.topics.kafka import KafkaTopics, TopicSettings


def git_commit(directory: Path) -> str | None:
    """The commit of the spec repository, with `+dirty` when files changed; None outside Git."""
    try:
        head = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(directory), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


class PlanRefused(DeclserveError):
    """The specs ask for something the live systems cannot do (a missing topic, fewer partitions)."""


@dataclass
class Workspace:
    project: LoadedProject
    backend: Backend
    desired: dict[str, DesiredServing]
    topics: KafkaTopics | None

    @classmethod
    def open(cls, directory: Path) -> "Workspace":
        project = load_project(directory)
        desired = {d.name: d for d in resolve_desired(project)}
        settings = TopicSettings.from_project(project.project)
        topics = KafkaTopics(settings) if settings is not None else None
        return cls(project, open_backend(project), desired, topics)

    def observe(self) -> LiveState:
        """Kafka first: when it is unreachable nothing else is worth reading."""
        topics = self.topics.observe() if self.topics is not None else {}
        live = self.backend.observe(set(self.desired))
        return dataclasses.replace(live, topics=topics)

    def _desired_resources(self, live: LiveState) -> list[DesiredResource]:
        out: list[DesiredResource] = []
        made: set[str] = set()
        for d in self.desired.values():
            resource = self.backend.desired_resource(d)
            if d.topic is not None and d.creates_topic and self.topics is not None:
                if d.topic not in made:
                    out.append(DesiredResource("topic", d.topic, self.topics.settings.essence()))
                    made.add(d.topic)
                resource = dataclasses.replace(resource, depends_on=(f"topic.{d.topic}",))
            elif d.topic is not None and d.topic not in live.topics:
                raise PlanRefused(
                    f"{display_path(d.source)}: spec.inferenceLogging.topic: topic {d.topic!r} "
                    f"does not exist on Kafka at {self.topics.settings.servers if self.topics else '?'}"
                )
            out.append(resource)
        self._check_topic_changes(out, live)
        return out

    def _check_topic_changes(self, resources: list[DesiredResource], live: LiveState) -> None:
        doc = self.project.project_doc
        for r in resources:
            have = live.topics.get(r.name) if r.kind == "topic" else None
            if have is None:
                continue
            if have.essence.get("partitions", 0) > r.essence["partitions"]:
                raise PlanRefused(
                    doc.problem(("spec", "kafka", "partitions"),
                                f"topic {r.name!r} has {have.essence['partitions']} partitions and "
                                f"Kafka cannot remove partitions; the spec asks for {r.essence['partitions']}").format()
                )
            if have.essence.get("replicationFactor") != r.essence["replicationFactor"]:
                raise PlanRefused(
                    doc.problem(("spec", "kafka", "replicationFactor"),
                                f"topic {r.name!r} has replication factor {have.essence.get('replicationFactor')}; "
                                "changing it needs a partition reassignment, which declserve does not do").format()
                )

    def plan(
        self,
        live: LiveState,
        *,
        prune: bool = False,
        delete_topics: bool = False,
        targets: frozenset[str] | None = None,
        allow_empty: bool = False,
    ) -> Plan:
        if targets:
            unknown = sorted(t for t in targets if t not in self.desired and t not in live.servings)
            if unknown:
                raise InputError.one(f"no serving named {', '.join(map(repr, unknown))} in the specs "
                                     "or on the backend", field="--target")
        return make_plan(
            project=self.project.name,
            backend=self.backend.identity(),
            desired=self._desired_resources(live),
            live=live,
            replace_fields=self.backend.replace_fields,
            prune=prune,
            delete_topics=delete_topics,
            pinned_versions={n: d.version for n, d in self.desired.items()},
            targets=targets or None,
            allow_empty=allow_empty,
        )

    def record(self, plan: Plan, outcomes: list[Outcome], operation: str, lock: LockInfo) -> dict[str, Any]:
        """Leave a trace of an apply on the backend; returns the entry."""
        failed = any(o.status is not Status.DONE for o in outcomes)
        s = plan.summary
        entry = {
            "id": lock.id,
            # microseconds: entries made within one second must still sort in order
            "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "user": lock.who,
            "host": lock.host,
            "operation": operation,
            "commit": git_commit(self.project.directory),
            "summary": {"add": s.add, "change": s.change, "destroy": s.destroy},
            "outcome": "failed" if failed else "succeeded",
            "changes": [{"address": o.address, "action": o.action.value, "status": o.status.value} for o in outcomes],
            "declserve_version": __version__,
        }
        self.backend.record_history(entry)
        return entry

    def runner(self, live: LiveState) -> Callable[[ResourceChange, Callable[[str], None]], None]:
        """The function the executor calls for one change."""

        def run(change: ResourceChange, say: Callable[[str], None]) -> None:
            if change.kind == "topic":
                self._run_topic(change, live, say)
                return
            self.backend.apply_change(
                change, self.desired.get(change.name), live.servings.get(change.name), say
            )

        return run

    def _run_topic(self, change: ResourceChange, live: LiveState, say: Callable[[str], None]) -> None:
        assert self.topics is not None
        if change.action is Action.DELETE:
            say(f"deleting topic {change.name}")
            self.topics.delete(change.name)
            return
        after = self.topics.settings.essence()
        before = live.topics.get(change.name)
        if before is None:
            say(f"creating topic {change.name}")
            self.topics.create(change.name, after)
        else:
            say(f"updating topic {change.name}")
            self.topics.update(change.name, before.essence, after)
