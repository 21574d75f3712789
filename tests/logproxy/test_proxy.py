"""The inference-logging proxy (declserve/logproxy/proxy.py) against REAL containers and the REAL
Kafka broker.

The replicas are containers of the TensorFlow Serving TEST DOUBLE image (the real
tensorflow/serving image cannot be pulled here; see testinfra/tfserving-double/), serving a
registry-shaped model directory (Models/mnist/<v>/saved_model.pb + variables/) from a tmp dir
with a model config file, like the Docker backend runs them. The proxy runs in its own image
(declserve/logproxy), with host networking, its config directory bind-mounted read-only,
listening on a free 127.0.0.1 port. Records are read back from the broker with a real consumer
and validated against schema/inference-record.schema.json.

Each double answers ``:predict`` with the sum of each instance's numbers times its model
version, and says which version answered (``model_version``), so the tests can tell the
replicas apart: replica A serves version 1, replica B version 2.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic
from docker.types import Mount

from tests.fixtures.docker_engine import free_port, published_port
from tests.fixtures.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
PROXY_PY = ROOT / "declserve" / "logproxy" / "proxy.py"
SCHEMA = json.loads((ROOT / "schema" / "inference-record.schema.json").read_text())
REGISTRY = ROOT / "tests" / "data" / "registry" / "Models" / "mnist"
LABEL = {"io.declserve.test": "logproxy"}
MODEL = "mnist"
INSTANCES = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]  # double: sums 6 and 15, times the version

VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def model_config(version: int) -> str:
    """The model config file as the Docker backend writes it (declserve/backends/tfserving)."""
    return (
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{MODEL}"\n'
        f'    base_path: "/models/{MODEL}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ versions: {version} }} }}\n"
        "  }\n"
        "}\n"
    )


def call(port: int, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None, timeout: float = 30.0):
    """One HTTP request to 127.0.0.1:port; (status, headers dict (lower-case), body bytes)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def predict(port: int, instances: Any = INSTANCES, path: str = f"/v1/models/{MODEL}:predict",
            **kw: Any):
    return call(port, "POST", path, {"instances": instances}, **kw)


def container_logs(container: Any) -> str:
    try:
        return container.logs().decode("utf-8", "replace")[-4000:]
    except Exception as exc:  # noqa: BLE001
        return f"(no logs: {exc!r})"


class Lab:
    """Containers and files of one test; everything is removed at teardown."""

    def __init__(self, tmp: Path, docker_client: Any, double_image: str, proxy_image: str,
                 broker: Any) -> None:
        self.tmp, self.docker, self.broker = tmp, docker_client, broker
        self.double_image, self.proxy_image = double_image, proxy_image
        self.containers: list[Any] = []
        self.processes: list[subprocess.Popen] = []
        self.models = tmp / "Models"
        for version in (1, 2):  # registry layout: Models/mnist/<v>/{saved_model.pb,variables/}
            shutil.copytree(REGISTRY / str(version), self.models / MODEL / str(version))
            assert (self.models / MODEL / str(version) / "saved_model.pb").is_file()
            assert (self.models / MODEL / str(version) / "variables").is_dir()

    # ---------------------------------------------------------------- replicas (the double)
    def replica(self, version: int) -> tuple[Any, str]:
        """A running double serving mnist version `version`; (container, upstream URL)."""
        conf = self.tmp / f"double-{uuid.uuid4().hex[:6]}"
        conf.mkdir()
        (conf / "models.config").write_text(model_config(version))
        container = self.docker.containers.run(
            self.double_image,
            entrypoint=["tensorflow_model_server"],
            command=["--port=8500", "--rest_api_port=8501",
                     "--model_config_file=/etc/declserve/models.config",
                     "--model_config_file_poll_wait_seconds=0"],
            mounts=[Mount(f"/models/{MODEL}", str(self.models / MODEL), type="bind", read_only=True),
                    Mount("/etc/declserve", str(conf), type="bind", read_only=True)],
            ports={"8501/tcp": ("127.0.0.1", None)},
            labels=LABEL, name=f"logproxy-test-double-{uuid.uuid4().hex[:8]}", detach=True)
        self.containers.append(container)
        port = published_port(container, 8501)

        def available() -> bool:
            status, _, body = call(port, "GET", f"/v1/models/{MODEL}", timeout=5)
            states = json.loads(body).get("model_version_status", []) if status == 200 else []
            return any(s["version"] == str(version) and s["state"] == "AVAILABLE" for s in states)

        wait_until(available, timeout=60, interval=0.2,
                   message=lambda: f"double v{version} not AVAILABLE:\n{container_logs(container)}")
        return container, f"http://127.0.0.1:{port}"

    # ---------------------------------------------------------------- topic and records
    def topic(self) -> str:
        name = f"logproxy-test-{uuid.uuid4().hex[:10]}"
        admin = self.broker.admin()  # kept referenced until the future resolves
        futures = admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=30)
        futures[name].result(timeout=60)
        del admin
        return name

    def records(self, topic: str, expected: int, timeout: float = 30.0) -> list[dict]:
        """Every record on the topic, once at least `expected` have arrived (polled with a
        deadline), in offset order, as {"key", "value" (parsed JSON), "raw"}."""
        consumer = Consumer(self.broker.client_config(**{
            "group.id": f"logproxy-test-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out: list[dict] = []
        try:
            def enough() -> bool:
                msg = consumer.poll(0.5)
                if msg is not None:
                    if msg.error():
                        if msg.error().code() != KafkaError._PARTITION_EOF:
                            raise AssertionError(f"consumer error: {msg.error()}")
                    else:
                        out.append({"key": msg.key().decode() if msg.key() else None,
                                    "raw": msg.value(), "value": json.loads(msg.value())})
                return len(out) >= expected

            wait_until(enough, timeout=timeout, interval=0,
                       message=lambda: f"{len(out)} of {expected} record(s) on {topic}: {out}")
            return out
        finally:
            consumer.close()

    def high_watermark(self, topic: str) -> int:
        consumer = Consumer(self.broker.client_config(**{"group.id": "logproxy-test-wm"}))
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
        finally:
            consumer.close()

    # ---------------------------------------------------------------- the proxy
    def proxy_config(self, *, mode: str, topic: str, upstreams: list[str] | None,
                     model_config_version: int | None = 1, port: int | None = None,
                     directory: Path | None = None, in_container: bool = True) -> tuple[Path, int]:
        conf = directory or self.tmp / f"proxy-{uuid.uuid4().hex[:6]}"
        conf.mkdir(exist_ok=True)
        port = port or free_port()
        base = "/etc/declserve" if in_container else str(conf)
        (conf / "proxy.json").write_text(json.dumps({
            "serving": "demo-mnist", "model": MODEL, "listen": f"127.0.0.1:{port}",
            "topic": topic, "mode": mode, "bootstrap": self.broker.bootstrap,
            "upstreamsFile": f"{base}/upstreams.json",
            "modelConfigFile": f"{base}/models.config"}))
        if upstreams is not None:
            write_upstreams(conf, upstreams)
        if model_config_version is not None:
            (conf / "models.config").write_text(model_config(model_config_version))
        return conf, port

    def proxy(self, *, mode: str = "all", topic: str, upstreams: list[str] | None,
              model_config_version: int | None = 1) -> tuple[Any, int, Path]:
        """A running proxy container; (container, port, config dir)."""
        conf, port = self.proxy_config(mode=mode, topic=topic, upstreams=upstreams,
                                       model_config_version=model_config_version)
        container = self.docker.containers.run(
            self.proxy_image,
            command=["python3", "/app/proxy.py", "--config", "/etc/declserve/proxy.json"],
            network_mode="host",
            mounts=[Mount("/etc/declserve", str(conf), type="bind", read_only=True)],
            labels=LABEL, name=f"logproxy-test-proxy-{uuid.uuid4().hex[:8]}", detach=True)
        self.containers.append(container)
        self.wait_healthy(port, lambda: container_logs(container))
        return container, port, conf

    def host_proxy(self, *, mode: str, topic: str, upstreams: list[str]) -> tuple[subprocess.Popen, int, Path]:
        """The proxy as a host process (the host's confluent-kafka 2.x, not the image's 1.7)."""
        conf, port = self.proxy_config(mode=mode, topic=topic, upstreams=upstreams,
                                       in_container=False)
        log = open(conf / "proxy.log", "wb")
        proc = subprocess.Popen([sys.executable, str(PROXY_PY), "--config", str(conf / "proxy.json")],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.processes.append(proc)
        self.wait_healthy(port, lambda: (conf / "proxy.log").read_text(errors="replace")[-4000:])
        return proc, port, conf

    @staticmethod
    def wait_healthy(port: int, logs) -> dict:
        def healthy():
            status, _, body = call(port, "GET", "/-/healthz", timeout=2)
            return json.loads(body) if status == 200 else None

        return wait_until(healthy, timeout=30, interval=0.1,
                          message=lambda: f"proxy on 127.0.0.1:{port} not healthy:\n{logs()}")

    def cleanup(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
        for container in self.containers:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass


def write_upstreams(conf: Path, upstreams: list[str], *, atomic: bool = True) -> None:
    text = json.dumps({"upstreams": upstreams})
    target = conf / "upstreams.json"
    if atomic:
        tmp = conf / ".upstreams.json.tmp"
        tmp.write_text(text)
        os.replace(tmp, target)
    else:
        with open(target, "w") as f:
            f.write(text)


def check_record(rec: dict, *, mode: str, request_id: str, status: int,
                 version: str | None, inputs: Any = None, predictions: Any = None) -> None:
    """A record: valid against the schema, the fields of its mode and none it excludes."""
    value = rec["value"]
    errors = [e.message for e in VALIDATOR.iter_errors(value)]
    assert not errors, f"record does not match the schema: {errors}\n{value}"
    assert rec["key"] == request_id
    assert value["requestId"] == request_id
    assert value["serving"] == "demo-mnist" and value["model"] == MODEL
    assert value["mode"] == mode
    assert value["statusCode"] == status and isinstance(value["statusCode"], int)
    assert value["modelVersion"] == version
    assert isinstance(value["latencyMs"], float) and value["latencyMs"] >= 0
    stamp = value["timestamp"]
    assert stamp.endswith("Z") and len(stamp) == len("2026-11-25T08:30:00.123Z"), stamp
    when = datetime.datetime.fromisoformat(stamp)
    assert when.utcoffset() == datetime.timedelta(0)
    age = (datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()
    assert -5 < age < 300, f"timestamp {stamp} is not about now (UTC)"
    expected_keys = {"serving", "model", "modelVersion", "requestId", "timestamp", "statusCode",
                     "latencyMs", "mode"}
    if mode in ("all", "model-inputs"):
        expected_keys.add("inputs")
        assert value["inputs"] == inputs
    if mode in ("all", "predictions"):
        expected_keys.add("predictions")
        assert value["predictions"] == predictions
    assert set(value) == expected_keys, f"{mode}: fields {sorted(value)}"


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------

@pytest.fixture
def lab(tmp_path: Path, docker_client: Any, tfs_double_image: str, logproxy_image: str,
        kafka_bootstrap: str, kafka_broker: Any):
    lab = Lab(tmp_path, docker_client, tfs_double_image, logproxy_image, kafka_broker)
    try:
        yield lab
    finally:
        lab.cleanup()


# ------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------

def test_schema_is_valid_draft_2020_12_and_encodes_the_mode_rules():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["additionalProperties"] is False
    base = {"serving": "s", "model": "m", "modelVersion": "1", "requestId": "r",
            "timestamp": "2026-11-25T08:30:00.123Z", "statusCode": 200, "latencyMs": 1.0}
    ok = [dict(base, mode="all", inputs=[1], predictions=[2]),
          dict(base, mode="model-inputs", inputs=None),
          dict(base, mode="predictions", predictions=None, modelVersion=None)]
    bad = [dict(base, mode="all", inputs=[1]),                         # predictions missing
           dict(base, mode="all", predictions=[1]),                    # inputs missing
           dict(base, mode="model-inputs", inputs=1, predictions=None),  # excluded, even null
           dict(base, mode="predictions", predictions=1, inputs=None),
           dict(base, mode="all", inputs=1, predictions=2, extra=1),   # additionalProperties
           dict(base, mode="all", inputs=1, predictions=2, statusCode="200"),
           dict(base, mode="all", inputs=1, predictions=2, timestamp="2026-11-25 08:30:00"),
           dict(base, mode="other", inputs=1, predictions=2),
           {k: v for k, v in dict(base, mode="predictions", predictions=1).items() if k != "requestId"}]
    assert [list(VALIDATOR.iter_errors(r)) for r in ok] == [[], [], []]
    assert all(list(VALIDATOR.iter_errors(r)) for r in bad)


@pytest.mark.parametrize("mode", ["all", "model-inputs", "predictions"])
def test_one_record_per_predict_with_the_fields_of_its_mode(lab: Lab, mode: str):
    _, upstream = lab.replica(1)
    topic = lab.topic()
    proxy, port, _ = lab.proxy(mode=mode, topic=topic, upstreams=[upstream])

    # 1. a good :predict, with the client's request id: the upstream's answer, unchanged
    status, headers, body = predict(port, headers={"X-Request-Id": "client-id-1"})
    direct = predict(int(upstream.rsplit(":", 1)[1]))
    assert status == 200, body
    assert json.loads(body) == json.loads(direct[2]) == {"predictions": [6.0, 15.0],
                                                         "model_version": "1"}
    assert body == direct[2]
    assert headers["x-request-id"] == "client-id-1"
    assert headers["content-type"] == direct[1]["content-type"]
    # 2. an upstream error (a bad instance), versioned path, no request id: a new uuid4
    status2, headers2, body2 = call(port, "POST", f"/v1/models/{MODEL}/versions/1:predict",
                                    {"instances": ["not-a-number"]})
    assert status2 == 400, body2
    assert "error" in json.loads(body2) and "model_version" not in json.loads(body2)
    generated = headers2["x-request-id"]
    assert uuid.UUID(generated).version == 4
    # 3. columnar format ("inputs" -> "outputs")
    status3, headers3, body3 = call(port, "POST", f"/v1/models/{MODEL}:predict",
                                    {"inputs": [[1, 1], [2, 2]]})
    assert status3 == 200, body3
    outputs = json.loads(body3)["outputs"]
    # 4. requests that are not :predict are forwarded but not logged
    status4, _, body4 = call(port, "GET", f"/v1/models/{MODEL}")
    assert status4 == 200 and json.loads(body4)["model_version_status"][0]["state"] == "AVAILABLE"
    assert call(port, "GET", f"/v1/models/{MODEL}/metadata")[0] == 200

    # Stop the proxy (SIGTERM flushes), so the topic holds everything it will ever get.
    proxy.stop(timeout=15)
    records = lab.records(topic, expected=3)
    assert lab.high_watermark(topic) == 3, "exactly one record per :predict, none for GETs"
    assert len(records) == 3
    by_key = {r["key"]: r for r in records}
    assert len(by_key) == 3
    check_record(by_key["client-id-1"], mode=mode, request_id="client-id-1", status=200,
                 version="1", inputs=INSTANCES, predictions=[6.0, 15.0])
    # no model_version in the error body: the version comes from the model config file
    check_record(by_key[generated], mode=mode, request_id=generated, status=400, version="1",
                 inputs=["not-a-number"], predictions=None)
    third = headers3["x-request-id"]
    check_record(by_key[third], mode=mode, request_id=third, status=200, version="1",
                 inputs=[[1, 1], [2, 2]], predictions=outputs)


def test_model_version_is_null_without_a_version_anywhere(lab: Lab):
    """An error answer (no model_version) and no model config file: modelVersion is null."""
    _, upstream = lab.replica(1)
    topic = lab.topic()
    proxy, port, _ = lab.proxy(mode="predictions", topic=topic, upstreams=[upstream],
                               model_config_version=None)
    status, headers, body = predict(port, path="/v1/models/no-such-model:predict")
    assert status == 404, body
    proxy.stop(timeout=15)
    [rec] = lab.records(topic, expected=1)
    check_record(rec, mode="predictions", request_id=headers["x-request-id"], status=404,
                 version=None, predictions=None)


def test_upstreams_file_is_reread_and_replicas_take_turns(lab: Lab):
    _, a = lab.replica(1)
    _, b = lab.replica(2)
    topic = lab.topic()
    proxy, port, conf = lab.proxy(topic=topic, upstreams=[a])
    assert json.loads(predict(port)[2])["model_version"] == "1"

    write_upstreams(conf, [b])  # atomic replace, as a deployer would do it
    answers = [json.loads(predict(port)[2]) for _ in range(3)]
    assert answers == [{"predictions": [12.0, 30.0], "model_version": "2"}] * 3, \
        "the next requests after the switch go to the new replica"

    write_upstreams(conf, [a, b], atomic=False)  # rewritten in place: size/mtime change
    assert json.loads(call(port, "GET", "/-/healthz")[2]) == {"ok": True, "upstreams": 2}
    versions = [json.loads(predict(port)[2])["model_version"] for _ in range(6)]
    assert sorted(versions) == ["1", "1", "1", "2", "2", "2"], f"round robin: {versions}"
    assert all(versions[i] != versions[i + 1] for i in range(5)), f"round robin: {versions}"

    # The record names the version that really answered (from the response).
    proxy.stop(timeout=15)
    records = lab.records(topic, expected=10)
    assert [r["value"]["modelVersion"] for r in records] == ["1", "2", "2", "2"] + versions


def test_an_upstream_that_is_down_is_skipped(lab: Lab):
    down, dead = lab.replica(1)
    _, alive = lab.replica(2)
    down.stop(timeout=10)
    with pytest.raises(OSError):
        call(int(dead.rsplit(":", 1)[1]), "GET", "/v1/models/mnist", timeout=5)
    topic = lab.topic()
    proxy, port, conf = lab.proxy(topic=topic, upstreams=[dead, alive])
    for _ in range(4):  # every request, whichever replica its turn starts at
        status, _, body = predict(port)
        assert status == 200, body
        assert json.loads(body)["model_version"] == "2"

    # All replicas down: 502 with a JSON error, and still one record with that status.
    write_upstreams(conf, [dead])
    status, headers, body = predict(port)
    assert status == 502 and "no upstream answered" in json.loads(body)["error"]
    # No replicas at all: 503 with a JSON error; a missing file is the same.
    write_upstreams(conf, [])
    status, _, body = predict(port)
    assert status == 503 and "no upstreams" in json.loads(body)["error"]
    (conf / "upstreams.json").unlink()
    status, _, body = call(port, "GET", f"/v1/models/{MODEL}")
    assert status == 503 and json.loads(body)["error"]
    assert json.loads(call(port, "GET", "/-/healthz")[2]) == {"ok": True, "upstreams": 0}

    proxy.stop(timeout=15)
    records = lab.records(topic, expected=6)
    assert [r["value"]["statusCode"] for r in records] == [200] * 4 + [502, 503]
    assert records[4]["key"] == headers["x-request-id"]
    assert records[4]["value"]["predictions"] is None
    assert lab.high_watermark(topic) == 6


def test_broker_down_the_client_still_gets_its_answer(lab: Lab, kafka_broker: Any):
    _, upstream = lab.replica(1)
    topic = lab.topic()
    proxy, port, _ = lab.proxy(topic=topic, upstreams=[upstream])
    status, _, _ = predict(port, headers={"X-Request-Id": "before-outage"})
    assert status == 200
    lab.records(topic, expected=1)  # the producer is connected and delivering

    kafka_broker.stop()
    try:
        assert not kafka_broker.running()
        for i in range(3):
            t0 = time.monotonic()
            status, _, body = predict(port, headers={"X-Request-Id": f"during-outage-{i}"},
                                      timeout=10)
            elapsed = time.monotonic() - t0
            assert status == 200 and json.loads(body)["predictions"] == [6.0, 15.0]
            assert elapsed < 2.0, f"a request took {elapsed:.2f}s with the broker down"
        assert json.loads(call(port, "GET", "/-/healthz")[2])["ok"] is True
    finally:
        kafka_broker.start()
    # The records queued during a short outage are delivered once the broker is back.
    records = lab.records(topic, expected=4, timeout=60)
    assert [r["key"] for r in records] == ["before-outage"] + [f"during-outage-{i}" for i in range(3)]
    proxy.reload()
    assert proxy.status == "running", container_logs(proxy)


def test_sigterm_flushes_and_exits_0_promptly(lab: Lab):
    _, upstream = lab.replica(1)
    topic = lab.topic()
    proxy, port, _ = lab.proxy(mode="model-inputs", topic=topic, upstreams=[upstream])
    status, _, _ = predict(port, headers={"X-Request-Id": "last-words"})
    assert status == 200
    t0 = time.monotonic()
    proxy.kill(signal="SIGTERM")  # no sleep in between: the record must still be flushed
    result = proxy.wait(timeout=30)
    elapsed = time.monotonic() - t0
    assert result["StatusCode"] == 0, container_logs(proxy)
    assert elapsed < 5.0, f"stopping took {elapsed:.1f}s"
    logs = container_logs(proxy)
    assert "SIGTERM: stopping" in logs and "undelivered=0" in logs, logs
    [rec] = lab.records(topic, expected=1)
    check_record(rec, mode="model-inputs", request_id="last-words", status=200, version="1",
                 inputs=INSTANCES)
    with pytest.raises(OSError):
        call(port, "GET", "/-/healthz", timeout=5)


def test_request_forwarding_keeps_method_path_query_body_and_headers(lab: Lab):
    """Through the proxy, a replica answers exactly as it does directly (status, body, headers
    apart from hop-by-hop ones and Date), also for errors and non-predict methods."""
    _, upstream = lab.replica(1)
    direct_port = int(upstream.rsplit(":", 1)[1])
    topic = lab.topic()
    _, port, _ = lab.proxy(topic=topic, upstreams=[upstream])
    cases = [
        ("GET", f"/v1/models/{MODEL}?x=1", None),
        ("GET", f"/v1/models/{MODEL}/versions/1/metadata", None),
        ("GET", "/v1/models/unknown", None),
        ("POST", f"/v1/models/{MODEL}:classify", {"examples": []}),
        ("POST", f"/v1/models/{MODEL}/versions/7:predict", {"instances": [[1]]}),
        ("DELETE", f"/v1/models/{MODEL}", None),
        ("POST", f"/v1/models/{MODEL}:predict", b"{not json"),
    ]
    for method, path, body in cases:
        via = call(port, method, path, body)
        direct = call(direct_port, method, path, body)
        assert via[0] == direct[0], (method, path, via, direct)
        assert via[2] == direct[2], (method, path)
        strip = {"date", "x-request-id", "connection", "keep-alive"}
        assert {k: v for k, v in via[1].items() if k not in strip} == \
            {k: v for k, v in direct[1].items() if k not in strip}, (method, path)
        assert via[1]["x-request-id"]


def test_host_run_with_the_hosts_confluent_kafka(lab: Lab):
    """The same proxy.py runs on the host's Python with confluent-kafka 2.x (the image has 1.7)."""
    import confluent_kafka

    assert confluent_kafka.version()[0].split(".")[0] == "2"
    _, upstream = lab.replica(2)
    topic = lab.topic()
    proc, port, _ = lab.host_proxy(mode="all", topic=topic, upstreams=[upstream])
    status, headers, body = predict(port, instances=[[1, 2]])
    assert status == 200 and json.loads(body)["predictions"] == [6.0]
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    [rec] = lab.records(topic, expected=1)
    check_record(rec, mode="all", request_id=headers["x-request-id"], status=200, version="2",
                 inputs=[[1, 2]], predictions=[6.0])
