#!/usr/bin/env python3
"""declserve's inference-logging sink for KServe servings.

KServe's logger (the ``agent`` sidecar of an InferenceService whose ``spec.predictor.logger``
points here; kserve/pkg/logger/handler.go and worker.go) POSTs every request to the model
server and/or its answer as a CloudEvent in binary HTTP mode:

    ce-specversion 1.0, ce-id (the request's Ce-Id header, else a new UUID: the same for a
    request and its response), ce-type org.kubeflow.serving.inference.request | .response,
    ce-source, ce-time (the request's arrival at the agent | the moment the model server's
    whole answer was in), ce-recordedtime, ce-inferenceservicename, ce-namespace,
    ce-component, ce-endpoint, ce-metadata (JSON), optional ce-annotations, Content-Type (the
    REQUEST's Content-Type, on both events); body: the request or answer body unchanged.

Which events come depends on the logger's mode: request, response or all (declserve's
model-inputs, predictions, all). A response is logged only when the model server answered
200. Each worker sends on its own, so a response may arrive before its request.

The sink produces ONE record per logged request, the same as declserve/logproxy/proxy.py
produces (key = the request id, format ``schema/inference-record.schema.json``), to the
topic of the InferenceService: mode predictions from the response event, mode model-inputs
from the request event, mode all from both, joined by ce-id. A request and a response that
do not find their other half within pairSeconds are produced with what arrived (counted,
recordsUnpaired); so are those still waiting at SIGTERM. timestamp is the request's ce-time
(the response's when only the response is logged; the arrival at the sink when the event has
no ce-time); latencyMs the response's ce-time less the request's, null unless both are
known; statusCode 200 when the response arrived (KServe logs no other), null when only the
request did; modelVersion the response's model_version, else the service's pinned version.

The agent logs every request it proxies, not only :predict ones, and its events carry no
path: a request event with an empty body (a GET, e.g. model status) and a response event that
is not a JSON object with "predictions" or "outputs" (e.g. the status answer) are not of a
:predict; they are answered 202 and ignored (eventsIgnored), in mode all with their other
half.

Runs as ``python3 /app/sink.py --config /etc/declserve/sink.json`` in the front proxy's image
(beside proxy.py, whose code it reuses) and as ``python3 declserve/logproxy/sink.py --config
...`` from a checkout.

sink.json (keys with a default are optional)::

    listen           "HOST:PORT", required   where the sink listens
    bootstrap        str, default none: Kafka bootstrap servers; without it records are not
                     produced (counted as failed, reason noBroker)
    maxRecordBytes   int, default 2097152 (2 MiB): the topics' max.message.bytes, as in
                     proxy.json; an event body larger is refused 413 (its record counted as
                     failed, reason tooLarge), so is a record larger less 1 KiB of framing
    flushSeconds     float, default 3: SIGTERM flushes the producer this long at most
    drainSeconds     float, default 5: SIGTERM waits this long at most for events in progress
    pairSeconds      float, default 10: how long an event waits for its other half (mode all)
    services         object, required: InferenceService name -> {
                         "serving" str, "model" str, "topic" str,
                         "mode" "all" | "model-inputs" | "predictions",
                         "version" str of digits or null (default null): the pinned version,
                         the record's modelVersion when the response has no model_version}

sink.json is re-read when it changes (checked every 0.5 s); every key but listen takes effect
from the next event on (a changed bootstrap or maxRecordBytes gets a new producer, the old one
is flushed); a file that does not parse keeps the running settings.

HTTP: ``POST`` (any path but /-/...) takes one event: 202 when it is accepted (producing is
asynchronous), 400 when it is not a binary-mode CloudEvent of one of the two types, 404 when
its ce-inferenceservicename is not in services, 413 when its body is larger than
maxRecordBytes (each counted in eventsRejected by reason). ``GET /-/ready`` 200 and
``GET /-/stats`` (the proxy's counters, ``requests`` counting events, plus the sink's own).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import re
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:  # mypy sees the checkout's module
    import declserve.logproxy.proxy as proxy
else:  # the sink runs beside proxy.py (in /app in the image, or in the checkout)
    import proxy


REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
CONFIG_CHECK_SECONDS = 0.5
DEFAULT_PAIR_SECONDS = 10.0
REJECT_REASONS = ("notCloudEvent", "unknownService", "tooLarge")
# ce-time as the CloudEvents SDK for Go writes it (RFC 3339, up to nanoseconds).
CE_TIME = re.compile(r"^(\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)$")
VERSION = re.compile(r"^[0-9]+$")

_SINK_NUMBERS = {  # sink.json key: (SinkConfig field, integer?)
    "maxRecordBytes": ("max_record_bytes", True),
    "flushSeconds": ("flush_seconds", False),
    "drainSeconds": ("drain_seconds", False),
    "pairSeconds": ("pair_seconds", False),
}


# ------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Service:
    serving: str
    model: str
    topic: str
    mode: str
    version: str | None


@dataclasses.dataclass(frozen=True)
class SinkConfig:
    host: str
    port: int
    bootstrap: str | None
    services: Mapping[str, Service]
    max_record_bytes: int = proxy.DEFAULT_MAX_RECORD_BYTES
    flush_seconds: float = 3.0
    drain_seconds: float = 5.0
    pair_seconds: float = DEFAULT_PAIR_SECONDS

    def recorder_config(self) -> proxy.Config:
        """The settings of the proxy's Recorder (its topic is given per record)."""
        return proxy.Config(serving="kserve-sink", model="-", host=self.host, port=self.port,
                      mode="all", topic=None, bootstrap=self.bootstrap, upstreams_file="",
                      model_config_file=None, max_record_bytes=self.max_record_bytes,
                      flush_seconds=self.flush_seconds)


def parse_service(name: str, doc: Any, path: str) -> Service:
    where = f"{path}: services.{name}"
    if not isinstance(doc, dict):
        raise proxy.ConfigError(f"{where} must be an object")
    fields = {k: proxy._string(doc, k, where, required=True) or ""
              for k in ("serving", "model", "topic", "mode")}
    if fields["mode"] not in proxy.LOGGING_MODES:
        modes = ", ".join(proxy.LOGGING_MODES)
        raise proxy.ConfigError(f"{where}: 'mode' must be one of {modes}, "
                          f"not {fields['mode']!r}")
    version = doc.get("version")
    if version is not None and (not isinstance(version, str) or not VERSION.match(version)):
        raise proxy.ConfigError(f"{where}: 'version' must be a string of digits or null, "
                          f"not {version!r}")
    return Service(version=version, **fields)


def parse_sink_config(doc: Any, path: str) -> SinkConfig:
    if not isinstance(doc, dict):
        raise proxy.ConfigError(f"{path}: the sink config must be a JSON object")
    host, port = proxy._listen(proxy._string(doc, "listen", path, required=True) or "", path)
    services = doc.get("services")
    if not isinstance(services, dict):
        raise proxy.ConfigError(f"{path}: 'services' must be an object (InferenceService name: "
                          "{serving, model, topic, mode, version})")
    return SinkConfig(
        host=host, port=port, bootstrap=proxy._string(doc, "bootstrap", path, required=False),
        services={name: parse_service(name, item, path) for name, item in services.items()},
        **proxy._numbers(doc, path, _SINK_NUMBERS))  # type: ignore[arg-type]


def load_sink_config(path: str) -> SinkConfig:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise proxy.ConfigError(f"cannot read the sink config {path}: {e}") from e
    return parse_sink_config(doc, path)


# ------------------------------------------------------------------------------------------
# Events and records
# ------------------------------------------------------------------------------------------

def parse_ce_time(value: str | None) -> float | None:
    """Epoch seconds of an RFC 3339 ce-time; None when absent or not one."""
    match = CE_TIME.match((value or "").strip())
    if match is None:
        return None
    base, fraction, zone = match.groups()
    text = base + "." + (fraction or "0")[:6].ljust(6, "0") + ("+00:00" if zone in "Zz" else zone)
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


@dataclasses.dataclass
class Event:
    body: bytes
    ce_time: float | None  # the event's ce-time, epoch seconds
    arrived: float  # time.time() at the sink

    @property
    def time(self) -> float:
        return self.ce_time if self.ce_time is not None else self.arrived


def is_predict(kind: str, body: bytes) -> bool:
    """False for the events of a request that is not a :predict (see the module doc)."""
    if kind == REQUEST_TYPE:
        return bool(body.strip())
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and ("predictions" in doc or "outputs" in doc)


def record_of(svc: Service, request_id: str, request: Event | None,
              response: Event | None) -> bytes:
    """The record of one request, from the events that arrived (at least one)."""
    first = request or response
    assert first is not None
    version = proxy.response_version(response.body) if response is not None else None
    latency = None
    if request is not None and request.ce_time is not None and response is not None \
            and response.ce_time is not None:
        latency = round(max(response.ce_time - request.ce_time, 0.0) * 1000.0, 3)
    fields: proxy.JSON = {
        "serving": svc.serving,
        "model": svc.model,
        "modelVersion": version or svc.version,
        "requestId": request_id,
        "timestamp": proxy.rfc3339_ms(first.time),
        "statusCode": 200 if response is not None else None,
        "latencyMs": latency,
        "mode": svc.mode,
    }
    members: dict[str, str] = {}
    if svc.mode in ("all", "model-inputs"):
        inputs = proxy.json_member(request.body, "instances", "inputs") if request else None
        members["inputs"] = proxy.dumps(inputs)
    if svc.mode in ("all", "predictions"):
        predictions = proxy.json_member(response.body, "predictions", "outputs") \
            if response else None
        members["predictions"] = proxy.dumps(predictions)
    return proxy.record_value(fields, members)


@dataclasses.dataclass
class Pending:
    """A request of mode all of which one event has arrived."""

    svc: Service
    request: Event | None = None
    response: Event | None = None
    dropped: bool = False  # not a :predict, or too large: no record
    timer: asyncio.TimerHandle | None = None


class SinkStats(proxy.Stats):
    def __init__(self) -> None:
        super().__init__()
        self.events_rejected = dict.fromkeys(REJECT_REASONS, 0)
        self.events_ignored = 0
        self.records_unpaired = 0

    def rejected(self, reason: str) -> None:
        with self._lock:
            self.events_rejected[reason] += 1

    def snapshot(self) -> proxy.JSON:
        snap = super().snapshot()
        with self._lock:
            return {**snap, "eventsRejected": dict(self.events_rejected),
                    "eventsIgnored": self.events_ignored,
                    "recordsUnpaired": self.records_unpaired}


# ------------------------------------------------------------------------------------------
# The sink
# ------------------------------------------------------------------------------------------

class Sink:
    def __init__(self, cfg: SinkConfig, config_path: str | None = None) -> None:
        self.cfg = cfg
        self.stats = SinkStats()
        self.recorder = proxy.Recorder(cfg.recorder_config(), self.stats)
        self.retired: list[proxy.Recorder] = []
        self.pending: dict[tuple[str, str], Pending] = {}
        self._config_file = proxy.WatchedFile(config_path)
        self._config_file.changed()
        self._tasks: list[asyncio.Task[None]] = []
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def start(self) -> None:
        self._tasks.append(asyncio.ensure_future(self.watch_config()))

    # ---------------------------------------------------------------- sink.json changes
    async def watch_config(self) -> None:
        while True:
            await asyncio.sleep(CONFIG_CHECK_SECONDS)
            changed, text = self._config_file.changed()
            if changed and text is not None:
                self.reload(text)

    def reload(self, text: str) -> None:
        path = self._config_file.path or "sink.json"
        try:
            new = parse_sink_config(json.loads(text), path)
        except (ValueError, proxy.ConfigError) as e:
            proxy.log(f"{path} changed but cannot be used ({e}); keeping the running settings")
            return
        if (new.host, new.port) != (self.cfg.host, self.cfg.port):
            proxy.log(f"{path}: listen changed; that takes a restart, kept as it is")
            new = dataclasses.replace(new, host=self.cfg.host, port=self.cfg.port)
        if new == self.cfg:
            return
        old, self.cfg = self.cfg, new
        proxy.log(f"{path} re-read: services {', '.join(sorted(new.services)) or '(none)'}")
        if (old.bootstrap, old.max_record_bytes) != (new.bootstrap, new.max_record_bytes):
            self.retired.append(self.recorder)
            self.recorder = proxy.Recorder(new.recorder_config(), self.stats)
            self._tasks.append(asyncio.ensure_future(self.retire(self.retired[-1])))

    async def retire(self, recorder: proxy.Recorder) -> None:
        await asyncio.get_running_loop().run_in_executor(None, recorder.close,
                                                         recorder.cfg.flush_seconds)
        self.retired.remove(recorder)

    # ---------------------------------------------------------------- HTTP
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path.startswith("/-/"):
            return self.own_endpoint(request)
        if request.method != "POST":
            return proxy.json_response(405, {"error": "POST CloudEvents here"}, "-")
        self.inflight += 1
        self.idle.clear()
        try:
            return await self.event(request)
        finally:
            self.inflight -= 1
            if not self.inflight:
                self.idle.set()

    def own_endpoint(self, request: web.BaseRequest) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            return proxy.json_response(405, {"error": "GET only"}, "-")
        if request.path == "/-/ready":
            return proxy.json_response(200, {"ok": True}, "-")
        if request.path == "/-/stats":
            doc = {**self.stats.snapshot(), "inFlight": self.inflight,
                   "pending": len(self.pending), "producer": self.recorder.producer is not None,
                   "maxRecordBytes": self.cfg.max_record_bytes,
                   "services": {name: dataclasses.asdict(svc)
                                for name, svc in self.cfg.services.items()}}
            return proxy.json_response(200, doc, "-")
        return proxy.json_response(404, {"error": f"no endpoint {request.path}"}, "-")

    def refuse(self, status: int, reason: str, message: str, request_id: str) -> web.Response:
        self.stats.rejected(reason)
        proxy.log(f"event refused ({reason}): {message}")
        return proxy.json_response(status, {"error": message}, request_id)

    async def event(self, request: web.BaseRequest) -> web.Response:
        arrived = time.time()
        self.stats.add("requests")
        cfg = self.cfg
        headers = request.headers
        request_id = headers.get("ce-id", "").strip()
        kind = headers.get("ce-type", "").strip()
        if not headers.get("ce-specversion") or not request_id or not headers.get("ce-source") \
                or kind not in (REQUEST_TYPE, RESPONSE_TYPE):
            return self.refuse(400, "notCloudEvent", (
                "not a binary-mode CloudEvent of KServe's logger: ce-specversion, ce-id, "
                f"ce-source and ce-type {REQUEST_TYPE} or {RESPONSE_TYPE} are required"),
                request_id or "-")
        name = headers.get("ce-inferenceservicename", "")
        svc = cfg.services.get(name)
        if svc is None:
            return self.refuse(404, "unknownService",
                               f"InferenceService {name!r} is not served by this sink "
                               f"(ce-id {request_id})", request_id)
        body = await proxy.read_body(request, cfg.max_record_bytes)
        too_large = not body.complete or len(body.data) > cfg.max_record_bytes
        wanted = kind == REQUEST_TYPE and svc.mode in ("all", "model-inputs") \
            or kind == RESPONSE_TYPE and svc.mode in ("all", "predictions")
        if not wanted:  # the InferenceService logs more than its declserve mode keeps
            self.stats.add("events_ignored")
        elif svc.mode == "all":
            self.pair(svc, name, request_id, kind, body.data, too_large,
                      Event(body.data, parse_ce_time(headers.get("ce-time")), arrived))
        elif too_large:
            self.stats.failed("tooLarge", f"record {request_id}: the event body is larger "
                                          f"than maxRecordBytes {cfg.max_record_bytes}")
        elif not is_predict(kind, body.data):
            self.stats.add("events_ignored")
        else:
            one = Event(body.data, parse_ce_time(headers.get("ce-time")), arrived)
            self.produce(svc, request_id, one if kind == REQUEST_TYPE else None,
                         one if kind == RESPONSE_TYPE else None)
        if too_large:
            self.stats.add("requests_too_large")
            return self.refuse(413, "tooLarge", f"event {request_id}: the body is larger than "
                                                f"maxRecordBytes {cfg.max_record_bytes}",
                               request_id)
        return web.Response(status=202)

    # ---------------------------------------------------------------- pairing (mode all)
    def pair(self, svc: Service, name: str, request_id: str, kind: str, body: bytes,
             too_large: bool, event: Event) -> None:
        key = (name, request_id)
        entry = self.pending.get(key)
        if entry is None:
            entry = self.pending[key] = Pending(svc)
            entry.timer = asyncio.get_running_loop().call_later(
                self.cfg.pair_seconds, self.expire, key)
        if too_large and not entry.dropped:
            self.stats.failed("tooLarge", f"record {request_id}: an event body is larger "
                                          f"than maxRecordBytes {self.cfg.max_record_bytes}")
            entry.dropped = True
        elif not too_large and not is_predict(kind, body) and not entry.dropped:
            self.stats.add("events_ignored")
            entry.dropped = True
        if kind == REQUEST_TYPE:
            entry.request = entry.request or event  # a repeated event changes nothing
        else:
            entry.response = entry.response or event
        if entry.request is not None and entry.response is not None:
            self.finish(key, unpaired=False)

    def expire(self, key: tuple[str, str]) -> None:
        self.finish(key, unpaired=True)

    def finish(self, key: tuple[str, str], *, unpaired: bool) -> None:
        entry = self.pending.pop(key, None)
        if entry is None:
            return
        if entry.timer is not None:
            entry.timer.cancel()
        if entry.dropped:
            return
        if unpaired:
            self.stats.add("records_unpaired")
            half = "request" if entry.request is not None else "response"
            proxy.log(f"record {key[1]} of {key[0]}: only its {half} arrived within "
                f"{self.cfg.pair_seconds:g}s (unpaired)")
        self.produce(entry.svc, key[1], entry.request, entry.response)

    def finish_all(self) -> None:
        for key in list(self.pending):
            self.finish(key, unpaired=True)

    def produce(self, svc: Service, request_id: str, request: Event | None,
                response: Event | None) -> None:
        try:
            value = record_of(svc, request_id, request, response)
        except Exception as e:  # noqa: BLE001 - one bad event must not stop the sink
            proxy.log(f"record {request_id} not made: {e!r}")
            return
        self.recorder.send(request_id, value, svc.topic)

    def close_recorders(self) -> int:
        return sum(max(r.close(self.cfg.flush_seconds), 0)
                   for r in [*self.retired, self.recorder])

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# ------------------------------------------------------------------------------------------
# Process
# ------------------------------------------------------------------------------------------

async def serve(cfg: SinkConfig, config_path: str | None = None) -> int:
    loop = asyncio.get_running_loop()
    sink = Sink(cfg, config_path)
    stop = proxy.stop_on_signals()
    server = web.Server(sink.handle)
    listener = await proxy.listen(server, cfg.host, cfg.port)
    if listener is None:
        sink.close_recorders()
        return 1
    sink.start()
    proxy.log(f"KServe logging sink on {cfg.host}:{cfg.port}, bootstrap {cfg.bootstrap}, "
        f"services {', '.join(sorted(cfg.services)) or '(none)'}")
    await stop.wait()
    listener.close()
    try:
        await asyncio.wait_for(sink.idle.wait(), timeout=sink.cfg.drain_seconds)
    except TimeoutError:
        proxy.log(f"{sink.inflight} event(s) still in progress after "
                  f"{sink.cfg.drain_seconds:g}s")
    await server.shutdown(0.5)
    await sink.close()
    sink.finish_all()  # what still waits for its other half is produced as it is
    left = await loop.run_in_executor(None, sink.close_recorders)
    snap = sink.stats.snapshot()
    proxy.log(f"stopped; events={snap['requests']} records produced={snap['recordsProduced']} "
        f"failed={sum(snap['recordsFailed'].values())} undelivered={max(left, 0)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return proxy.run(argv, "declserve's logging sink for KServe", "/etc/declserve/sink.json",
                     load_sink_config, serve)


if __name__ == "__main__":
    sys.exit(main())
