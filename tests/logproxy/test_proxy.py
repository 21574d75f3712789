"""declserve's front proxy (declserve/logproxy/proxy.py, on aiohttp) against REAL containers and
the REAL Kafka broker.

The replicas are containers of the TensorFlow Serving TEST DOUBLE image (the real
tensorflow/serving image cannot be pulled here; see testinfra/tfserving-double/), serving a
registry-shaped model directory (Models/mnist/<v>/saved_model.pb + variables/) from a tmp dir
with a model config file, like the Docker backend runs them. The proxy runs in its own image
(declserve/logproxy), with host networking, its config directory bind-mounted read-only,
listening on a free 127.0.0.1 port. Records are read back from the broker with a real consumer
and validated against schema/inference-record.schema.json.

Each double answers ``:predict`` with the sum of each instance's numbers times its model
version, and says which version answered (``model_version``), so the tests can tell the
replicas apart: replica A serves version 1, replica B version 2. (Where both must count as READY
for the proxy, the proxy's model config file pins no version: ``model_config_version=None``.)

Containers and topics made here are named ``fp-...`` and labelled io.declserve.test=frontproxy;
each test removes its own.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
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
LABEL = {"io.declserve.test": "frontproxy"}
MODEL = "mnist"
INSTANCES = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]  # double: sums 6 and 15, times the version

TOPIC_MAX_MESSAGE_BYTES = 2097152  # the proxy's default maxRecordBytes
MAX_REQUEST_BYTES = 1048576  # the proxy's default maxRequestBytes

VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


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


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
):
    """One HTTP request to 127.0.0.1:port; (status, headers dict (lower-case), body bytes)."""
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
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


def predict(
    port: int, instances: Any = INSTANCES, path: str = f"/v1/models/{MODEL}:predict", **kw: Any
):
    return call(port, "POST", path, {"instances": instances}, **kw)


def container_logs(container: Any) -> str:
    try:
        return container.logs().decode("utf-8", "replace")[-4000:]
    except Exception as exc:  # noqa: BLE001
        return f"(no logs: {exc!r})"


class Lab:
    """Containers and files of one test; everything is removed at teardown."""

    def __init__(
        self, tmp: Path, docker_client: Any, double_image: str, proxy_image: str, broker: Any
    ) -> None:
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
            command=[
                "--port=8500",
                "--rest_api_port=8501",
                "--model_config_file=/etc/declserve/models.config",
                "--model_config_file_poll_wait_seconds=0",
            ],
            mounts=[
                Mount(f"/models/{MODEL}", str(self.models / MODEL), type="bind", read_only=True),
                Mount("/etc/declserve", str(conf), type="bind", read_only=True),
            ],
            ports={"8501/tcp": ("127.0.0.1", None)},
            labels=LABEL,
            name=f"fp-double-{uuid.uuid4().hex[:8]}",
            detach=True,
        )
        self.containers.append(container)
        port = published_port(container, 8501)

        def available() -> bool:
            status, _, body = call(port, "GET", f"/v1/models/{MODEL}", timeout=5)
            states = json.loads(body).get("model_version_status", []) if status == 200 else []
            return any(s["version"] == str(version) and s["state"] == "AVAILABLE" for s in states)

        wait_until(
            available,
            timeout=60,
            interval=0.2,
            message=lambda: f"double v{version} not AVAILABLE:\n{container_logs(container)}",
        )
        return container, f"http://127.0.0.1:{port}"

    # ---------------------------------------------------------------- topic and records
    def topic(self, max_message_bytes: int = TOPIC_MAX_MESSAGE_BYTES) -> str:
        """A new topic, created as the lead's Docker backend creates them: max.message.bytes
        is the proxy's maxRecordBytes."""
        name = f"fp-{uuid.uuid4().hex[:10]}"
        admin = self.broker.admin()  # kept referenced until the future resolves
        new = NewTopic(name, 1, 1, config={"max.message.bytes": str(max_message_bytes)})
        futures = admin.create_topics([new], operation_timeout=30)
        futures[name].result(timeout=60)
        del admin
        return name

    def records(self, topic: str, expected: int, timeout: float = 30.0) -> list[dict]:
        """Every record on the topic, once at least `expected` have arrived (polled with a
        deadline), in offset order, as {"key", "value" (parsed JSON), "raw"}."""
        consumer = Consumer(
            self.broker.client_config(
                **{
                    "group.id": f"fp-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
        )
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
                        out.append(
                            {
                                "key": msg.key().decode() if msg.key() else None,
                                "raw": msg.value(),
                                "value": json.loads(msg.value()),
                            }
                        )
                return len(out) >= expected

            wait_until(
                enough,
                timeout=timeout,
                interval=0,
                message=lambda: f"{len(out)} of {expected} record(s) on {topic}: {out}",
            )
            return out
        finally:
            consumer.close()

    def high_watermark(self, topic: str) -> int:
        consumer = Consumer(self.broker.client_config(**{"group.id": "fp-wm"}))
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
        finally:
            consumer.close()

    # ---------------------------------------------------------------- the proxy
    def proxy_config(
        self,
        *,
        mode: str,
        topic: str,
        upstreams: list[str] | None,
        model_config_version: int | None = 1,
        port: int | None = None,
        directory: Path | None = None,
        in_container: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> tuple[Path, int]:
        conf = directory or self.tmp / f"proxy-{uuid.uuid4().hex[:6]}"
        conf.mkdir(exist_ok=True)
        port = port or free_port()
        base = "/etc/declserve" if in_container else str(conf)
        doc = {
            "serving": "demo-mnist",
            "model": MODEL,
            "listen": f"127.0.0.1:{port}",
            "topic": topic,
            "mode": mode,
            "bootstrap": self.broker.bootstrap,
            "upstreamsFile": f"{base}/upstreams.json",
            "modelConfigFile": f"{base}/models.config",
            **(extra or {}),
        }
        (conf / "proxy.json").write_text(
            json.dumps({k: v for k, v in doc.items() if v is not None})
        )
        if upstreams is not None:
            write_upstreams(conf, upstreams)
        if model_config_version is not None:
            (conf / "models.config").write_text(model_config(model_config_version))
        return conf, port

    def proxy(
        self,
        *,
        mode: str = "all",
        topic: str | None,
        upstreams: list[str] | None,
        model_config_version: int | None = 1,
        extra: dict[str, Any] | None = None,
    ) -> tuple[Any, int, Path]:
        """A running proxy container; (container, port, config dir)."""
        conf, port = self.proxy_config(
            mode=mode,
            topic=topic,
            upstreams=upstreams,
            model_config_version=model_config_version,
            extra=extra,
        )
        container = self.docker.containers.run(
            self.proxy_image,
            command=["python3", "/app/proxy.py", "--config", "/etc/declserve/proxy.json"],
            network_mode="host",
            mounts=[Mount("/etc/declserve", str(conf), type="bind", read_only=True)],
            labels=LABEL,
            name=f"fp-proxy-{uuid.uuid4().hex[:8]}",
            detach=True,
        )
        self.containers.append(container)
        self.wait_healthy(port, lambda: container_logs(container))
        return container, port, conf

    def host_proxy(
        self, *, mode: str, topic: str, upstreams: list[str]
    ) -> tuple[subprocess.Popen, int, Path]:
        """The proxy as a host process (the host's confluent-kafka 2.x, not the image's 1.7)."""
        conf, port = self.proxy_config(
            mode=mode, topic=topic, upstreams=upstreams, in_container=False
        )
        log = open(conf / "proxy.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, str(PROXY_PY), "--config", str(conf / "proxy.json")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(proc)
        self.wait_healthy(port, lambda: (conf / "proxy.log").read_text(errors="replace")[-4000:])
        return proc, port, conf

    @staticmethod
    def wait_healthy(port: int, logs) -> dict:
        def healthy():
            status, _, body = call(port, "GET", "/-/healthz", timeout=2)
            return json.loads(body) if status == 200 else None

        return wait_until(
            healthy,
            timeout=30,
            interval=0.1,
            message=lambda: f"proxy on 127.0.0.1:{port} not healthy:\n{logs()}",
        )

    @staticmethod
    def stats(port: int) -> dict:
        status, _, body = call(port, "GET", "/-/stats", timeout=5)
        assert status == 200, body
        return json.loads(body)

    def upstream_state(self, port: int, url: str) -> str | None:
        return next((u["state"] for u in self.stats(port)["upstreams"] if u["url"] == url), None)

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


class Load:
    """A client sending :predict requests one after the other, without pause, each on a new
    connection, from a thread; counts answers and failures."""

    def __init__(self, port: int, expect_version: str | None = None) -> None:
        self.port, self.expect_version = port, expect_version
        self.ok = 0
        self.failures: list[str] = []
        self.versions: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, _, body = predict(self.port, timeout=30)
                if status != 200:
                    self.failures.append(f"{status}: {body[:300]!r}")
                    continue
                version = json.loads(body)["model_version"]
                self.versions[version] = self.versions.get(version, 0) + 1
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                self.failures.append(repr(exc))

    def more(self, n: int, timeout: float = 60) -> None:
        """Wait until `n` more requests have been answered."""
        target = self.ok + n
        wait_until(
            lambda: self.ok >= target,
            timeout=timeout,
            interval=0.05,
            message=lambda: f"{self.ok}/{target} answered; failures {self.failures[:5]}",
        )

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive()
        return self.ok + len(self.failures)


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


def check_record(
    rec: dict,
    *,
    mode: str,
    request_id: str,
    status: int,
    version: str | None,
    inputs: Any = None,
    predictions: Any = None,
) -> None:
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
    age = (datetime.datetime.now(datetime.UTC) - when).total_seconds()
    assert -5 < age < 300, f"timestamp {stamp} is not about now (UTC)"
    expected_keys = {
        "serving",
        "model",
        "modelVersion",
        "requestId",
        "timestamp",
        "statusCode",
        "latencyMs",
        "mode",
    }
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
def lab(
    tmp_path: Path,
    docker_client: Any,
    tfs_double_image: str,
    logproxy_image: str,
    kafka_bootstrap: str,
    kafka_broker: Any,
):
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
    base = {
        "serving": "s",
        "model": "m",
        "modelVersion": "1",
        "requestId": "r",
        "timestamp": "2026-11-25T08:30:00.123Z",
        "statusCode": 200,
        "latencyMs": 1.0,
    }
    ok = [
        dict(base, mode="all", inputs=[1], predictions=[2]),
        dict(base, mode="model-inputs", inputs=None),
        dict(base, mode="predictions", predictions=None, modelVersion=None),
    ]
    bad = [
        dict(base, mode="all", inputs=[1]),  # predictions missing
        dict(base, mode="all", predictions=[1]),  # inputs missing
        dict(base, mode="model-inputs", inputs=1, predictions=None),  # excluded, even null
        dict(base, mode="predictions", predictions=1, inputs=None),
        dict(base, mode="all", inputs=1, predictions=2, extra=1),  # additionalProperties
        dict(base, mode="all", inputs=1, predictions=2, statusCode="200"),
        dict(base, mode="all", inputs=1, predictions=2, timestamp="2026-11-25 08:30:00"),
        dict(base, mode="other", inputs=1, predictions=2),
        {
            k: v
            for k, v in dict(base, mode="predictions", predictions=1).items()
            if k != "requestId"
        },
    ]
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
    assert (
        json.loads(body)
        == json.loads(direct[2])
        == {"predictions": [6.0, 15.0], "model_version": "1"}
    )
    assert body == direct[2]
    assert headers["x-request-id"] == "client-id-1"
    assert headers["content-type"] == direct[1]["content-type"]
    # 2. an upstream error (a bad instance), versioned path, no request id: a new uuid4
    status2, headers2, body2 = call(
        port, "POST", f"/v1/models/{MODEL}/versions/1:predict", {"instances": ["not-a-number"]}
    )
    assert status2 == 400, body2
    assert "error" in json.loads(body2) and "model_version" not in json.loads(body2)
    generated = headers2["x-request-id"]
    assert uuid.UUID(generated).version == 4
    # 3. columnar format ("inputs" -> "outputs")
    status3, headers3, body3 = call(
        port, "POST", f"/v1/models/{MODEL}:predict", {"inputs": [[1, 1], [2, 2]]}
    )
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
    check_record(
        by_key["client-id-1"],
        mode=mode,
        request_id="client-id-1",
        status=200,
        version="1",
        inputs=INSTANCES,
        predictions=[6.0, 15.0],
    )
    # no model_version in the error body: the version comes from the model config file
    check_record(
        by_key[generated],
        mode=mode,
        request_id=generated,
        status=400,
        version="1",
        inputs=["not-a-number"],
        predictions=None,
    )
    third = headers3["x-request-id"]
    check_record(
        by_key[third],
        mode=mode,
        request_id=third,
        status=200,
        version="1",
        inputs=[[1, 1], [2, 2]],
        predictions=outputs,
    )


def test_model_version_is_null_without_a_version_anywhere(lab: Lab):
    """An error answer (no model_version) and no model config file: modelVersion is null."""
    _, upstream = lab.replica(1)
    topic = lab.topic()
    proxy, port, _ = lab.proxy(
        mode="predictions", topic=topic, upstreams=[upstream], model_config_version=None
    )
    status, headers, body = predict(port, path="/v1/models/no-such-model:predict")
    assert status == 404, body
    proxy.stop(timeout=15)
    [rec] = lab.records(topic, expected=1)
    check_record(
        rec,
        mode="predictions",
        request_id=headers["x-request-id"],
        status=404,
        version=None,
        predictions=None,
    )


def test_upstreams_file_is_reread_and_replicas_take_turns(lab: Lab):
    _, a = lab.replica(1)
    _, b = lab.replica(2)
    topic = lab.topic()
    # No pinned version: both replicas are READY (any AVAILABLE version).
    proxy, port, conf = lab.proxy(topic=topic, upstreams=[a], model_config_version=None)
    assert json.loads(predict(port)[2])["model_version"] == "1"

    write_upstreams(conf, [b])  # atomic replace, as a deployer would do it
    # The very next request waits for the new replica's first health check: no 503.
    answers = [json.loads(predict(port)[2]) for _ in range(3)]
    assert answers == [{"predictions": [12.0, 30.0], "model_version": "2"}] * 3, (
        "the next requests after the switch go to the new replica"
    )

    write_upstreams(conf, [a, b], atomic=False)  # rewritten in place: size/mtime change
    assert json.loads(call(port, "GET", "/-/healthz")[2])["upstreams"] == 2
    wait_until(
        lambda: (
            json.loads(call(port, "GET", "/-/healthz")[2])
            == {"ok": True, "upstreams": 2, "ready": 2}
        ),
        timeout=10,
    )
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
    proxy, port, conf = lab.proxy(topic=topic, upstreams=[dead, alive], model_config_version=None)
    for _ in range(4):  # every request, whichever replica its turn starts at
        status, _, body = predict(port)
        assert status == 200, body
        assert json.loads(body)["model_version"] == "2"
    assert lab.upstream_state(port, dead) == "down"
    assert lab.upstream_state(port, alive) == "ready"

    # All replicas down: 503 with a JSON error naming each one's state, and still one record.
    write_upstreams(conf, [dead])
    status, headers, body = predict(port)
    error = json.loads(body)["error"]
    assert status == 503 and "no ready upstream" in error and dead in error, body
    # No replicas at all: 503 with a JSON error; a missing file is the same.
    write_upstreams(conf, [])
    status, _, body = predict(port)
    assert status == 503 and "no upstreams" in json.loads(body)["error"]
    (conf / "upstreams.json").unlink()
    status, _, body = call(port, "GET", f"/v1/models/{MODEL}")
    assert status == 503 and json.loads(body)["error"]
    assert json.loads(call(port, "GET", "/-/healthz")[2]) == {
        "ok": True,
        "upstreams": 0,
        "ready": 0,
    }

    proxy.stop(timeout=15)
    records = lab.records(topic, expected=6)
    assert [r["value"]["statusCode"] for r in records] == [200] * 4 + [503, 503]
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
            status, _, body = predict(
                port, headers={"X-Request-Id": f"during-outage-{i}"}, timeout=10
            )
            elapsed = time.monotonic() - t0
            assert status == 200 and json.loads(body)["predictions"] == [6.0, 15.0]
            assert elapsed < 2.0, f"a request took {elapsed:.2f}s with the broker down"
        assert json.loads(call(port, "GET", "/-/healthz")[2])["ok"] is True
    finally:
        kafka_broker.start()
    # The records queued during a short outage are delivered once the broker is back.
    records = lab.records(topic, expected=4, timeout=60)
    assert [r["key"] for r in records] == ["before-outage"] + [
        f"during-outage-{i}" for i in range(3)
    ]
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
    check_record(
        rec, mode="model-inputs", request_id="last-words", status=200, version="1", inputs=INSTANCES
    )
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
        assert {k: v for k, v in via[1].items() if k not in strip} == {
            k: v for k, v in direct[1].items() if k not in strip
        }, (method, path)
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
    check_record(
        rec,
        mode="all",
        request_id=headers["x-request-id"],
        status=200,
        version="2",
        inputs=[[1, 2]],
        predictions=[6.0],
    )


# ------------------------------------------------------------------------------------------
# front proxy: readiness, retries, replacement, mode none, limits, drain
# ------------------------------------------------------------------------------------------


def test_mode_none_forwards_without_a_producer(lab: Lab):
    """mode none: no topic, no Kafka at all (no producer, even with a bootstrap configured)."""
    _, upstream = lab.replica(1)
    proxy, port, _ = lab.proxy(mode="none", topic=None, upstreams=[upstream])
    status, headers, body = predict(port, headers={"X-Request-Id": "no-log-1"})
    assert status == 200 and json.loads(body) == {"predictions": [6.0, 15.0], "model_version": "1"}
    assert headers["x-request-id"] == "no-log-1"
    stats = lab.stats(port)
    assert stats["mode"] == "none" and stats["producer"] is False
    assert stats["requests"] == 1 and stats["recordsQueued"] == 0
    assert stats["upstreams"] == [
        {"url": upstream, "state": "ready", "reason": "version 1 AVAILABLE"}
    ]
    proxy.kill(signal="SIGTERM")
    assert proxy.wait(timeout=30)["StatusCode"] == 0
    logs = container_logs(proxy)
    assert "kafka" not in logs.lower() and "mode none" in logs, logs


def test_readiness_follows_the_pinned_version(lab: Lab):
    """READY = the pinned version AVAILABLE; a replica without it is used only when no replica
    is READY (during a version bump the old version keeps answering)."""
    _, v1 = lab.replica(1)
    _, v2 = lab.replica(2)
    topic = lab.topic()
    proxy, port, conf = lab.proxy(
        mode="predictions", topic=topic, upstreams=[v1, v2], model_config_version=2
    )
    wait_until(lambda: lab.upstream_state(port, v1) == "stale", timeout=10)
    assert lab.upstream_state(port, v2) == "ready"
    assert [json.loads(predict(port)[2])["model_version"] for _ in range(4)] == ["2"] * 4
    write_upstreams(conf, [v1])  # only the replica without the pinned version: still answers
    status, _, body = predict(port)
    assert status == 200 and json.loads(body)["model_version"] == "1"
    (conf / "models.config").write_text(model_config(1))  # now v1 is the pinned one
    wait_until(lambda: lab.upstream_state(port, v1) == "ready", timeout=10)
    proxy.stop(timeout=15)


def test_a_replica_replaced_under_load_fails_no_request(lab: Lab):
    """A replica replaced three times while a client sends without pause: twice with an
    overlap (the new one added to upstreams.json, then the old one removed, then stopped),
    once in one step (the list rewritten to the new one only). 0 failed requests, and one
    record per request on the topic."""
    old_container, old = lab.replica(1)
    topic = lab.topic()
    proxy, port, conf = lab.proxy(mode="all", topic=topic, upstreams=[old])
    with Load(port) as load:
        load.more(20)
        for overlap in (True, True, False):
            new_container, new = lab.replica(1)
            if overlap:
                write_upstreams(conf, [old, new])
                wait_until(lambda new=new: lab.upstream_state(port, new) == "ready", timeout=10)
                load.more(20)
            write_upstreams(conf, [new])
            wait_until(
                lambda new=new: (
                    lab.stats(port)["upstreams"]
                    == [{"url": new, "state": "ready", "reason": "version 1 AVAILABLE"}]
                ),
                timeout=10,
            )
            load.more(5)
            old_container.stop(timeout=10)  # the old replica goes away
            load.more(20)
            old_container, old = new_container, new
        sent = load.stop()
    assert load.failures == [], load.failures[:10]
    assert sent == load.ok >= 100
    assert lab.stats(port)["requests"] == sent
    proxy.stop(timeout=15)
    assert lab.high_watermark(topic) == sent, "one record per request"
    print(f"replica replaced 3 times under load: {sent} requests, 0 failed, {sent} records")


@pytest.mark.parametrize("how", ["pause", "stop"])
def test_an_upstream_that_stops_answering_is_taken_out_of_rotation(lab: Lab, how: str):
    """Paused (connections hang) or stopped (refused) under load: the proxy marks it down and
    retries on the other replica; 0 failed requests. Back again: back in rotation."""
    gone, a = lab.replica(1)
    _, b = lab.replica(1)
    proxy, port, conf = lab.proxy(mode="none", topic=None, upstreams=[a, b])
    wait_until(lambda: lab.stats(port)["upstreams"][0]["state"] == "ready", timeout=10)
    with Load(port) as load:
        load.more(20)
        t0 = time.monotonic()
        gone.pause() if how == "pause" else gone.stop(timeout=10)
        wait_until(lambda: lab.upstream_state(port, a) == "down", timeout=10)
        noticed = time.monotonic() - t0
        load.more(30)
        gone.unpause() if how == "pause" else gone.start()
        if how == "stop":  # a new published port: the deployer rewrites upstreams.json
            a = f"http://127.0.0.1:{published_port(gone, 8501)}"
            write_upstreams(conf, [a, b])
        wait_until(lambda: lab.upstream_state(port, a) == "ready", timeout=60)
        load.more(20)
        sent = load.stop()
    assert load.failures == [], load.failures[:10]
    assert sent >= 70
    assert noticed < 5, f"the proxy took {noticed:.1f}s to take the replica out"
    retries = lab.stats(port)["retries"]
    assert retries >= (1 if how == "pause" else 0)
    proxy.stop(timeout=15)
    print(
        f"upstream {how} under load: {sent} requests, 0 failed, {retries} retried, "
        f"taken out after {noticed:.2f}s"
    )


def test_502_when_every_ready_upstream_refuses(lab: Lab):
    """A replica still READY for the proxy (checked once an hour here) that refuses the
    connection: tried, marked down at once (so not tried again), 502; the next request 503."""
    gone, a = lab.replica(1)
    proxy, port, _ = lab.proxy(
        mode="none", topic=None, upstreams=[a], extra={"healthIntervalSeconds": 3600}
    )
    wait_until(lambda: lab.upstream_state(port, a) == "ready", timeout=10)
    gone.stop(timeout=10)
    status, _, body = predict(port)
    assert status == 502, body
    assert "no upstream answered" in json.loads(body)["error"] and a in json.loads(body)["error"]
    assert lab.upstream_state(port, a) == "down"
    status, _, body = predict(port)
    assert status == 503 and "no ready upstream" in json.loads(body)["error"]


def test_504_when_the_answer_takes_too_long(lab: Lab):
    """A READY replica that stops answering (paused; health-checked once an hour here, so it
    stays in rotation): 504 with a JSON error after upstreamTimeoutSeconds."""
    replica, upstream = lab.replica(1)
    proxy, port, _ = lab.proxy(
        mode="none",
        topic=None,
        upstreams=[upstream],
        extra={"healthIntervalSeconds": 3600, "upstreamTimeoutSeconds": 1},
    )
    wait_until(lambda: lab.upstream_state(port, upstream) == "ready", timeout=10)
    replica.pause()
    try:
        t0 = time.monotonic()
        status, _, body = predict(port, timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        replica.unpause()
    assert status == 504, body
    assert "no answer within 1s" in json.loads(body)["error"]
    assert 0.9 < elapsed < 10, elapsed
    assert predict(port)[0] == 200


def big_instances(target: int) -> list[list[float]]:
    """Instances whose JSON (compact) takes about `target` bytes."""
    row = [1.5] * 100  # "[1.5,...]" = 401 bytes, plus a comma
    rows = max(target // 402, 1)
    return [row] * rows


def test_request_limit_413_and_the_stats(lab: Lab):
    """A request just under maxRequestBytes: answered, its record on the real broker (topic
    max.message.bytes = 2097152). Just over it, or a chunked body over it: 413 with a JSON
    error, counted, never forwarded, no record."""
    _, upstream = lab.replica(1)
    topic = lab.topic()
    proxy, port, _ = lab.proxy(mode="all", topic=topic, upstreams=[upstream])
    near = big_instances(MAX_REQUEST_BYTES - 4096)
    near_json = json.dumps(near, separators=(",", ":"))
    assert MAX_REQUEST_BYTES - 8192 < len(near_json) <= MAX_REQUEST_BYTES
    status, headers, body = call(
        port,
        "POST",
        f"/v1/models/{MODEL}:predict",
        json.dumps({"instances": near}, separators=(",", ":")).encode(),
        headers={"X-Request-Id": "near-the-limit"},
    )
    assert status == 200, body
    predictions = json.loads(body)["predictions"]
    assert len(predictions) == len(near)

    over = json.dumps({"instances": big_instances(2_000_000)}).encode()
    assert len(over) > 2 * MAX_REQUEST_BYTES * 0.9
    status, headers, body = call(
        port,
        "POST",
        f"/v1/models/{MODEL}:predict",
        over,
        headers={"X-Request-Id": "over-the-limit"},
    )
    assert status == 413, body
    error = json.loads(body)["error"]
    assert "too large" in error and str(MAX_REQUEST_BYTES) in error, error
    assert headers["x-request-id"] == "over-the-limit"

    # Chunked (no Content-Length): refused the same way once the body passes the limit.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            f"/v1/models/{MODEL}:predict",
            body=iter([over[i : i + 65536] for i in range(0, len(over), 65536)]),
            headers={"Content-Type": "application/json", "X-Request-Id": "chunked-over"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        assert resp.status == 413 and "too large" in json.loads(resp.read())["error"]
    finally:
        conn.close()

    wait_until(
        lambda: lab.stats(port)["recordsProduced"] == 1,
        timeout=30,
        message=lambda: f"stats: {lab.stats(port)}\n{container_logs(proxy)}",
    )
    stats = lab.stats(port)
    assert stats["requests"] == 3 and stats["requestsTooLarge"] == 2
    assert stats["recordsQueued"] == 1
    assert stats["recordsFailed"] == {
        "tooLarge": 0,
        "queueFull": 0,
        "deliveryError": 0,
        "noBroker": 0,
    }
    proxy.stop(timeout=15)
    [rec] = lab.records(topic, expected=1)
    assert lab.high_watermark(topic) == 1
    assert len(rec["raw"]) > MAX_REQUEST_BYTES - 8192
    check_record(
        rec,
        mode="all",
        request_id="near-the-limit",
        status=200,
        version="1",
        inputs=near,
        predictions=predictions,
    )
    logs = container_logs(proxy)
    assert "request over-the-limit refused" in logs, logs


def test_a_record_the_topic_refuses_is_counted_and_logged(lab: Lab):
    """A topic created with a smaller max.message.bytes than the proxy's maxRecordBytes: the
    broker refuses the record; the client still gets its answer, the failure is counted
    (tooLarge) and logged once with the reason."""
    _, upstream = lab.replica(1)
    topic = lab.topic(max_message_bytes=100_000)
    proxy, port, _ = lab.proxy(mode="model-inputs", topic=topic, upstreams=[upstream])
    status, _, _ = predict(
        port, instances=big_instances(300_000), headers={"X-Request-Id": "refused-by-the-topic"}
    )
    assert status == 200
    # (Only once it is refused: the broker refuses a whole batch, so a record produced within
    # linger.ms of it would share its fate -- and be counted too.)
    wait_until(
        lambda: lab.stats(port)["recordsFailed"]["tooLarge"] == 1,
        timeout=60,
        message=lambda: f"stats: {lab.stats(port)}\n{container_logs(proxy)}",
    )
    status, _, _ = predict(port, headers={"X-Request-Id": "small-one"})
    assert status == 200
    wait_until(
        lambda: (
            lab.stats(port)["recordsFailed"]["tooLarge"] == 1
            and lab.stats(port)["recordsProduced"] == 1
        ),
        timeout=60,
        message=lambda: f"stats: {lab.stats(port)}\n{container_logs(proxy)}",
    )
    logs = container_logs(proxy)
    lines = [
        line
        for line in logs.splitlines()
        if "refused-by-the-topic" in line and "not produced" in line
    ]
    assert len(lines) == 1 and "tooLarge" in lines[0], logs
    proxy.stop(timeout=15)
    [rec] = lab.records(topic, expected=1)
    assert rec["key"] == "small-one"


def predict_in_background(port: int, request_id: str) -> tuple[threading.Thread, dict[str, Any]]:
    """One :predict from a thread; the dict gets its "answer" or its "error"."""
    result: dict[str, Any] = {}

    def client() -> None:
        try:
            result["answer"] = predict(port, headers={"X-Request-Id": request_id}, timeout=60)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            result["error"] = exc

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    return thread, result


def request_waiting_on_a_paused_replica(lab: Lab, drain_seconds: float, request_id: str):
    """A logging proxy whose one replica is paused while a :predict waits for its answer:
    (replica, topic, proxy, port, thread, result); the replica is unpaused if this fails."""
    replica, upstream = lab.replica(1)
    topic = lab.topic()
    proxy, port, _ = lab.proxy(
        mode="all",
        topic=topic,
        upstreams=[upstream],
        extra={"healthIntervalSeconds": 3600, "drainSeconds": drain_seconds},
    )
    wait_until(lambda: lab.upstream_state(port, upstream) == "ready", timeout=10)
    replica.pause()
    try:
        thread, result = predict_in_background(port, request_id)
        wait_until(lambda: lab.stats(port)["inFlight"] == 1, timeout=10)
    except BaseException:
        replica.unpause()
        raise
    return replica, topic, proxy, port, thread, result


def test_sigterm_drains_a_request_in_flight(lab: Lab):
    """SIGTERM while a request waits for its (paused) replica: the proxy stops accepting
    connections at once, the request still gets its answer when the replica resumes, its
    record is flushed, exit 0."""
    replica, topic, proxy, port, thread, result = request_waiting_on_a_paused_replica(
        lab, 8, "in-flight")
    proxy.kill(signal="SIGTERM")

    def refused() -> bool:
        try:
            call(port, "GET", "/-/healthz", timeout=2)
        except ConnectionRefusedError:
            return True
        return False

    wait_until(refused, timeout=10)
    assert thread.is_alive() and not result
    replica.unpause()
    thread.join(timeout=30)
    assert "error" not in result, result
    status, headers, body = result["answer"]
    assert status == 200 and json.loads(body)["predictions"] == [6.0, 15.0]
    assert proxy.wait(timeout=30)["StatusCode"] == 0, container_logs(proxy)
    logs = container_logs(proxy)
    assert "SIGTERM: stopping" in logs and "undelivered=0" in logs, logs
    [rec] = lab.records(topic, expected=1)
    check_record(
        rec,
        mode="all",
        request_id="in-flight",
        status=200,
        version="1",
        inputs=INSTANCES,
        predictions=[6.0, 15.0],
    )


def test_logging_mode_changes_under_load_by_rewriting_proxy_json(lab: Lab):
    """proxy.json rewritten while a client sends without pause: all -> predictions (another
    topic) -> none -> model-inputs. 0 failed requests, the same address throughout; each
    topic holds only records of its mode, one per request sent while that mode ran."""
    _, upstream = lab.replica(1)
    first, second, third = lab.topic(), lab.topic(), lab.topic()
    proxy, port, conf = lab.proxy(mode="all", topic=first, upstreams=[upstream])
    doc = json.loads((conf / "proxy.json").read_text())

    def switch(mode: str, topic: str | None) -> None:
        new = {**doc, "mode": mode, "topic": topic}
        tmp = conf / ".proxy.json.tmp"
        tmp.write_text(json.dumps({k: v for k, v in new.items() if v is not None}))
        os.replace(tmp, conf / "proxy.json")
        wait_until(
            lambda: (lab.stats(port)["mode"], lab.stats(port)["topic"]) == (mode, topic),
            timeout=10,
            message=lambda: container_logs(proxy),
        )

    with Load(port) as load:
        load.more(20)
        switch("predictions", second)
        load.more(20)
        switch("none", None)
        assert lab.stats(port)["producer"] is False
        load.more(20)
        switch("model-inputs", third)
        load.more(20)
        sent = load.stop()
    assert load.failures == [], load.failures[:10]
    stats = wait_until(
        lambda: (lambda st: st if st["recordsProduced"] == st["recordsQueued"] else None)(
            lab.stats(port)
        ),
        timeout=30,
    )
    assert stats["requests"] == sent and stats["recordsFailed"] == {
        "tooLarge": 0,
        "queueFull": 0,
        "deliveryError": 0,
        "noBroker": 0,
    }
    proxy.stop(timeout=15)
    counts = {}
    for topic, mode in ((first, "all"), (second, "predictions"), (third, "model-inputs")):
        counts[mode] = lab.high_watermark(topic)
        records = lab.records(topic, expected=counts[mode])
        assert len(records) >= 20, (mode, len(records))
        for rec in records:
            check_record(
                rec,
                mode=mode,
                request_id=rec["key"],
                status=200,
                version="1",
                inputs=INSTANCES,
                predictions=[6.0, 15.0],
            )
    assert sum(counts.values()) == stats["recordsQueued"] == stats["recordsProduced"]
    assert sum(counts.values()) <= sent - 20, "no record while mode none ran"
    print(f"mode changes under load: {sent} requests, 0 failed, records {counts}")


def test_sigterm_drain_is_bounded(lab: Lab):
    """A request whose replica never answers does not hold the proxy up: after drainSeconds
    it gives up on it (logged) and exits 0."""
    replica, topic, proxy, port, thread, result = request_waiting_on_a_paused_replica(
        lab, 1, "never-answered")
    try:
        t0 = time.monotonic()
        proxy.kill(signal="SIGTERM")
        assert proxy.wait(timeout=30)["StatusCode"] == 0, container_logs(proxy)
        elapsed = time.monotonic() - t0
        thread.join(timeout=30)
    finally:
        replica.unpause()
    assert 1.0 <= elapsed < 6, f"stopping took {elapsed:.1f}s"
    assert "error" in result, result  # the connection was closed without an answer
    logs = container_logs(proxy)
    assert "1 request(s) still in progress after 1s; not waiting" in logs, logs
    assert lab.high_watermark(topic) == 0
