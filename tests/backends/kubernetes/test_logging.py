"""Inference logging on the real cluster: the logging proxy as a sidecar in every pod, records
produced from the pods to the real Kafka broker and read back here.

The pods reach the broker on the node's bridge address (`pods_bootstrap`, the project's
`kubernetes.kafkaBootstrapServers`); declserve on this machine creates the topic and the test
reads it through 127.0.0.1 (`bootstrap`). Servings run the TensorFlow Serving double.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.backends.docker.project import ROOT, changes, field, resource_change, steps
from tests.backends.docker.traffic import SteadyClient
from tests.backends.kubernetes.project import KubeProject
from tests.fixtures.cluster import Cluster
from tests.fixtures.polling import wait_until

RECORD_SCHEMA = json.loads((ROOT / "schema" / "inference-record.schema.json").read_text())
N = 20  # predictions per phase
INSTANCES = 2  # records come from every pod's own proxy
# (the mode change runs one pod, surging to two: the node is small and shared)


@pytest.fixture
def logged(
    tmp_path: Path, cluster: Cluster, cluster_images: dict[str, str], cluster_kafka: Any
) -> Iterator[KubeProject]:
    project = KubeProject(tmp_path, cluster_images["serving"], cluster=cluster,
                          kafka=cluster_kafka.bootstrap, proxy_image=cluster_images["proxy"],
                          pods_kafka=cluster_kafka.pods_bootstrap)
    try:
        yield project
    finally:
        project.cleanup()


class Topic:
    """A consumer of one topic from its beginning, subscribed before the traffic starts."""

    def __init__(self, broker: Any, topic: str) -> None:
        from confluent_kafka import Consumer

        self.records: list[dict[str, Any]] = []
        self.consumer = Consumer(broker.client_config(**{
            "group.id": f"log-{uuid.uuid4().hex}", "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 1000}))
        self.consumer.subscribe([topic])
        wait_until(lambda: (self._poll(0.2), self.consumer.assignment())[1],
                   timeout=30, message=f"partitions of {topic} assigned")

    def read_until(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Records until there are `count` in all (or the deadline), then one more short poll:
        a record beyond them would be a duplicate or an unexpected one."""
        end = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < end:
            self._poll(0.5)
        self._poll(2.0)
        return self.records

    def _poll(self, seconds: float) -> None:
        msg = self.consumer.poll(seconds)
        if msg is not None and msg.error() is None:
            record = json.loads(msg.value())
            record["_key"] = msg.key().decode()
            record["_seen"] = time.time()
            self.records.append(record)

    def close(self) -> None:
        self.consumer.close()


def predict(url: str, request_id: str, row: list[float]) -> dict[str, Any]:
    assert url.startswith("http://127.0.0.1:"), url
    request = urllib.request.Request(
        f"{url}:predict", data=json.dumps({"instances": [row]}).encode(),
        headers={"Content-Type": "application/json", "X-Request-Id": request_id})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.headers["X-Request-Id"] == request_id
        return json.loads(resp.read())


def send(url: str, phase: str) -> tuple[dict[str, tuple[list[float], dict[str, Any]]], float]:
    """N predictions, each with its own request id; (id → (inputs, answer)), when it began."""
    t0 = time.time()
    sent = {}
    for i in range(N):
        rid = f"{phase}-{i}-{uuid.uuid4().hex[:8]}"
        row = [float(i), 0.5]
        sent[rid] = (row, predict(url, rid, row))
    return sent, t0


def check_records(records: list[dict[str, Any]], sent: dict[str, Any], mode: str,
                  version: str) -> None:
    mine = [r for r in records if r["requestId"] in sent]
    assert sorted(r["requestId"] for r in mine) == sorted(sent), "one record per request"
    for r in mine:
        rid = r["requestId"]
        assert r.pop("_key") == rid
        r.pop("_seen")
        jsonschema.validate(r, RECORD_SCHEMA)
        row, answer = sent[rid]
        assert (r["serving"], r["model"], r["modelVersion"]) == ("m", "mnist", version)
        assert r["statusCode"] == 200 and r["mode"] == mode and r["latencyMs"] >= 0
        assert ("inputs" in r) == (mode == "all") and "predictions" in r
        if mode == "all":
            assert r["inputs"] == [row]
        assert r["predictions"] == answer["predictions"]


def pods_of(project: KubeProject) -> dict[str, list[str]]:
    return {p["metadata"]["name"]: [c["name"] for c in p["spec"]["containers"]]
            for p in project.pods("m")}


def rest_target(project: KubeProject) -> Any:
    svc = json.loads(project.kubectl("get", "service", "m", "-o", "json").stdout)
    return next(p["targetPort"] for p in svc["spec"]["ports"] if p["name"] == "rest")


def test_every_prediction_through_the_service_is_one_record_on_the_topic(
    logged: KubeProject, cluster_kafka: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    logged.serving("m", version=2, instances=INSTANCES,
                   inferenceLogging={"topic": "create", "mode": "all"})
    topic = f"{logged.name}-m-inference"
    plan = logged.plan()
    assert [rc["address"] for rc in plan["resource_changes"]] == [f"topic.{topic}", "serving.m"]
    t_apply = time.monotonic()
    logged.apply()
    apply_s = time.monotonic() - t_apply
    assert logged.detailed_exitcode() == 0  # the sidecar reads back as applied
    assert rest_target(logged) == "front"
    assert all(c == ["serving", "proxy"] for c in pods_of(logged).values())
    url = logged.status()["m"]["endpoints"][0]
    reader = Topic(cluster_kafka, topic)
    try:
        sent, t0 = send(url, "all")
        records = reader.read_until(N)
    finally:
        reader.close()
    first = min(r["_seen"] for r in records) - t0 if records else float("nan")
    assert len(records) == N, f"{len(records)} records for {N} predictions"
    check_records(records, sent, "all", "2")
    # `status` asks each pod's proxy for its counters through the API server
    status = wait_until(lambda: (s := logged.status()["m"]).get("records") and
                        s["records"]["produced"] == N and s, timeout=30,
                        message=lambda: f"status records: {logged.status()['m'].get('records')}")
    counters = status["records"]
    assert (counters["produced"], counters["refused"], counters["pods"]) == (N, 0, INSTANCES)
    assert sum(counters["failed"].values()) == 0, counters["failed"]
    with capsys.disabled():
        print(f"\n[k8s-logging] apply with topic and {INSTANCES} pods: {apply_s:.1f}s; "
              f"records {len(records)}/{N}; first record readable {first * 1000:.0f} ms "
              "after the first request was sent")


def test_a_mode_change_rolls_the_pods_and_logging_off_and_on_again_drops_nothing(
    logged: KubeProject, cluster_kafka: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    logged.serving("m", instances=1, inferenceLogging={"topic": "create", "mode": "all"})
    logged.apply()
    topic = f"{logged.name}-m-inference"
    url = logged.status()["m"]["endpoints"][0]
    before = set(pods_of(logged))

    logged.serving("m", instances=1,
                   inferenceLogging={"topic": "create", "mode": "predictions"})
    plan = logged.plan()
    assert [rc["address"] for rc in plan["resource_changes"]] == ["serving.m"]
    assert resource_change(plan, "serving.m")["action"] == "update"
    assert changes(plan, "serving.m") == {field("logging.mode", "all", "predictions")}
    assert steps(plan, "serving.m") == [
        ("apply", "ConfigMap m-config"), ("apply", "Deployment m"),
        ("wait until ready:", "1 pod of Deployment m")]
    reader = Topic(cluster_kafka, topic)
    try:
        with SteadyClient([url]) as during:  # every request through a proxy, old or new
            logged.apply()
        assert during.failures == [] and during.ok > 0
        after = pods_of(logged)
        assert len(after) == 1 and not before & set(after), "every pod replaced"
        # an old pod serves (mode all) through its preStop pause until kube-proxy drops it:
        # the requests that must carry the new mode go once it is gone
        wait_until(lambda: {p["metadata"]["name"] for p in logged.objects("pods", "m")}
                   == set(after), timeout=120, message="the old pods to be gone")
        sent, _ = send(url, "predictions")
        records = reader.read_until(during.ok + len(sent))
    finally:
        reader.close()
    # no record lost while old pods drained and flushed on SIGTERM, none duplicated
    assert len(records) == during.ok + N, (len(records), during.ok, N)
    check_records(records, sent, "predictions", "1")

    logged.serving("m", instances=1)
    plan = logged.plan()
    assert field("service.target", "proxy", "serving") in changes(plan, "serving.m")
    assert steps(plan, "serving.m")[0] == ("apply", "Service m")  # before the proxies go
    with SteadyClient([url]) as switching:
        logged.apply()
    assert switching.failures == [] and switching.ok > 0
    assert rest_target(logged) == "rest"
    assert all(c == ["serving"] for c in pods_of(logged).values())
    assert logged.plan()["resource_changes"] == [] and logged.detailed_exitcode() == 0
    assert logged.status()["m"]["records"] is None

    logged.serving("m", instances=1, inferenceLogging={"topic": "create", "mode": "all"})
    plan = logged.plan()
    assert field("service.target", "serving", "proxy") in changes(plan, "serving.m")
    assert steps(plan, "serving.m")[-1] == ("apply", "Service m")  # once every pod has one
    with SteadyClient([url]) as turning_on:
        logged.apply()
    assert turning_on.failures == [] and turning_on.ok > 0
    assert rest_target(logged) == "front" and logged.detailed_exitcode() == 0
    with capsys.disabled():
        print(f"\n[k8s-logging] mode change all→predictions: {during.ok} requests during the "
              f"rollout, 0 failed, {len(records)}/{during.ok + N} records; logging off: "
              f"{switching.ok} requests during the rollout, 0 failed; logging on again: "
              f"{turning_on.ok} requests, 0 failed")
