"""Providers of resources a serving uses besides its backend: Kafka topics for inference logs."""

from __future__ import annotations

from declserve.providers import register_provider
from declserve.topics.provider import open_topics

register_provider("kafka-topics", open_topics)
