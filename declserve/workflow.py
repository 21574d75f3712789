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

from declserve.backends import open_backend
from declserve.backends.base import Backend
from declserve.desired import DesiredServing, resolve_desired
from declserve.errors import DeclserveError, display_path
from declserve.live import LiveState
from declserve.loader import LoadedProject, load_project
from declserve.plan import Action, DesiredResource, Plan, ResourceChange, make_plan
from declserve.topics.kafka import KafkaTopics, TopicSettings


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

    def plan(self, live: LiveState, *, prune: bool = False, delete_topics: bool = False) -> Plan:
        return make_plan(
            project=self.project.name,
            backend=self.backend.identity(),
            desired=self._desired_resources(live),
            live=live,
            replace_fields=self.backend.replace_fields,
            prune=prune,
            delete_topics=delete_topics,
            pinned_versions={n: d.version for n, d in self.desired.items()},
        )

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
