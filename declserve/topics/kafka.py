"""Kafka topics for inference logging, through confluent-kafka's AdminClient.

A topic declserve creates is named from the project's pattern (default
`<project>-<serving>-inference`); Kafka topics carry no labels, so a topic whose name the
pattern produces for this project counts as managed. Reads list every topic in one call and
describe the managed ones' retention in another. Only this package talks to Kafka.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from declserve import spec as S
from declserve.errors import BackendUnavailable, Rejected

_QUIET = logging.getLogger("declserve.kafka.client")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


# Topic settings declserve owns: essence field → Kafka config key.
CONFIG_KEYS = {"retentionMs": "retention.ms", "maxMessageBytes": "max.message.bytes"}


@dataclass(frozen=True)
class TopicSettings:
    project: str
    bootstrap: tuple[str, ...]
    pattern: str
    partitions: int
    replication_factor: int
    retention_ms: int
    max_message_bytes: int = 2 * 2**20
    timeout: float = 5.0

    @classmethod
    def from_project(cls, project: S.Project) -> TopicSettings | None:
        k = project.spec.kafka
        if k is None:
            return None
        return cls(
            project.name,
            tuple(k.bootstrap_servers),
            k.topic_pattern,
            k.partitions,
            k.replication_factor,
            k.retention_ms,
            k.max_message_bytes,
        )

    def name_for(self, serving: str) -> str:
        return self.pattern.replace("{project}", self.project).replace("{serving}", serving)

    def managed_pattern(self) -> re.Pattern[str]:
        parts = [
            re.escape(p) for p in self.pattern.replace("{project}", self.project).split("{serving}")
        ]
        return re.compile("^" + "([a-z0-9]([-a-z0-9]*[a-z0-9])?)".join(parts) + "$")

    def essence(self) -> dict[str, Any]:
        return {
            "partitions": self.partitions,
            "replicationFactor": self.replication_factor,
            "retentionMs": self.retention_ms,
            "maxMessageBytes": self.max_message_bytes,
        }

    @property
    def servers(self) -> str:
        return ",".join(self.bootstrap)


class KafkaTopics:
    """Topic lifecycle on one cluster."""

    def __init__(self, settings: TopicSettings) -> None:
        from confluent_kafka.admin import AdminClient

        self.settings = settings
        self.admin = AdminClient(
            {
                "bootstrap.servers": settings.servers,
                "logger": _QUIET,  # type: ignore[dict-item]
                "socket.connection.setup.timeout.ms": int(settings.timeout * 1000),
            }
        )

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        return BackendUnavailable(f"cannot reach Kafka at {self.settings.servers} ({_reason(exc)})")

    def observe(self) -> dict[str, tuple[dict[str, Any], bool]]:
        """Every topic on the cluster: its essence (full for managed ones) and whether managed."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

        try:
            metadata = self.admin.list_topics(timeout=self.settings.timeout)
        except KafkaException as exc:
            raise self._unavailable(exc) from exc
        managed = self.settings.managed_pattern()
        topics: dict[str, tuple[dict[str, Any], bool]] = {}
        resources = []
        for name, meta in metadata.topics.items():
            if name.startswith("__"):
                continue
            partitions = meta.partitions
            first = partitions.get(0)
            essence = {
                "partitions": len(partitions),
                "replicationFactor": len(first.replicas) if first else 0,
            }
            topics[name] = (essence, bool(managed.match(name)))
            if topics[name][1]:
                resources.append(ConfigResource(ConfigResource.Type.TOPIC, name))
        if resources:
            try:
                futures = self.admin.describe_configs(
                    resources, request_timeout=self.settings.timeout
                )
                for resource, future in futures.items():
                    entries = future.result(timeout=self.settings.timeout)
                    for field, key in CONFIG_KEYS.items():
                        entry = entries.get(key)
                        if entry is not None and entry.value is not None:
                            topics[resource.name][0][field] = int(entry.value)
            except KafkaException as exc:
                raise self._unavailable(exc) from exc
        return topics

    def create(self, name: str, essence: dict[str, Any]) -> None:
        from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

        topic = NewTopic(
            name,
            num_partitions=essence["partitions"],
            replication_factor=essence["replicationFactor"],
            config={key: str(essence[field]) for field, key in CONFIG_KEYS.items()},
        )
        self._wait(
            self.admin.create_topics([topic], request_timeout=self.settings.timeout),
            f"create topic {name}",
            ok_codes=frozenset({"TOPIC_ALREADY_EXISTS"}),
        )

    def add_partitions(self, name: str, total: int) -> None:
        from confluent_kafka.admin import NewPartitions  # type: ignore[attr-defined]

        self._wait(
            self.admin.create_partitions(
                [NewPartitions(name, total)], request_timeout=self.settings.timeout
            ),
            f"add partitions to topic {name}",
        )

    def set_config(self, name: str, field: str, value: int) -> None:
        """Change one topic setting, leaving the others as they are (an incremental alter)."""
        from confluent_kafka.admin import (  # type: ignore[attr-defined]
            AlterConfigOpType,
            ConfigEntry,
            ConfigResource,
        )

        entry = ConfigEntry(CONFIG_KEYS[field], str(value),
                            incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[entry])
        self._wait(
            self.admin.incremental_alter_configs([resource], request_timeout=self.settings.timeout),
            f"change {CONFIG_KEYS[field]} of topic {name}",
        )

    def delete(self, name: str) -> None:
        self._wait(
            self.admin.delete_topics([name], request_timeout=self.settings.timeout),
            f"delete topic {name}",
            ok_codes=frozenset({"UNKNOWN_TOPIC_OR_PART"}),
        )

    def _wait(
        self, futures: dict[Any, Any], what: str, ok_codes: frozenset[str] = frozenset()
    ) -> None:
        from confluent_kafka import KafkaException

        for future in futures.values():
            try:
                future.result(timeout=self.settings.timeout * 3)
            except KafkaException as exc:
                error: Any = exc.args[0] if exc.args else None
                code = error.name() if hasattr(error, "name") else ""
                if code in ok_codes:
                    continue
                if code in ("_TRANSPORT", "_TIMED_OUT", "_ALL_BROKERS_DOWN"):
                    raise self._unavailable(exc) from exc
                raise Rejected(f"Kafka refused to {what}: {_reason(exc)}") from exc
            except TimeoutError as exc:
                raise self._unavailable(exc) from exc


def _reason(exc: BaseException) -> str:
    error = exc.args[0] if exc.args else exc
    text = getattr(error, "str", lambda: str(error))()
    return text or type(exc).__name__
