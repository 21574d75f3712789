"""declserve's logging sink for KServe servings (declserve/logproxy/sink.py) against the REAL
Kafka broker.

The sink runs as a host process from this checkout on a free 127.0.0.1 port. The tests POST
CloudEvents built as KServe's logger (the agent sidecar, kserve v0.20.0 pkg/logger/handler.go
and worker.go, CloudEvents SDK for Go, binary HTTP mode) builds them, in the order its logger
mode sends them, and read the records back from topics made here (named ``ks-...``, deleted at
teardown), validated against schema/inference-record.schema.json. Every event carries an
explicit ce-time, so timestamp and latencyMs of each record are known exactly.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic
from docker.types import Mount

from tests.fixtures.docker_engine import free_port
from tests.fixtures.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
SINK_PY = ROOT / "declserve" / "logproxy" / "sink.py"
SCHEMA = json.loads((ROOT / "schema" / "inference-record.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
NAMESPACE = "declserve-demo"
# declserve's mode -> the InferenceService's logger.mode -> the event types the agent sends
KSERVE_MODE = {"all": "all", "model-inputs": "request", "predictions": "response"}
SENDS = {"all": (REQUEST, RESPONSE), "request": (REQUEST,), "response": (RESPONSE,)}
INSTANCES = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
PREDICTIONS = [6.0, 15.0]


# ------------------------------------------------------------------------------------------
# CloudEvents as KServe's agent sends them
# ------------------------------------------------------------------------------------------


def go_time(epoch_ns: int) -> str:
    """A time as the CloudEvents SDK for Go writes it: RFC 3339 with nanoseconds, UTC,
    trailing zeros of the fraction dropped (time.RFC3339Nano)."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return base + (f".{fraction}" if fraction else "") + "Z"


def ms_stamp(epoch_ns: int) -> str:
    """The record's timestamp of that time (milliseconds, truncated)."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos // 1_000_000:03d}Z"


def ce_headers(kind: str, ce_id: str, isvc: str, at_ns: int | None) -> dict[str, str]:
    """The headers of one event (worker.go sendHttpCloudEvent). The agent sets ce-time (the
    request's arrival, or the moment the whole answer was in) on every event; at_ns=None
    leaves it out to test the fallback. Content-Type is the REQUEST's on both events."""
    headers = {
        "Ce-Specversion": "1.0",
        "Ce-Id": ce_id,
        "Ce-Type": kind,
        "Ce-Source": f"{isvc}-predictor-6d4f9b7c8-x2k9p",  # the agent's --source-uri: pod name
        "Ce-Recordedtime": go_time(time.time_ns()),
        "Ce-Inferenceservicename": isvc,
        "Ce-Namespace": NAMESPACE,
        "Ce-Component": "predictor",
        "Ce-Endpoint": "",
        "Ce-Metadata": "{}",
        "Content-Type": "application/json",
    }
    if at_ns is not None:
        headers["Ce-Time"] = go_time(at_ns)
    return headers


def http_call(port: int, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def post_event(port: int, kind: str, ce_id: str, isvc: str, body: Any,
               at_ns: int | None) -> tuple[int, bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http_call(port, "POST", "/", raw, ce_headers(kind, ce_id, isvc, at_ns))


def request_body(instances: Any = INSTANCES) -> dict[str, Any]:
    return {"instances": instances}


def response_body(predictions: Any = PREDICTIONS, version: int | None = 2) -> dict[str, Any]:
    doc: dict[str, Any] = {"predictions": predictions}
    if version is not None:
        doc["model_version"] = version  # the TensorFlow Serving double says who answered
    return doc


# ------------------------------------------------------------------------------------------
# the sink and the topics
# ------------------------------------------------------------------------------------------


class SinkLab:
    """Topics, a sink process and its config of one test; removed at teardown."""

    def __init__(self, tmp: Path, broker: Any) -> None:
        self.tmp, self.broker = tmp, broker
        self.topics: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.containers: list[Any] = []
        self.config = tmp / "sink.json"
        self.log = tmp / "sink.log"
        self.port = free_port()

    def topic(self) -> str:
        name = f"ks-{uuid.uuid4().hex[:10]}"
        admin = self.broker.admin()
        futures = admin.create_topics(
            [NewTopic(name, 1, 1, config={"max.message.bytes": "2097152"})], operation_timeout=30
        )
        futures[name].result(timeout=60)
        self.topics.append(name)
        return name

    def write_config(self, services: dict[str, dict[str, Any]], **extra: Any) -> None:
        doc = {"listen": f"127.0.0.1:{self.port}", "bootstrap": self.broker.bootstrap,
               "services": services, **extra}
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.config)

    def start(self, services: dict[str, dict[str, Any]], **extra: Any) -> subprocess.Popen:
        self.write_config(services, **extra)
        with open(self.log, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, str(SINK_PY), "--config", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        wait_until(lambda: http_call(self.port, "GET", "/-/ready")[0] == 200, timeout=30,
                   message=lambda: f"sink not ready:\n{self.logs()}")
        return proc

    def start_in_image(self, docker_client: Any, image: str,
                       services: dict[str, dict[str, Any]], **extra: Any) -> Any:
        """The sink in the front proxy's image (Debian's python3-aiohttp 3.8 and
        python3-confluent-kafka 1.7), host network, the config directory mounted read-only."""
        self.write_config(services, **extra)
        container = docker_client.containers.run(
            image, command=["python3", "/app/sink.py", "--config", "/etc/declserve/sink.json"],
            network_mode="host", labels={"io.declserve.test": "kserve-sink"},
            mounts=[Mount("/etc/declserve", str(self.tmp), type="bind", read_only=True)],
            name=f"ks-sink-{uuid.uuid4().hex[:8]}", detach=True,
        )
        self.containers.append(container)

        def logs() -> str:
            try:
                return container.logs().decode("utf-8", "replace")[-4000:]
            except Exception as exc:  # noqa: BLE001
                return f"(no logs: {exc!r})"

        wait_until(lambda: http_call(self.port, "GET", "/-/ready")[0] == 200, timeout=60,
                   message=lambda: f"sink container not ready:\n{logs()}")
        return container

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stats(self) -> dict[str, Any]:
        status, body = http_call(self.port, "GET", "/-/stats")
        assert status == 200, body
        return json.loads(body)

    def records(self, topic: str, until_key: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The records on `topic` in offset order, up to and with the one keyed `until_key`
        (a sentinel produced last, so that every record before it is there too)."""
        consumer = Consumer(self.broker.client_config(**{
            "group.id": f"ks-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
            "auto.offset.reset": "earliest"}))
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[dict[str, Any]] = []

        def sentinel_seen() -> bool:
            for msg in consumer.consume(num_messages=100, timeout=0.5):
                if msg.error():
                    assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                    continue
                got.append({"key": msg.key().decode(), "value": json.loads(msg.value())})
            return any(r["key"] == until_key for r in got)

        try:
            wait_until(sentinel_seen, timeout=timeout, interval=0,
                       message=lambda: f"no record {until_key} on {topic}: {got}\n{self.logs()}")
        finally:
            consumer.close()
        assert got[-1]["key"] == until_key, f"records after the sentinel: {got}"
        for rec in got:
            errors = [e.message for e in VALIDATOR.iter_errors(rec["value"])]
            assert not errors, f"record does not match the schema: {errors}\n{rec}"
            assert rec["key"] == rec["value"]["requestId"]
        return got

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
        for container in self.containers:  # made by this test only
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if self.topics:
            admin = self.broker.admin()
            for future in admin.delete_topics(self.topics, operation_timeout=30).values():
                try:
                    future.result(timeout=60)
                except Exception:  # noqa: BLE001 - best effort, the broker is per session
                    pass


def service(topic: str, mode: str, version: str | None = "1") -> dict[str, Any]:
    return {"serving": "demo-mnist", "model": "mnist", "topic": topic, "mode": mode,
            "version": version}


def expected(request_id: str, mode: str, *, stamp_ns: int, status: int | None,
             latency: float | None, version: str | None = "2", inputs: Any = INSTANCES,
             predictions: Any = PREDICTIONS) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "serving": "demo-mnist", "model": "mnist", "modelVersion": version,
        "requestId": request_id, "timestamp": ms_stamp(stamp_ns), "statusCode": status,
        "latencyMs": latency, "mode": mode,
    }
    if mode in ("all", "model-inputs"):
        doc["inputs"] = inputs
    if mode in ("all", "predictions"):
        doc["predictions"] = predictions
    return doc


def send_pair(port: int, isvc: str, ce_id: str, kinds: tuple[str, ...], t0: int, t1: int,
              *, order: tuple[str, ...] = (REQUEST, RESPONSE)) -> None:
    """The events of one :predict that the agent sends in a mode, in `order`."""
    for kind in order:
        if kind in kinds:
            body = request_body() if kind == REQUEST else response_body()
            status, text = post_event(port, kind, ce_id, isvc, body, t0 if kind == REQUEST else t1)
            assert status == 202, text


def now_ns() -> int:
    """A time about now, with a fraction that shows nanoseconds are read right."""
    return (time.time_ns() // 1_000_000_000) * 1_000_000_000 + 123_456_789


@pytest.fixture
def sink_lab(tmp_path: Path, kafka_bootstrap: str, kafka_broker: Any):
    lab = SinkLab(tmp_path, kafka_broker)
    try:
        yield lab
    finally:
        lab.cleanup()


# ------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------


def test_schema_allows_the_sinks_nulls_and_still_the_proxys_records():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    base = {"serving": "s", "model": "m", "modelVersion": "1", "requestId": "r",
            "timestamp": "2026-11-25T08:30:00.123Z", "statusCode": 200, "latencyMs": 1.5}
    ok = [
        dict(base, mode="all", inputs=[1], predictions=[2]),  # a proxy record
        dict(base, mode="model-inputs", inputs=[1], statusCode=None, latencyMs=None),
        dict(base, mode="predictions", predictions=[2], latencyMs=None),
        dict(base, mode="all", inputs=[1], predictions=None, statusCode=None, latencyMs=None),
    ]
    bad = [
        dict(base, mode="all", inputs=[1], predictions=[2], statusCode="200"),
        dict(base, mode="all", inputs=[1], predictions=[2], latencyMs=-1),
        dict(base, mode="all", inputs=[1], predictions=[2], statusCode=99),
        {k: v for k, v in dict(base, mode="all", inputs=1, predictions=2).items()
         if k != "statusCode"},  # still required, null or not
    ]
    assert [list(VALIDATOR.iter_errors(r)) for r in ok] == [[]] * len(ok)
    assert all(list(VALIDATOR.iter_errors(r)) for r in bad)


@pytest.mark.parametrize("mode", ["all", "model-inputs", "predictions"])
def test_one_record_per_logged_request_with_the_fields_of_its_mode(sink_lab: SinkLab, mode: str):
    topic = sink_lab.topic()
    sink_lab.start({"mnist": service(topic, mode)}, pairSeconds=30)
    kinds = SENDS[KSERVE_MODE[mode]]
    t0 = now_ns()
    t1 = t0 + 47_500_000  # the answer was complete 47.5 ms later
    ids = [str(uuid.uuid4()) for _ in range(2)]
    send_pair(sink_lab.port, "mnist", ids[0], kinds, t0, t1)
    # a request without a ce-time (fallback: arrival at the sink) whose answer names no
    # model_version (fallback: the pinned version)
    for kind in kinds:
        body = request_body([[1.0]]) if kind == REQUEST else response_body([1.0], version=None)
        status, _ = post_event(sink_lab.port, kind, ids[1], "mnist", body, None)
        assert status == 202
    arrived = time.time()
    sentinel = str(uuid.uuid4())
    send_pair(sink_lab.port, "mnist", sentinel, kinds, t0, t1)

    got = sink_lab.records(topic, sentinel)
    assert [r["key"] for r in got] == [ids[0], ids[1], sentinel]
    both = mode == "all"
    first = expected(ids[0], mode, stamp_ns=t0 if kinds[0] == REQUEST else t1,
                     status=None if mode == "model-inputs" else 200,
                     latency=47.5 if both else None,
                     version="1" if mode == "model-inputs" else "2")
    assert got[0]["value"] == first
    second = got[1]["value"]
    stamp = datetime.datetime.fromisoformat(second.pop("timestamp")).timestamp()
    assert abs(stamp - arrived) < 5, "without ce-time the timestamp is the arrival"
    wanted = expected(ids[1], mode, stamp_ns=0, status=first["statusCode"], latency=None,
                      version="1", inputs=[[1.0]], predictions=[1.0])
    del wanted["timestamp"]
    assert second == wanted
    snap = sink_lab.stats()
    assert snap["requests"] == 3 * len(kinds)
    assert snap["recordsUnpaired"] == 0 and snap["eventsIgnored"] == 0
    wait_until(lambda: sink_lab.stats()["recordsProduced"] == 3, timeout=10)


def test_mode_all_pairs_by_ce_id_in_either_order(sink_lab: SinkLab):
    topic = sink_lab.topic()
    sink_lab.start({"mnist": service(topic, "all")}, pairSeconds=30)
    t0 = now_ns()
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    port = sink_lab.port
    # b's response comes first, then a's request, b's request, a's response (the agent's
    # workers send independently)
    assert post_event(port, RESPONSE, b, "mnist", response_body([2.0]), t0 + 9_000_000)[0] == 202
    assert post_event(port, REQUEST, a, "mnist", request_body([[1.0]]), t0)[0] == 202
    assert sink_lab.stats()["pending"] == 2
    assert post_event(port, REQUEST, b, "mnist", request_body([[2.0]]), t0 + 1_000_000)[0] == 202
    assert post_event(port, RESPONSE, a, "mnist", response_body([1.0]), t0 + 3_000_000)[0] == 202
    send_pair(port, "mnist", c, SENDS["all"], t0, t0 + 1_000_000, order=(RESPONSE, REQUEST))

    got = sink_lab.records(topic, c)
    assert [r["value"] for r in got] == [
        expected(b, "all", stamp_ns=t0 + 1_000_000, status=200, latency=8.0,
                 inputs=[[2.0]], predictions=[2.0]),
        expected(a, "all", stamp_ns=t0, status=200, latency=3.0, inputs=[[1.0]],
                 predictions=[1.0]),
        expected(c, "all", stamp_ns=t0, status=200, latency=1.0),
    ]
    snap = sink_lab.stats()
    assert snap["pending"] == 0 and snap["recordsUnpaired"] == 0


def test_unpaired_events_are_produced_after_pair_seconds_and_counted(sink_lab: SinkLab):
    topic = sink_lab.topic()
    sink_lab.start({"mnist": service(topic, "all")}, pairSeconds=1.5)
    t0 = now_ns()
    lonely_request, lonely_response = str(uuid.uuid4()), str(uuid.uuid4())
    sent = time.monotonic()
    # a request whose answer was not 200 (the agent logs no response then), and a response
    # whose request event was lost
    assert post_event(sink_lab.port, REQUEST, lonely_request, "mnist", request_body(), t0)[0] \
        == 202
    assert post_event(sink_lab.port, RESPONSE, lonely_response, "mnist", response_body(),
                      t0 + 5_000_000)[0] == 202
    assert sink_lab.stats()["pending"] == 2
    got = sink_lab.records(topic, lonely_response)
    assert time.monotonic() - sent >= 1.4, "produced before pairSeconds"
    assert [r["value"] for r in got] == [
        expected(lonely_request, "all", stamp_ns=t0, status=None, latency=None, version="1",
                 predictions=None),
        expected(lonely_response, "all", stamp_ns=t0 + 5_000_000, status=200, latency=None,
                 inputs=None),
    ]
    snap = sink_lab.stats()
    assert snap["recordsUnpaired"] == 2 and snap["pending"] == 0


def test_sigterm_produces_what_waits_for_its_pair_and_exits_0(sink_lab: SinkLab):
    topic = sink_lab.topic()
    proc = sink_lab.start({"mnist": service(topic, "all")}, pairSeconds=600)
    t0 = now_ns()
    waiting = str(uuid.uuid4())
    assert post_event(sink_lab.port, REQUEST, waiting, "mnist", request_body(), t0)[0] == 202
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, sink_lab.logs()
    [rec] = sink_lab.records(topic, waiting)
    assert rec["value"] == expected(waiting, "all", stamp_ns=t0, status=None, latency=None,
                                    version="1", predictions=None)


def test_unknown_service_and_not_a_cloudevent_are_refused_and_counted(sink_lab: SinkLab):
    topic = sink_lab.topic()
    sink_lab.start({"mnist": service(topic, "predictions")})
    t0 = now_ns()
    port = sink_lab.port
    status, body = post_event(port, RESPONSE, str(uuid.uuid4()), "other", response_body(), t0)
    assert status == 404 and "other" in json.loads(body)["error"]
    plain = json.dumps(response_body()).encode()
    status, _ = http_call(port, "POST", "/", plain, {"Content-Type": "application/json"})
    assert status == 400
    headers = ce_headers("com.example.other", str(uuid.uuid4()), "mnist", t0)
    assert http_call(port, "POST", "/", plain, headers)[0] == 400
    no_id = ce_headers(RESPONSE, "", "mnist", t0)
    assert http_call(port, "POST", "/", plain, no_id)[0] == 400
    sentinel = str(uuid.uuid4())
    send_pair(port, "mnist", sentinel, SENDS["response"], t0, t0)
    assert [r["key"] for r in sink_lab.records(topic, sentinel)] == [sentinel]
    snap = sink_lab.stats()
    assert snap["eventsRejected"] == {"notCloudEvent": 3, "unknownService": 1, "tooLarge": 0}
    assert snap["requests"] == 5


def test_events_of_other_requests_than_predict_are_ignored(sink_lab: SinkLab):
    """The agent logs every request it proxies, e.g. GET /v1/models/mnist (no body; its
    answer is the model status): no record."""
    topic = sink_lab.topic()
    sink_lab.start({"mnist": service(topic, "all")}, pairSeconds=30)
    t0 = now_ns()
    status_id = str(uuid.uuid4())
    status_answer = {"model_version_status": [{"version": "2", "state": "AVAILABLE"}]}
    assert post_event(sink_lab.port, REQUEST, status_id, "mnist", b"", t0)[0] == 202
    assert post_event(sink_lab.port, RESPONSE, status_id, "mnist", status_answer, t0)[0] == 202
    sentinel = str(uuid.uuid4())
    send_pair(sink_lab.port, "mnist", sentinel, SENDS["all"], t0, t0)
    assert [r["key"] for r in sink_lab.records(topic, sentinel)] == [sentinel]
    snap = sink_lab.stats()
    assert snap["eventsIgnored"] == 1 and snap["pending"] == 0 and snap["recordsUnpaired"] == 0


def test_a_changed_config_takes_effect_and_a_broken_one_is_ignored(sink_lab: SinkLab):
    first, second = sink_lab.topic(), sink_lab.topic()
    sink_lab.start({"mnist": service(first, "model-inputs")})
    t0 = now_ns()
    port = sink_lab.port
    assert post_event(port, RESPONSE, str(uuid.uuid4()), "fashion", response_body(), t0)[0] \
        == 404
    before = str(uuid.uuid4())
    send_pair(port, "mnist", before, SENDS["request"], t0, t0)

    sink_lab.write_config({"mnist": service(second, "predictions"),
                           "fashion": service(second, "predictions", version=None)})
    wait_until(lambda: set(sink_lab.stats()["services"]) == {"mnist", "fashion"}, timeout=10,
               message=lambda: f"sink.json not re-read:\n{sink_lab.logs()}")
    after, fashion = str(uuid.uuid4()), str(uuid.uuid4())
    # now the InferenceService logs responses only; its request event (if any) is ignored
    assert post_event(port, REQUEST, after, "mnist", request_body(), t0)[0] == 202
    send_pair(port, "mnist", after, SENDS["response"], t0, t0 + 1_000_000)
    send_pair(port, "fashion", fashion, SENDS["response"], t0, t0 + 2_000_000)

    sink_lab.config.write_text('{"listen": ')  # does not parse: the running settings stay
    wait_until(lambda: "cannot be used" in sink_lab.logs(), timeout=10,
               message=lambda: f"broken sink.json not noticed:\n{sink_lab.logs()}")
    last = str(uuid.uuid4())
    send_pair(port, "fashion", last, SENDS["response"], t0, t0 + 3_000_000)

    assert [r["value"] for r in sink_lab.records(first, before)] == [
        expected(before, "model-inputs", stamp_ns=t0, status=None, latency=None, version="1")]
    assert [r["value"] for r in sink_lab.records(second, last)] == [
        expected(after, "predictions", stamp_ns=t0 + 1_000_000, status=200, latency=None),
        expected(fashion, "predictions", stamp_ns=t0 + 2_000_000, status=200, latency=None),
        expected(last, "predictions", stamp_ns=t0 + 3_000_000, status=200, latency=None),
    ]
    assert sink_lab.stats()["eventsIgnored"] == 1


def test_an_event_larger_than_max_record_bytes_is_refused_413(sink_lab: SinkLab):
    topic = sink_lab.topic()
    sink_lab.start({"mnist": service(topic, "model-inputs")}, maxRecordBytes=200_000)
    t0 = now_ns()
    big = str(uuid.uuid4())
    status, _ = post_event(sink_lab.port, REQUEST, big, "mnist",
                           request_body([[0.5] * 60_000]), t0)
    assert status == 413
    sentinel = str(uuid.uuid4())
    send_pair(sink_lab.port, "mnist", sentinel, SENDS["request"], t0, t0)
    assert [r["key"] for r in sink_lab.records(topic, sentinel)] == [sentinel]
    snap = sink_lab.stats()
    assert snap["recordsFailed"]["tooLarge"] == 1 and snap["requestsTooLarge"] == 1
    assert snap["eventsRejected"]["tooLarge"] == 1


def test_the_sink_runs_in_the_front_proxys_image(sink_lab: SinkLab, docker_client: Any,
                                                 logproxy_image: str):
    topic = sink_lab.topic()
    container = sink_lab.start_in_image(docker_client, logproxy_image,
                                        {"mnist": service(topic, "all")}, pairSeconds=30)
    t0 = now_ns()
    done = str(uuid.uuid4())
    send_pair(sink_lab.port, "mnist", done, SENDS["all"], t0, t0 + 2_500_000,
              order=(RESPONSE, REQUEST))
    waiting = str(uuid.uuid4())
    assert post_event(sink_lab.port, REQUEST, waiting, "mnist", request_body(), t0)[0] == 202
    container.stop(timeout=15)  # SIGTERM: the waiting request is produced, then a flush
    assert container.wait(timeout=30)["StatusCode"] == 0
    assert [r["value"] for r in sink_lab.records(topic, waiting)] == [
        expected(done, "all", stamp_ns=t0, status=200, latency=2.5),
        expected(waiting, "all", stamp_ns=t0, status=None, latency=None, version="1",
                 predictions=None),
    ]


@pytest.mark.parametrize(
    "doc",
    [
        {"listen": "127.0.0.1:1"},  # no services
        {"listen": "nowhere", "services": {}},
        {"listen": "127.0.0.1:1", "services": {"mnist": {"serving": "s", "model": "m",
                                                        "topic": "t", "mode": "request"}}},
        {"listen": "127.0.0.1:1", "pairSeconds": 0, "services": {}},
        {"listen": "127.0.0.1:1", "services": {"mnist": dict(service("t", "all"), version=2)}},
    ],
)
def test_a_sink_json_that_cannot_be_used_exits_2(tmp_path: Path, doc: dict[str, Any]):
    config = tmp_path / "sink.json"
    config.write_text(json.dumps(doc))
    proc = subprocess.run([sys.executable, str(SINK_PY), "--config", str(config)],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    assert str(config) in proc.stderr
