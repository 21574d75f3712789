"""The Kafka test broker is a real broker: topics, records, partitions, deletion, outage.

Every wait is a poll against a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import NewPartitions, NewTopic

DEADLINE = 30.0  # seconds; generous for a loaded 2-core machine


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(what: str, probe, timeout: float = DEADLINE, interval: float = 0.2):
    """Call probe() until it returns a truthy value; fail with the last value after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = probe()
            if last:
                return last
        except KafkaException as e:  # transient metadata errors count as "not yet"
            last = e
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def partitions_of(admin, topic: str) -> int | None:
    """Number of partitions of topic as the broker reports it, None if the topic is absent."""
    md = admin.list_topics(timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return len(t.partitions)


def create_topic(admin, topic: str, partitions: int) -> None:
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=DEADLINE,
    )
    futures[topic].result(timeout=DEADLINE)
    wait_for(
        f"topic {topic} with {partitions} partitions",
        lambda: partitions_of(admin, topic) == partitions,
    )


@pytest.fixture
def admin(kafka_bootstrap, kafka_broker):
    return kafka_broker.admin()


def test_broker_identifies_itself(kafka_bootstrap, kafka_broker, admin):
    host, port = kafka_bootstrap.split(":")
    assert host == "127.0.0.1"
    md = admin.list_topics(timeout=10)
    assert md.cluster_id == kafka_broker.cluster_id
    assert {b.id: (b.host, b.port) for b in md.brokers.values()} == {1: (host, int(port))}


def test_create_topic_with_three_partitions(admin):
    topic = unique("t3")
    assert partitions_of(admin, topic) is None
    create_topic(admin, topic, 3)
    md = admin.list_topics(topic=topic, timeout=10).topics[topic]
    assert sorted(md.partitions) == [0, 1, 2]
    assert all(p.leader == 1 and p.replicas == [1] for p in md.partitions.values())
    # Creating it again is refused: the broker really keeps state.
    again = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    with pytest.raises(KafkaException) as exc:
        again[topic].result(timeout=DEADLINE)
    assert exc.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS


def test_produce_consume_round_trip(kafka_broker, admin):
    topic = unique("rt")
    create_topic(admin, topic, 1)
    key, value = b"req-1", f'{{"id": "{uuid.uuid4()}"}}'.encode()

    delivered = []
    producer = Producer(kafka_broker.client_config(acks="all"))
    producer.produce(
        topic,
        key=key,
        value=value,
        headers=[("serving", b"demo")],
        on_delivery=lambda err, msg: delivered.append((err, msg)),
    )
    assert producer.flush(DEADLINE) == 0
    assert len(delivered) == 1 and delivered[0][0] is None
    assert delivered[0][1].offset() == 0

    consumer = Consumer(
        kafka_broker.client_config(
            **{
                "group.id": unique("g"),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
    )
    try:
        consumer.subscribe([topic])

        def one_record():
            msg = consumer.poll(0.5)
            if msg is None:
                return None
            if msg.error():
                raise KafkaException(msg.error())
            return msg

        msg = wait_for(f"a record on {topic}", one_record)
        assert (msg.topic(), msg.partition(), msg.offset()) == (topic, 0, 0)
        assert msg.key() == key and msg.value() == value
        assert msg.headers() == [("serving", b"demo")]
    finally:
        consumer.close()


def test_increase_partitions_but_never_decrease(admin):
    topic = unique("grow")
    create_topic(admin, topic, 1)
    admin.create_partitions([NewPartitions(topic, 4)])[topic].result(timeout=DEADLINE)
    wait_for(f"{topic} to have 4 partitions", lambda: partitions_of(admin, topic) == 4)
    # Kafka can only grow partitions: a decrease is refused by the broker.
    with pytest.raises(KafkaException) as exc:
        admin.create_partitions([NewPartitions(topic, 2)])[topic].result(timeout=DEADLINE)
    assert exc.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    assert partitions_of(admin, topic) == 4


def test_delete_topic(admin):
    topic = unique("del")
    create_topic(admin, topic, 2)
    admin.delete_topics([topic], operation_timeout=DEADLINE)[topic].result(timeout=DEADLINE)
    wait_for(f"{topic} to disappear", lambda: partitions_of(admin, topic) is None)
    assert topic not in admin.list_topics(timeout=10).topics


def test_stop_makes_kafka_unreachable_and_start_brings_it_back(kafka_broker, admin):
    topic = unique("survives")
    create_topic(admin, topic, 2)
    bootstrap = kafka_broker.bootstrap
    port = kafka_broker.port

    try:
        assert kafka_broker.stop() is True
        assert not kafka_broker.running()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

        # A fresh client (no cached metadata) must fail, and fail within a deadline.
        down = kafka_broker.admin(
            **{"socket.connection.setup.timeout.ms": 3000, "reconnect.backoff.max.ms": 500}
        )
        t0 = time.monotonic()
        with pytest.raises(KafkaException) as exc:
            down.list_topics(timeout=3)
        elapsed = time.monotonic() - t0
        assert elapsed < 15, f"AdminClient took {elapsed:.1f}s to give up"
        assert exc.value.args[0].code() in (
            KafkaError._TRANSPORT,
            KafkaError._TIMED_OUT,
            KafkaError._ALL_BROKERS_DOWN,
        )
    finally:
        kafka_broker.start()

    # Same address, same data: the topic created before the outage is still there.
    assert kafka_broker.running()
    assert kafka_broker.bootstrap == bootstrap
    up = kafka_broker.admin()
    md = wait_for("the restarted broker to list topics", lambda: up.list_topics(timeout=5))
    assert md.cluster_id == kafka_broker.cluster_id
    assert topic in md.topics and len(md.topics[topic].partitions) == 2
