"""Inference-logging topics as resources of their own: a provider of the kind `topic`.

A serving that logs to a topic declserve creates depends on that topic, so the topic is
created first and deleted last. A topic named in a spec that declserve does not create must
exist; Kafka cannot remove partitions nor change a replication factor in place, so the plan
refuses both. Topics hold logged data: they are deleted only with `--delete-topics`.
"""

from __future__ import annotations

from collections.abc import Sequence

from declserve.desired import DesiredServing
from declserve.errors import Rejected
from declserve.live import LiveResource, LiveState
from declserve.loader import LoadedProject
from declserve.plan import Action, DesiredResource, FieldChange, ResourceChange, Shape, Step
from declserve.provider import ApplyContext, Wanted
from declserve.topics.kafka import CONFIG_KEYS, KafkaTopics, TopicSettings

KIND = "topic"
CREATE = "create topic"
DELETE = "delete topic"
PARTITIONS = "add partitions to"
SET = "set the config of"


class TopicProvider:
    kind = KIND
    delete_guard = "--delete-topics"
    guard_everything = False

    def __init__(self, project: LoadedProject, settings: TopicSettings) -> None:
        self.project = project
        self.settings = settings
        self._client: KafkaTopics | None = None

    @property
    def client(self) -> KafkaTopics:
        if self._client is None:
            self._client = KafkaTopics(self.settings)
        return self._client

    # ---- pure -------------------------------------------------------------------------
    def desired(self, servings: Sequence[DesiredServing]) -> list[Wanted]:
        users: dict[str, list[str]] = {}
        for d in servings:
            if d.topic is not None and d.creates_topic:
                users.setdefault(d.topic, []).append(d.address)
        return [
            Wanted(DesiredResource(KIND, name, self.settings.essence()), None, tuple(who))
            for name, who in sorted(users.items())
        ]

    def check(self, servings: Sequence[DesiredServing], live: LiveState) -> list[str]:
        have = live.of_kind(KIND)
        out = []
        for d in servings:
            if d.topic is not None and not d.creates_topic and d.topic not in have:
                out.append(
                    f"{d.source}: spec.inferenceLogging.topic: topic {d.topic!r} does not "
                    f"exist on Kafka at {self.settings.servers}"
                )
        doc = self.project.project_doc
        wanted = {d.topic for d in servings if d.topic is not None and d.creates_topic}
        for name in sorted(wanted & have.keys()):
            essence = have[name].essence
            if essence.get("partitions", 0) > self.settings.partitions:
                out.append(
                    doc.problem(
                        ("spec", "kafka", "partitions"),
                        f"topic {name!r} has {essence['partitions']} partitions and Kafka cannot "
                        f"remove partitions; the spec asks for {self.settings.partitions}",
                    ).format()
                )
            if essence.get("replicationFactor") != self.settings.replication_factor:
                out.append(
                    doc.problem(
                        ("spec", "kafka", "replicationFactor"),
                        f"topic {name!r} has replication factor "
                        f"{essence.get('replicationFactor')}; "
                        "changing it needs a partition reassignment, which declserve does not do",
                    ).format()
                )
        return out

    def kept_warning(self, live: LiveResource) -> str:
        return f"topic {live.name!r} is no longer used and is kept; `--delete-topics` deletes it"

    def shape(
        self,
        desired: DesiredResource | None,
        live: LiveResource | None,
        changes: Sequence[FieldChange],
    ) -> Shape:
        if desired is None:
            assert live is not None
            return Shape(Action.DELETE, (Step(DELETE, live.name, "its records are lost"),))
        e = desired.essence
        if live is None:
            return Shape(
                Action.CREATE,
                (
                    Step(
                        CREATE,
                        desired.name,
                        (
                            f"{e['partitions']} partition(s), "
                            f"replication factor {e['replicationFactor']}, "
                            f"retention {e['retentionMs']} ms, "
                            f"max.message.bytes {e['maxMessageBytes']}"
                        ),
                    ),
                ),
            )
        steps = []
        for c in changes:
            if c.path == "partitions":
                steps.append(Step(PARTITIONS, desired.name, f"{c.before} → {c.after}"))
            elif c.path in CONFIG_KEYS:
                change = f"{CONFIG_KEYS[c.path]} {c.before} → {c.after}"
                steps.append(Step(SET, desired.name, change))
        return Shape(Action.UPDATE, tuple(steps))

    # ---- effects ------------------------------------------------------------------------
    def observe(self, names: frozenset[str]) -> LiveState:
        found = self.client.observe()
        return LiveState(
            {
                f"{KIND}.{n}": LiveResource(KIND, n, e, managed=managed)
                for n, (e, managed) in found.items()
            }
        )

    def execute(self, change: ResourceChange, wanted: Wanted | None, ctx: ApplyContext) -> None:
        for step in change.steps:
            ctx.checkpoint()
            ctx.say(step.text())
            if step.op == CREATE:
                self.client.create(step.target, self.settings.essence())
            elif step.op == DELETE:
                self.client.delete(step.target)
            elif step.op == PARTITIONS:
                self.client.add_partitions(step.target, self.settings.partitions)
            elif step.op == SET:
                key = step.detail.split(" ", 1)[0]
                field = next(f for f, k in CONFIG_KEYS.items() if k == key)
                self.client.set_config(step.target, field, self.settings.essence()[field])
            else:
                raise Rejected(f"unknown step {step.text()!r} for Kafka topics")


def open_topics(project: LoadedProject) -> TopicProvider | None:
    settings = TopicSettings.from_project(project.project)
    return TopicProvider(project, settings) if settings is not None else None
