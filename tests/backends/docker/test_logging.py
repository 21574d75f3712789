"""Inference-logging topics on the real Kafka broker, and records that really reach them."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any

import jsonschema
import pytest
import yaml

from tests.backends.docker.project import ROOT, TestProject, changes, field, steps
from tests.backends.docker.traffic import predict

RECORD_SCHEMA = json.loads((ROOT / "schema" / "inference-record.schema.json").read_text())


@pytest.fixture
def logged(make_project, kafka_bootstrap: str, logproxy_image: str) -> TestProject:
    return make_project(kafka=kafka_bootstrap, proxy_image=logproxy_image)


def topic_name(project: TestProject, serving: str) -> str:
    return f"{project.name}-{serving}-inference"


def broker_topics(kafka_broker: Any) -> dict[str, int]:
    meta = kafka_broker.admin().list_topics(timeout=10)
    return {name: len(t.partitions) for name, t in meta.topics.items() if not name.startswith("__")}


def consume(
    kafka_broker: Any, topic: str, count: int, deadline: float = 30.0
) -> list[dict[str, Any]]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        kafka_broker.client_config(
            **{"group.id": f"t-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
        )
    )
    consumer.subscribe([topic])
    records: list[dict[str, Any]] = []
    end = time.monotonic() + deadline
    try:
        while len(records) < count and time.monotonic() < end:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                records.append(json.loads(msg.value()))
        # one more short poll: a record beyond `count` would be a duplicate
        extra = consumer.poll(2.0)
        if extra is not None and extra.error() is None:
            records.append(json.loads(extra.value()))
    finally:
        consumer.close()
    return records


def test_create_makes_the_topic_first_and_none_makes_nothing(
    logged: TestProject, kafka_broker: Any
) -> None:
    logged.serving("a", inferenceLogging={"topic": "create"})
    logged.serving("b", inferenceLogging={"topic": "none"})
    plan = logged.plan()
    topic = topic_name(logged, "a")
    addresses = [rc["address"] for rc in plan["resource_changes"]]
    assert addresses == [f"topic.{topic}", "serving.a", "serving.b"]
    assert plan["resource_changes"][1]["depends_on"] == [f"topic.{topic}"]
    logged.apply()
    topics = broker_topics(kafka_broker)
    assert topics.get(topic) == 2 and topic_name(logged, "b") not in topics
    status = logged.status()
    for name in ("a", "b"):  # each serving's one address is its front proxy
        (front,) = status[name]["endpoints"]
        assert front.startswith("http://127.0.0.1:")
        assert not any(front.startswith(m["endpoint"]) for m in status[name]["members"])
    assert status["a"]["topic"] == topic and status["b"]["topic"] is None
    stats = json.loads(urllib.request.urlopen(
        status["b"]["endpoints"][0].removesuffix("/v1/models/mnist") + "/-/stats").read())
    assert stats["mode"] == "none" and stats["producer"] is False  # b logs nothing
    assert logged.detailed_exitcode() == 0


@pytest.mark.parametrize("mode", ["all", "model-inputs", "predictions"])
def test_a_predict_request_becomes_one_record_with_the_fields_of_its_mode(
    logged: TestProject, kafka_broker: Any, mode: str
) -> None:
    logged.serving("m", version=2, inferenceLogging={"topic": "create", "mode": mode})
    logged.apply()
    url = logged.status()["m"]["endpoints"][0]
    answer = predict(url, [[0.5, 1.5]])
    assert answer["model_version"] == "2"
    (record,) = consume(kafka_broker, topic_name(logged, "m"), 1)
    jsonschema.validate(record, RECORD_SCHEMA)
    assert record["serving"] == "m" and record["model"] == "mnist" and record["modelVersion"] == "2"
    assert record["statusCode"] == 200 and record["mode"] == mode and record["latencyMs"] >= 0
    assert ("inputs" in record) == (mode in ("all", "model-inputs"))
    assert ("predictions" in record) == (mode in ("all", "predictions"))
    if "inputs" in record:
        assert record["inputs"] == [[0.5, 1.5]]
    if "predictions" in record:
        assert record["predictions"] == answer["predictions"]


def test_existing_topic_and_a_switch_between_topics(logged: TestProject, kafka_broker: Any) -> None:
    from confluent_kafka.admin import NewTopic

    shared = f"shared-{logged.name}"
    logged.serving("a", inferenceLogging={"topic": shared})
    missing = logged.run("plan", "--no-color")
    assert missing.returncode == 1 and f"topic {shared!r} does not exist on Kafka" in missing.stderr
    admin = kafka_broker.admin()  # kept alive until the futures resolve
    futures = admin.create_topics([NewTopic(shared, num_partitions=1, replication_factor=1)])
    for f in futures.values():
        f.result(timeout=30)
    plan = logged.plan()
    assert [rc["address"] for rc in plan["resource_changes"]] == ["serving.a"]
    logged.apply()
    logged.serving("a", inferenceLogging={"topic": "create"})
    plan = logged.plan()
    own = topic_name(logged, "a")
    assert [rc["address"] for rc in plan["resource_changes"]] == [f"topic.{own}", "serving.a"]
    assert field("logging.topic", shared, own) in changes(plan, "serving.a")
    assert plan["resource_changes"][1]["action"] == "update"
    logged.apply()
    predict(logged.status()["a"]["endpoints"][0])
    assert len(consume(kafka_broker, own, 1)) == 1
    assert shared in broker_topics(kafka_broker)  # not ours: never touched


def test_topic_deleted_by_hand_is_drift_and_apply_recreates_it(
    logged: TestProject, kafka_broker: Any
) -> None:
    logged.serving("a", inferenceLogging={"topic": "create"})
    logged.apply()
    topic = topic_name(logged, "a")
    admin = kafka_broker.admin()
    for f in admin.delete_topics([topic]).values():
        f.result(timeout=30)
    from tests.fixtures.polling import wait_until

    wait_until(
        lambda: topic not in broker_topics(kafka_broker), timeout=30, message="topic still listed"
    )
    plan = logged.plan()
    assert [(rc["address"], rc["action"]) for rc in plan["resource_changes"]] == [
        (f"topic.{topic}", "create")
    ]
    logged.apply()
    assert broker_topics(kafka_broker).get(topic) == 2 and logged.detailed_exitcode() == 0


def test_partition_decrease_fails_the_plan(logged: TestProject) -> None:
    logged.serving("a", inferenceLogging={"topic": "create"})
    logged.apply()
    doc = yaml.safe_load((logged.root / "declserve.yaml").read_text())
    doc["spec"]["kafka"]["partitions"] = 1
    logged.write("declserve.yaml", doc)
    result = logged.run("plan", "--no-color")
    assert result.returncode == 1
    assert "spec.kafka.partitions" in result.stderr and "cannot remove partitions" in result.stderr
    doc["spec"]["kafka"]["partitions"] = 3
    logged.write("declserve.yaml", doc)
    plan = logged.plan()
    assert changes(plan, f"topic.{topic_name(logged, 'a')}") == {field("partitions", 2, 3)}


def test_removed_serving_keeps_its_topic_unless_delete_topics(
    logged: TestProject, kafka_broker: Any
) -> None:
    logged.serving("a", inferenceLogging={"topic": "create"})
    logged.serving("keep")
    logged.apply()
    topic = topic_name(logged, "a")
    logged.remove_serving("a")
    logged.apply("--prune")
    assert logged.containers("a") == [] and topic in broker_topics(kafka_broker)
    plan = logged.plan()
    assert any(topic in w and "--delete-topics" in w for w in plan["warnings"])
    logged.apply("--delete-topics")
    from tests.fixtures.polling import wait_until

    wait_until(
        lambda: topic not in broker_topics(kafka_broker), timeout=30, message="topic not deleted"
    )


def test_broker_down_fails_plan_and_apply_and_changes_nothing(
    logged: TestProject, kafka_broker: Any
) -> None:
    logged.serving("a", inferenceLogging={"topic": "create"})
    kafka_broker.stop()
    try:
        for command in (["plan", "--no-color"], ["apply", "--auto-approve", "--no-color"]):
            result = logged.run(*command)
            assert result.returncode == 1
            assert f"cannot reach Kafka at {kafka_broker.bootstrap}" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
        assert logged.containers(proxies=True) == []
    finally:
        kafka_broker.start()


def test_proxy_upstreams_out_of_date_are_drift_and_apply_rewrites_them(
    logged: TestProject, kafka_broker: Any
) -> None:
    logged.serving("a", instances=2, inferenceLogging={"topic": "create"})
    logged.apply()
    upstreams = logged.state_dir / logged.name / "a" / "upstreams.json"
    upstreams.write_text(
        json.dumps({"upstreams": ["http://127.0.0.1:9"]})
    )  # as after an engine restart
    plan = logged.plan()
    (rc,) = plan["resource_changes"]
    assert rc["action"] == "repair" and "stale" in rc["reason"]
    assert steps(plan, "serving.a") == [("point the front proxy at", "the ready replicas")]
    logged.apply()
    assert logged.detailed_exitcode() == 0
    status = logged.status()["a"]
    replicas = [m["endpoint"] for m in status["members"]]
    assert sorted(json.loads(upstreams.read_text())["upstreams"]) == sorted(replicas)
    assert predict(status["endpoints"][0])["model_version"] == "1"
