#!/usr/bin/env python3
"""declserve's front proxy for one serving, with or without inference logging.

It is the serving's one stable address: it stands in front of the serving's TensorFlow
Serving replicas (REST API), balances requests across the replicas that are READY, and, when
inference logging is on, produces ONE JSON record per
``POST /v1/models/<name>[/versions/<v> | /labels/<l>]:predict`` to a Kafka topic (key = the
request id; format: ``schema/inference-record.schema.json`` in the declserve repository).

Runs as ``python3 /app/proxy.py --config /etc/declserve/proxy.json`` in its image (Debian's
python3-aiohttp 3.8 and python3-confluent-kafka 1.7) and as
``python3 declserve/logproxy/proxy.py --config ...`` on a developer machine (aiohttp and
confluent-kafka 2.x as installed with declserve). It reads TensorFlow Serving's files with
``declserve.backends.tfserving`` (the image holds that one module of declserve).

proxy.json (keys with a default are optional)::

    serving          str, required   metadata.name of the serving (in records and logs)
    model            str, required   the model: health checks ask GET /v1/models/<model>
    listen           "HOST:PORT", required   where the proxy listens
    mode             required   "none" (front proxy only: no Kafka at all, no producer)
                                | "all" | "model-inputs" | "predictions"
    topic            str, required unless mode is "none"
    bootstrap        str, default none: the Kafka bootstrap servers; without it records are
                     not produced (counted as failed, reason noBroker). Unused in mode none.
    upstreamsFile    str, required   path of upstreams.json
    modelConfigFile  str, default none: TensorFlow Serving's model config file; its pinned
                     version decides readiness and is the record's fallback modelVersion
    maxRequestBytes  int, default 1048576 (1 MiB): largest :predict request body (and
                     inputs, as the record holds them) accepted when inputs are logged
                     (modes all, model-inputs); larger is a 413 before anything is forwarded
    maxRecordBytes   int, default 2097152 (2 MiB): the topic's max.message.bytes; records
                     whose key + value exceed it less 1 KiB of framing are not produced
                     (counted, reason tooLarge). Must be >= maxRequestBytes + 65 KiB.
    healthIntervalSeconds  float, default 0.5: how often every upstream is health-checked
    healthTimeoutSeconds   float, default 1.0: a health check not answered by then fails
    upstreamTimeoutSeconds float, default 120: an answer (or a pause in it) longer is a 504
    drainSeconds     float, default 5: SIGTERM waits this long at most for requests
    flushSeconds     float, default 3: then flushes the producer this long at most

proxy.json is re-read when it changes (checked every healthIntervalSeconds): mode, topic,
bootstrap, maxRequestBytes, maxRecordBytes, drainSeconds and flushSeconds take effect from the
next request on (a changed mode, topic, bootstrap or maxRecordBytes gets a new producer; the
old one is flushed once the requests that use it are done), so the logging mode changes
without a moment in which the address does not answer. A change to any other key is logged
and needs a restart; a file that does not parse keeps the running settings.

upstreams.json: ``{"upstreams": ["http://127.0.0.1:32768", ...]}``, re-read whenever its
mtime, size or inode changes (one ``stat`` per request and per health round). Missing or
empty: no upstreams (503). A file that does not parse keeps the last good list.

Readiness: every upstream is asked ``GET /v1/models/<model>`` every healthIntervalSeconds, on
being added, and at once after a failed connection. It is READY when it answers 200 with the
version pinned in modelConfigFile in state AVAILABLE (any AVAILABLE version when no version
is pinned); STALE when it answers 200 with another version AVAILABLE but not the pinned one
(e.g. during a version bump, before it has loaded the new version); DOWN otherwise. Requests
go round robin to READY upstreams; to STALE ones only when none is READY (the old version
keeps answering until the new one is AVAILABLE). A request that finds none of either waits for
the checks in progress (at most healthTimeoutSeconds) before it gets 503.

Retries: an attempt that fails before the client has seen any of the answer -- connection
refused, reset, closed without an answer, an answer that broke off within its first 1 MiB,
or an upstream found DOWN by a health check while the proxy waits for the answer (e.g. a
paused container) -- is retried on the next usable upstream, then once more on the first one
on a fresh connection (a pooled connection may be stale); the failed one is marked DOWN
(refused) or re-checked at once. TensorFlow Serving's REST API has no request with a side
effect, so this is safe. A body streamed to the upstream (one not buffered, see below) is
retried only when none of it was sent. Three client sessions: the pooled one for requests, a
fresh-connection one for retries, and one for health checks (a new connection each, so that
a check tests that the upstream accepts connections).

Bodies are streamed both ways, with bounded buffers. A request body is buffered only when it
is a logged :predict's (up to maxRequestBytes), or when it is at most maxRequestBytes anyway
(so that it can be retried). An answer is read up to its first 1 MiB (RESPONSE_BUFFER) before
any of it goes to the client, so that an upstream that dies in the middle of an answer of that
size (e.g. a replica being stopped) is retried like one that did not answer; a larger answer
is streamed from there on. The answer is copied aside for the record (up to maxRecordBytes)
only for logged :predict requests.

Endpoints answered by the proxy itself: ``GET /-/healthz`` ({"ok": true, "upstreams": N,
"ready": K}) and ``GET /-/stats`` (JSON counters, see ``Stats.snapshot``). Everything else is
forwarded: method, path and query, body, the request headers except hop-by-hop ones (Host is
the upstream's; X-Request-Id and X-Forwarded-For are set). The upstream's status, headers
(minus hop-by-hop ones) and body are returned unchanged, plus X-Request-Id. The proxy's own
errors have a JSON body ``{"error": ...}``: 413 request too large to log, 502 no upstream
answered, 503 no ready upstream, 504 no answer within upstreamTimeoutSeconds.

Kafka never fails or delays a client request: ``produce`` only queues the record (a poll
thread serves the delivery reports). Every record that is not produced or not delivered is
counted by reason (tooLarge, queueFull, deliveryError, noBroker) at ``GET /-/stats`` and
logged to stderr once, with the reason.

SIGTERM/SIGINT: stop accepting connections, wait at most drainSeconds for requests in
progress, flush the producer for at most flushSeconds, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import itertools
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, TCPConnector, web
from multidict import CIMultiDict
from yarl import URL

try:  # on a developer machine declserve is installed; in the image /app/declserve holds it
    from declserve.backends import tfserving
except ImportError:  # pragma: no cover - run as a file from a checkout without an install
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    from declserve.backends import tfserving

LOGGING_MODES = ("all", "model-inputs", "predictions")
MODES = ("none", *LOGGING_MODES)
MIB = 1024 * 1024
DEFAULT_MAX_REQUEST_BYTES = 1 * MIB
DEFAULT_MAX_RECORD_BYTES = 2 * MIB
# Kafka's framing of one record in a v2 batch (batch header 61 bytes, record header at most
# ~40): key + value may take the topic's max.message.bytes less this.
RECORD_FRAMING = 1024
# The record's fields other than inputs and predictions, at most: serving and model names,
# the request id (an HTTP header field, at most 8190 bytes, JSON-escaped at worst 6 times)
# twice (key and value), timestamp, status, latency, mode.
RECORD_OVERHEAD = 64 * 1024
ERROR_LOG_SECONDS = 30.0
RESPONSE_BUFFER = 1 * MIB  # an answer up to this size is read whole before it is returned

HOP_BY_HOP = frozenset((
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
))
# Not copied to the upstream, besides hop-by-hop ones: aiohttp sets Host, the proxy sets the
# request id, X-Forwarded-For and the length (the client's, or that of the buffered body);
# 100-continue is answered by the proxy itself.
NOT_FORWARDED = frozenset(("host", "content-length", "x-request-id", "x-forwarded-for", "expect"))
# Not returned from the upstream, besides hop-by-hop ones (the proxy sets its own).
NOT_RETURNED = frozenset(("date", "x-request-id"))

PREDICT_PATH = re.compile(
    r"^/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
    r":predict$")

JSON = dict[str, Any]
C = TypeVar("C")  # a program's configuration


def log(message: str) -> None:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    try:
        sys.stderr.write(f"{stamp}Z logproxy: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def rfc3339_ms(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


FileSignature = tuple[int, int, int, int]


def file_signature(path: str) -> FileSignature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)


# ------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------

class ConfigError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Config:
    serving: str
    model: str
    host: str
    port: int
    mode: str
    topic: str | None
    bootstrap: str | None
    upstreams_file: str
    model_config_file: str | None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    health_interval: float = 0.5
    health_timeout: float = 1.0
    upstream_timeout: float = 120.0
    drain_seconds: float = 5.0
    flush_seconds: float = 3.0

    @property
    def logging(self) -> bool:
        return self.mode != "none"


_NUMBERS = {  # proxy.json key: (Config field, integer?)
    "maxRequestBytes": ("max_request_bytes", True),
    "maxRecordBytes": ("max_record_bytes", True),
    "healthIntervalSeconds": ("health_interval", False),
    "healthTimeoutSeconds": ("health_timeout", False),
    "upstreamTimeoutSeconds": ("upstream_timeout", False),
    "drainSeconds": ("drain_seconds", False),
    "flushSeconds": ("flush_seconds", False),
}


def _string(doc: JSON, key: str, path: str, *, required: bool) -> str | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: '{key}' must be a non-empty string")
    return value


def _numbers(doc: JSON, path: str,
             table: Mapping[str, tuple[str, bool]] = _NUMBERS) -> dict[str, float | int]:
    """The positive numbers of `table` (config key: (field, integer?)) that `doc` sets."""
    out: dict[str, float | int] = {}
    for key, (field, integer) in table.items():
        value = doc.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) \
                or value <= 0:
            kind = "a positive integer" if integer else "a positive number"
            raise ConfigError(f"{path}: '{key}' must be {kind}, not {value!r}")
        out[field] = value
    return out


def _listen(value: str, path: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{path}: 'listen' must be HOST:PORT, not {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_config(doc: Any, path: str) -> Config:
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the proxy config must be a JSON object")
    required = {k: _string(doc, k, path, required=True) or ""
                for k in ("serving", "model", "listen", "mode", "upstreamsFile")}
    mode = required["mode"]
    if mode not in MODES:
        raise ConfigError(f"{path}: 'mode' must be one of {', '.join(MODES)}, not {mode!r}")
    host, port = _listen(required["listen"], path)
    cfg = Config(
        serving=required["serving"], model=required["model"], host=host, port=port, mode=mode,
        topic=_string(doc, "topic", path, required=mode != "none"),
        bootstrap=_string(doc, "bootstrap", path, required=False),
        upstreams_file=required["upstreamsFile"],
        model_config_file=_string(doc, "modelConfigFile", path, required=False),
        **_numbers(doc, path))  # type: ignore[arg-type]
    if cfg.max_request_bytes + RECORD_OVERHEAD + RECORD_FRAMING > cfg.max_record_bytes:
        raise ConfigError(
            f"{path}: 'maxRecordBytes' ({cfg.max_record_bytes}) must be at least "
            f"'maxRequestBytes' ({cfg.max_request_bytes}) + {RECORD_OVERHEAD + RECORD_FRAMING}, "
            "so that every accepted request's record fits the topic")
    return cfg


def load_config(path: str) -> Config:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the proxy config {path}: {e}") from e
    return parse_config(doc, path)


# ------------------------------------------------------------------------------------------
# Files the proxy follows: upstreams.json and the model config file
# ------------------------------------------------------------------------------------------

def parse_upstreams(text: str) -> list[str]:
    doc = json.loads(text)
    items = doc.get("upstreams") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ValueError('expected {"upstreams": ["http://HOST:PORT", ...]}')
    urls: list[str] = []
    for item in items:
        url = URL(item) if isinstance(item, str) else None
        if url is None or url.scheme != "http" or not url.host:
            raise ValueError(f"upstream {item!r} is not an http://HOST:PORT URL")
        if str(item).rstrip("/") not in urls:
            urls.append(str(item).rstrip("/"))
    return urls


class WatchedFile:
    """A file followed by its signature (mtime, size, inode, device): read again only when
    that changes."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._signature: FileSignature | None | str = "unread"

    def changed(self) -> tuple[bool, str | None]:
        """(changed since the last call, the text now; None when the file is absent)."""
        if self.path is None:
            return False, None
        signature = file_signature(self.path)
        if signature == self._signature:
            return False, None
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            text = None
        self._signature = signature if text is not None or signature is None else "unread"
        return True, text


class PinnedVersion:
    """The version pinned in TensorFlow Serving's model config file (tfserving's parser)."""

    def __init__(self, path: str | None, model: str) -> None:
        self._file = WatchedFile(path)
        self._model = model
        self.version: int | None = None

    def refresh(self) -> int | None:
        changed, text = self._file.changed()
        if changed:
            parsed = tfserving.parse_model_config(text) if text is not None else {}
            version = parsed.get("version")
            pinned = parsed.get("name") == self._model and isinstance(version, int)
            self.version = version if pinned else None
        return self.version


# ------------------------------------------------------------------------------------------
# Upstreams and their health
# ------------------------------------------------------------------------------------------

READY, STALE, DOWN, UNKNOWN = "ready", "stale", "down", "unknown"


class Upstream:
    def __init__(self, url: str) -> None:
        self.url = url
        self.state = UNKNOWN
        self.reason = "not checked yet"
        self.checked = asyncio.Event()  # set once the first check is done
        self.lost = asyncio.Event()  # set when it goes DOWN; a new one when it comes back
        self.check_task: asyncio.Task[None] | None = None

    def set_state(self, state: str, reason: str) -> None:
        if state != self.state:
            log(f"upstream {self.url}: {self.state} -> {state} ({reason})")
        if state == DOWN:
            self.lost.set()
        elif self.lost.is_set():
            self.lost = asyncio.Event()
        self.state, self.reason = state, reason
        self.checked.set()

    def view(self) -> JSON:
        return {"url": self.url, "state": self.state, "reason": self.reason}


def judge(status: int, body: bytes, pinned: int | None) -> tuple[str, str]:
    """(state, reason) from a health check's answer to GET /v1/models/<model>."""
    if status != 200:
        return DOWN, f"GET /v1/models answered {status}"
    try:
        available = tfserving.available_versions(body)
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        return DOWN, f"unreadable model status: {e}"
    if not available:
        return DOWN, "no version AVAILABLE"
    if pinned is None or pinned in available:
        return READY, f"version {pinned or max(available)} AVAILABLE"
    return STALE, f"pinned version {pinned} not AVAILABLE (AVAILABLE: {list(available)})"


class Pool:
    """The upstreams from upstreams.json, their health, and the order to try them in."""

    def __init__(self, cfg: Config, session: ClientSession) -> None:
        self.cfg = cfg
        self._session = session  # health checks: a fresh connection every time
        self._file = WatchedFile(cfg.upstreams_file)
        self._pinned = PinnedVersion(cfg.model_config_file, cfg.model)
        self._upstreams: dict[str, Upstream] = {}
        self._turn = itertools.count()

    @property
    def upstreams(self) -> list[Upstream]:
        self.refresh()
        return list(self._upstreams.values())

    def pinned_version(self) -> int | None:
        return self._pinned.refresh()

    def refresh(self) -> None:
        changed, text = self._file.changed()
        if not changed:
            return
        if text is None:
            urls: list[str] = []
            log(f"upstreams file {self.cfg.upstreams_file} is missing: no upstreams")
        else:
            try:
                urls = parse_upstreams(text)
            except ValueError as e:  # possibly caught mid-write: keep the last good list
                log(f"cannot read the upstreams file ({e}); keeping {len(self._upstreams)}")
                return
        if urls != list(self._upstreams):
            log(f"upstreams: {', '.join(urls) or '(none)'}")
        self._upstreams = {url: self._upstreams.get(url) or Upstream(url) for url in urls}
        for upstream in self._upstreams.values():
            if upstream.state == UNKNOWN:
                self.check_soon(upstream)

    def order(self) -> list[Upstream]:
        """READY upstreams from the next in round-robin order, else STALE ones."""
        self.refresh()
        turn = next(self._turn)
        for state in (READY, STALE):
            found = [u for u in self._upstreams.values() if u.state == state]
            if found:
                start = turn % len(found)
                return found[start:] + found[:start]
        return []

    async def choose(self) -> list[Upstream]:
        """The order to try upstreams in; when none is usable, waits for checks in progress
        (at most healthTimeoutSeconds)."""
        order = self.order()
        if order or not self._upstreams:
            return order
        checks = [self.check_soon(u) for u in self._upstreams.values()]
        deadline = time.monotonic() + self.cfg.health_timeout + 0.5
        pending: set[asyncio.Task[None]] = set(checks)
        while pending and not order:
            _, pending = await asyncio.wait(pending, timeout=max(deadline - time.monotonic(), 0),
                                            return_when=asyncio.FIRST_COMPLETED)
            order = self.order()
            if time.monotonic() >= deadline:
                break
        return order

    def check_soon(self, upstream: Upstream) -> asyncio.Task[None]:
        """A health check of `upstream` now (the one in progress, if any)."""
        if upstream.check_task is None or upstream.check_task.done():
            upstream.check_task = asyncio.ensure_future(self.check(upstream))
        return upstream.check_task

    async def check(self, upstream: Upstream) -> None:
        pinned = self.pinned_version()
        try:
            async with self._session.get(
                    f"{upstream.url}/v1/models/{self.cfg.model}",
                    timeout=ClientTimeout(total=self.cfg.health_timeout)) as resp:
                body = await resp.read()
            state, reason = judge(resp.status, body, pinned)
        except TimeoutError:
            state, reason = DOWN, f"no answer to a health check within {self.cfg.health_timeout:g}s"
        except Exception as e:  # noqa: BLE001 - ClientError, OSError, ...: all mean DOWN
            state, reason = DOWN, f"health check failed: {e or type(e).__name__}"
        upstream.set_state(state, reason)

    async def run_checks(self) -> None:
        """Forever: check every upstream every healthIntervalSeconds."""
        while True:
            self.refresh()
            checks = [self.check_soon(u) for u in self._upstreams.values()]
            await asyncio.gather(asyncio.sleep(self.cfg.health_interval), *checks)


# ------------------------------------------------------------------------------------------
# Counters and Kafka
# ------------------------------------------------------------------------------------------

FAILURE_REASONS = ("tooLarge", "queueFull", "deliveryError", "noBroker")


class Stats:
    """Counters shown at GET /-/stats; updated from the event loop and the Kafka poll thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.requests_too_large = 0
        self.retries = 0
        self.records_queued = 0
        self.records_produced = 0
        self.records_failed = dict.fromkeys(FAILURE_REASONS, 0)

    def add(self, counter: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + n)

    def failed(self, reason: str, message: str, *, quiet: bool = False) -> None:
        with self._lock:
            self.records_failed[reason] += 1
        if not quiet:
            log(f"record not produced ({reason}): {message}")

    def snapshot(self) -> JSON:
        with self._lock:
            return {
                "requests": self.requests,  # forwarded or refused, not /-/ ones
                "requestsTooLarge": self.requests_too_large,  # 413s
                "retries": self.retries,  # attempts retried on another upstream
                "recordsQueued": self.records_queued,  # handed to the producer
                "recordsProduced": self.records_produced,  # acknowledged by the broker
                "recordsFailed": dict(self.records_failed),
            }


MSG_SIZE_TOO_LARGE = 10  # KafkaError.MSG_SIZE_TOO_LARGE: librdkafka's and the broker's


def failure_reason(error: Any) -> str:
    """tooLarge or deliveryError, from a KafkaError (or anything else)."""
    code = error.code() if hasattr(error, "code") else None
    return "tooLarge" if code == MSG_SIZE_TOO_LARGE else "deliveryError"


class Recorder:
    """The asynchronous producer of inference records; never blocks nor raises into a request."""

    def __init__(self, cfg: Config, stats: Stats) -> None:
        self.cfg = cfg
        self.stats = stats
        self.limit = cfg.max_record_bytes - RECORD_FRAMING  # key + value, at most
        self.producer: Any = None
        self.users = 0  # requests in progress that will hand it their record
        self._stop = threading.Event()
        self._errors_seen: dict[Any, tuple[float, int]] = {}
        self._poller: threading.Thread | None = None
        if not cfg.logging:
            return
        if not cfg.bootstrap:
            log("no 'bootstrap' configured: inference records are NOT produced (noBroker)")
            return
        from confluent_kafka import Producer  # imported here so mode none needs no Kafka

        self.producer = Producer({
            "bootstrap.servers": cfg.bootstrap,
            "client.id": f"declserve-logproxy-{cfg.serving}",
            "linger.ms": 5,
            "message.timeout.ms": 60000,
            # Every record the proxy lets through fits the topic's max.message.bytes.
            "message.max.bytes": cfg.max_record_bytes,
            "batch.size": self.limit,
            "queue.buffering.max.messages": 100000,
            "queue.buffering.max.kbytes": 256 * 1024,
            "socket.keepalive.enable": True,
            # librdkafka's own log lines would repeat every connection failure; errors reach
            # stderr through error_cb (rate-limited) and the delivery reports instead.
            "log_level": 2,
            "error_cb": self._on_error,
        })
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._poller.start()

    def _on_error(self, err: Any) -> None:
        # librdkafka repeats connection errors on every reconnect attempt while the broker is
        # down: one line per error code per ERROR_LOG_SECONDS.
        now = time.monotonic()
        code = err.code() if hasattr(err, "code") else str(err)
        last, skipped = self._errors_seen.get(code, (None, 0))
        if last is not None and now - last < ERROR_LOG_SECONDS:
            self._errors_seen[code] = (last, skipped + 1)
            return
        self._errors_seen[code] = (now, 0)
        log(f"kafka: {err}" + (f" (and {skipped} more like it)" if skipped else ""))

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is None:
            self.stats.add("records_produced")
            return
        key = msg.key().decode("utf-8", "replace") if msg is not None and msg.key() else "?"
        topic = msg.topic() if msg is not None else self.cfg.topic
        self.stats.failed(failure_reason(err), f"record {key} was not delivered to "
                                               f"{topic}: {err}")

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.producer.poll(0.5)
            except Exception as e:  # noqa: BLE001 - keep polling whatever happens
                log(f"kafka: poll failed: {e}")
                self._stop.wait(0.5)

    def send(self, key: str, value: bytes, topic: str | None = None) -> None:
        """Queue one record for `topic` (default: the configured topic)."""
        raw_key = key.encode("utf-8")
        if self.producer is None:
            self.stats.failed("noBroker", "", quiet=True)  # said once, at the start
            return
        if len(raw_key) + len(value) > self.limit:
            self.stats.failed("tooLarge", f"record {key} takes {len(raw_key) + len(value)} "
                                          f"bytes, more than {self.limit} "
                                          f"(maxRecordBytes {self.cfg.max_record_bytes} less "
                                          f"{RECORD_FRAMING} of framing)")
            return
        try:
            self.producer.produce(topic or self.cfg.topic, value=value, key=raw_key,
                                  on_delivery=self._on_delivery)
        except BufferError:
            self.stats.failed("queueFull", f"the producer's local queue is full; record {key}")
            return
        except Exception as e:  # noqa: BLE001 - a record must never fail a request
            error = e.args[0] if e.args else e
            self.stats.failed(failure_reason(error), f"record {key}: {e}")
            return
        self.stats.add("records_queued")

    def close(self, timeout: float) -> int:
        """Flush for at most `timeout` seconds; the number of records still undelivered."""
        if self.producer is None:
            return 0
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=2)
        try:
            left = int(self.producer.flush(timeout))
        except Exception as e:  # noqa: BLE001
            log(f"kafka: flush failed: {e}")
            return -1
        if left:
            self.stats.failed("deliveryError", f"{left} record(s) still undelivered after "
                                               f"{timeout:g}s at shutdown")
        return left


# ------------------------------------------------------------------------------------------
# Records
# ------------------------------------------------------------------------------------------

def json_member(raw: bytes, *keys: str) -> Any:
    """The first of `keys` in a JSON object body; None when absent or not JSON."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    return next((doc[key] for key in keys if key in doc), None)


def response_version(raw: bytes) -> str | None:
    version = json_member(raw, "model_version")
    return None if version is None else str(version)


def record_value(fields: JSON, members: Mapping[str, str]) -> bytes:
    """The record's JSON: `fields`, then `members` (already JSON text, not parsed again)."""
    head = dumps(fields)
    tail = "".join(f",{dumps(name)}:{text}" for name, text in members.items())
    return (head[:-1] + tail + "}").encode("utf-8")


# ------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------

class Body:
    """A request body: fully read (retryable) or streamed from the client (retryable only
    until the stream starts)."""

    def __init__(self, chunks: list[bytes], complete: bool, request: web.BaseRequest) -> None:
        self.chunks = chunks
        self.complete = complete
        self._request = request
        self.started = False

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def retryable(self) -> bool:
        return self.complete or not self.started

    def payload(self) -> bytes | AsyncIterator[bytes] | None:
        if self.complete:
            return self.data if self.chunks or self._request.method in ("POST", "PUT", "PATCH") \
                else None
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        self.started = True
        async for chunk in chain(self.chunks, self._request.content.iter_any()):
            yield chunk


async def read_body(request: web.BaseRequest, limit: int) -> Body:
    """The body, read whole when it is at most `limit` bytes; else what was read so far."""
    length = request.content_length
    chunks: list[bytes] = []
    if length is not None and length > limit:
        return Body(chunks, False, request)
    total = 0
    while total <= limit:
        chunk = await request.content.readany()
        if not chunk:
            return Body(chunks, True, request)
        chunks.append(chunk)
        total += len(chunk)
    return Body(chunks, False, request)


async def read_head(resp: ClientResponse) -> list[bytes]:
    """The answer's body up to RESPONSE_BUFFER (all of it when it is no larger); Unanswered
    when the upstream broke off before that (the client has seen nothing yet)."""
    chunks: list[bytes] = []
    total = 0
    try:
        while total <= RESPONSE_BUFFER:
            chunk = await resp.content.readany()
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except ClientError as e:  # ClientPayloadError, ServerDisconnectedError, resets
        resp.release()
        raise Unanswered(f"the answer broke off after {total} bytes: {e}", refused=False) from e
    return chunks


async def chain(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in first:
        yield chunk
    async for chunk in rest:
        yield chunk


class Unanswered(Exception):
    """The attempt failed before any byte of an answer: safe to try another upstream."""

    def __init__(self, reason: str, *, refused: bool) -> None:
        super().__init__(reason)
        self.refused = refused


def json_response(status: int, doc: JSON, request_id: str) -> web.Response:
    return web.Response(status=status, text=json.dumps(doc) + "\n",
                        content_type="application/json", headers={"X-Request-Id": request_id})


def forward_headers(request: web.BaseRequest, request_id: str) -> CIMultiDict[str]:
    tokens = {t.strip().lower() for t in request.headers.getall("Connection", [])
              for t in t.split(",") if t.strip()}
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        low = name.lower()
        if low not in HOP_BY_HOP and low not in tokens and low not in NOT_FORWARDED:
            headers.add(name, value)
    headers["X-Request-Id"] = request_id
    earlier = request.headers.get("X-Forwarded-For")
    client = request.remote or "unknown"
    headers["X-Forwarded-For"] = f"{earlier}, {client}" if earlier else client
    if request.content_length is not None and request.content_length > 0:
        headers["Content-Length"] = str(request.content_length)
    return headers


def returned_headers(resp: ClientResponse, request_id: str) -> CIMultiDict[str]:
    tokens = {t.strip().lower() for t in resp.headers.getall("Connection", [])
              for t in t.split(",") if t.strip()}
    headers: CIMultiDict[str] = CIMultiDict()
    for raw_name, raw_value in resp.raw_headers:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        low = name.lower()
        if low not in HOP_BY_HOP and low not in tokens and low not in NOT_RETURNED:
            headers.add(name, value)
    headers["X-Request-Id"] = request_id
    return headers


@dataclasses.dataclass
class Exchange:
    """One client request as the proxy handles it."""

    request: web.BaseRequest
    request_id: str
    started: float
    t0: float
    cfg: Config  # as it was when the request came (proxy.json may be re-read meanwhile)
    recorder: Recorder
    logged: bool  # a :predict whose record is produced
    upstream: str = "-"
    status: int = 0
    inputs_json: str = "null"
    answer: bytearray = dataclasses.field(default_factory=bytearray)
    answer_too_large: bool = False  # more than the record can hold
    answered: float | None = None  # time.monotonic() when the whole answer was in


# Settings that a changed proxy.json changes while the proxy runs; the others need a restart.
RELOADABLE = ("mode", "topic", "bootstrap", "max_request_bytes", "max_record_bytes",
              "drain_seconds", "flush_seconds")
RECORDER_SETTINGS = ("mode", "topic", "bootstrap", "max_record_bytes")


class FrontProxy:
    def __init__(self, cfg: Config, config_path: str | None = None) -> None:
        self.cfg = cfg
        self.stats = Stats()
        self.recorder = Recorder(cfg, self.stats)
        self.retired: list[Recorder] = []  # replaced by a proxy.json change, not closed yet
        self._config_file = WatchedFile(config_path)
        self._config_file.changed()
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._sessions: list[ClientSession] = []
        timeout = ClientTimeout(total=None, sock_connect=5, sock_read=cfg.upstream_timeout)
        self.session = self._session(TCPConnector(limit=0, keepalive_timeout=10), timeout)
        # Retries go on a fresh connection: a pooled one may be the stale cause of the failure.
        self.fresh = self._session(TCPConnector(limit=0, force_close=True), timeout)
        self.pool = Pool(cfg, self._session(TCPConnector(limit=0, force_close=True), timeout))

    def _session(self, connector: TCPConnector, timeout: ClientTimeout) -> ClientSession:
        session = ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding",
                                                   "Content-Type"))
        self._sessions.append(session)
        return session

    def start(self) -> None:
        self.pool.refresh()
        self._tasks.append(asyncio.ensure_future(self.pool.run_checks()))
        self._tasks.append(asyncio.ensure_future(self.watch_config()))

    # ---------------------------------------------------------------- proxy.json changes
    async def watch_config(self) -> None:
        """Forever: re-read proxy.json when it changes (checked every healthIntervalSeconds)."""
        while True:
            await asyncio.sleep(self.cfg.health_interval)
            changed, text = self._config_file.changed()
            if changed and text is not None:
                self.reload(text)

    def reload(self, text: str) -> None:
        path = self._config_file.path or "proxy.json"
        try:
            new = parse_config(json.loads(text), path)
        except (ValueError, ConfigError) as e:
            log(f"{path} changed but cannot be used ({e}); keeping the running settings")
            return
        fixed = [f.name for f in dataclasses.fields(Config) if f.name not in RELOADABLE
                 and getattr(new, f.name) != getattr(self.cfg, f.name)]
        if fixed:
            log(f"{path}: {', '.join(fixed)} changed; that takes a restart, kept as they are")
        new = dataclasses.replace(new, **{f: getattr(self.cfg, f) for f in fixed})
        if new == self.cfg:
            return
        old, self.cfg = self.cfg, new
        log(f"{path} re-read: mode {new.mode}" + (f", topic {new.topic!r}" if new.logging else ""))
        if any(getattr(old, f) != getattr(new, f) for f in RECORDER_SETTINGS):
            self.retired.append(self.recorder)
            self.recorder = Recorder(new, self.stats)
            self._tasks.append(asyncio.ensure_future(self.retire(self.retired[-1])))

    async def retire(self, recorder: Recorder) -> None:
        """Close a replaced producer once the requests that use it are done, flushed."""
        deadline = time.monotonic() + recorder.cfg.upstream_timeout
        while recorder.users and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.get_running_loop().run_in_executor(None, recorder.close,
                                                         recorder.cfg.flush_seconds)
        self.retired.remove(recorder)

    def close_recorders(self) -> int:
        """Flush every producer (bounded); the number of records still undelivered."""
        return sum(max(r.close(self.cfg.flush_seconds), 0) for r in [*self.retired, self.recorder])

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for session in self._sessions:
            await session.close()

    # ---------------------------------------------------------------- entry point
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        request_id = (request.headers.get("X-Request-Id") or "").strip() or str(uuid.uuid4())
        if request.path in ("/-/healthz", "/-/stats") and request.method in ("GET", "HEAD"):
            return self.own_endpoint(request.path, request_id)
        self.inflight += 1
        self.idle.clear()
        self.stats.add("requests")
        exchange = Exchange(request, request_id, time.time(), time.monotonic(), self.cfg,
                            self.recorder, logged=self.cfg.logging and request.method == "POST"
                            and PREDICT_PATH.match(request.path) is not None)
        exchange.recorder.users += 1
        try:
            response = await self.exchange(exchange)
            if self.stopping:
                response.force_close()
            return response
        finally:
            exchange.recorder.users -= 1
            self.inflight -= 1
            if not self.inflight:
                self.idle.set()
            log(f'{request.remote} "{request.method} {request.raw_path}" {exchange.status} '
                f"upstream={exchange.upstream} {(time.monotonic() - exchange.t0) * 1000:.1f}ms "
                f"id={request_id}")

    def own_endpoint(self, path: str, request_id: str) -> web.Response:
        upstreams = self.pool.upstreams
        if path == "/-/healthz":
            ready = sum(u.state == READY for u in upstreams)
            return json_response(200, {"ok": True, "upstreams": len(upstreams), "ready": ready},
                                 request_id)
        doc = {**self.stats.snapshot(), "inFlight": self.inflight, "mode": self.cfg.mode,
               "topic": self.cfg.topic if self.cfg.logging else None,
               "producer": self.recorder.producer is not None,
               "maxRequestBytes": self.cfg.max_request_bytes,
               "maxRecordBytes": self.cfg.max_record_bytes,
               "upstreams": [u.view() for u in upstreams]}
        return json_response(200, doc, request_id)

    async def exchange(self, ex: Exchange) -> web.StreamResponse:
        logs_inputs = ex.logged and ex.cfg.mode in ("all", "model-inputs")
        body = await read_body(ex.request, ex.cfg.max_request_bytes)
        if logs_inputs:
            refusal = self.check_inputs(ex, body)
            if refusal is not None:
                return refusal
        try:
            return await self.forward(ex, body)
        finally:
            # Also when the answer broke off or the client went away once it had begun
            # (aiohttp 3.8 cancels the handler then): that request happened, so it is recorded.
            if ex.logged and ex.status:
                self.record(ex)

    def check_inputs(self, ex: Exchange, body: Body) -> web.Response | None:
        """A 413 when the request's inputs would not fit a record; else None (and the inputs
        kept, as JSON text, for the record)."""
        size = ex.request.content_length
        if body.complete:
            ex.inputs_json = dumps(json_member(body.data, "instances", "inputs"))
            size = len(ex.inputs_json.encode("utf-8"))
        if body.complete and size is not None and size <= ex.cfg.max_request_bytes:
            return None
        self.stats.add("requests_too_large")
        ex.status = 413
        what = f"{size} bytes" if size is not None else f"more than {ex.cfg.max_request_bytes}"
        log(f"request {ex.request_id} refused: its inputs take {what}, more than "
            f"maxRequestBytes {ex.cfg.max_request_bytes}")
        return json_response(413, {"error": (
            f"request too large to log: a :predict request to serving {ex.cfg.serving!r} "
            f"may carry at most {ex.cfg.max_request_bytes} bytes (its inputs as logged), "
            f"this one has {what}")}, ex.request_id)

    # ---------------------------------------------------------------- forwarding
    async def forward(self, ex: Exchange, body: Body) -> web.StreamResponse:
        order = await self.pool.choose()
        if not order:
            return self.no_ready_upstream(ex)
        headers = forward_headers(ex.request, ex.request_id)
        failures: list[str] = []
        # Each usable upstream once, then the first again on a fresh connection (the pooled
        # one may have been closed by the upstream just before it was used).
        for attempt, upstream in enumerate(order + order[:1]):
            if attempt and not body.retryable:
                break
            if attempt and upstream.state == DOWN:
                continue
            if attempt:
                self.stats.add("retries")
            session = self.fresh if attempt >= len(order) else self.session
            try:
                resp = await self.attempt(session, upstream, ex, headers, body)
                head = await read_head(resp)
            except Unanswered as e:
                failures.append(f"{upstream.url}: {e}")
                self.upstream_failed(upstream, str(e), refused=e.refused)
                continue
            except TimeoutError:
                ex.upstream = upstream.url
                return self.error(ex, 504, f"upstream {upstream.url}: no answer within "
                                           f"{ex.cfg.upstream_timeout:g}s")
            ex.upstream = upstream.url
            return await self.relay(ex, resp, head)
        return self.error(ex, 502, "no upstream answered: " + "; ".join(failures))

    def no_ready_upstream(self, ex: Exchange) -> web.Response:
        upstreams = self.pool.upstreams
        if not upstreams:
            return self.error(ex, 503, f"no upstreams configured for serving "
                                       f"{ex.cfg.serving!r} ({ex.cfg.upstreams_file})")
        states = "; ".join(f"{u.url}: {u.state} ({u.reason})" for u in upstreams)
        return self.error(ex, 503, f"no ready upstream for serving {ex.cfg.serving!r}: {states}")

    def upstream_failed(self, upstream: Upstream, reason: str, *, refused: bool) -> None:
        log(f"upstream {upstream.url} did not answer ({reason})")
        if refused:
            upstream.set_state(DOWN, reason)
        self.pool.check_soon(upstream)

    async def attempt(self, session: ClientSession, upstream: Upstream, ex: Exchange,
                      headers: CIMultiDict[str], body: Body) -> ClientResponse:
        """The upstream's answer (status and headers); Unanswered when it failed before any
        of it came back, or the upstream was found DOWN meanwhile."""
        url = URL(upstream.url + ex.request.raw_path, encoded=True)
        sending = asyncio.ensure_future(self._send(session, ex.request.method, url, headers,
                                                   body.payload()))
        lost = asyncio.ensure_future(upstream.lost.wait())
        try:
            done, _ = await asyncio.wait({sending, lost}, timeout=ex.cfg.upstream_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if sending in done:
            return sending.result()
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        if lost in done:
            raise Unanswered(f"found {upstream.state} while waiting: {upstream.reason}",
                             refused=False)
        raise TimeoutError()

    @staticmethod
    async def _send(session: ClientSession, method: str, url: URL, headers: CIMultiDict[str],
                    payload: bytes | AsyncIterator[bytes] | None) -> ClientResponse:
        try:
            return await session.request(method, url, headers=headers, data=payload,
                                         allow_redirects=False)
        except TimeoutError as e:
            if "connect" in f"{type(e).__name__} {e}".lower():  # aiohttp 3.8 and 3.10+
                raise Unanswered(str(e) or type(e).__name__, refused=False) from e
            raise
        except OSError as e:  # ClientConnectorError (refused, unreachable) and the like
            refused = "connect" in type(e).__name__.lower() or isinstance(e, ConnectionRefusedError)
            raise Unanswered(str(e) or type(e).__name__, refused=refused) from e
        except ClientError as e:  # ServerDisconnectedError: closed without an answer
            raise Unanswered(str(e) or type(e).__name__, refused=False) from e

    async def relay(self, ex: Exchange, resp: ClientResponse,
                    head: list[bytes]) -> web.StreamResponse:
        """Return the upstream's answer to the client: `head` (read already), then the rest
        as it comes; keep a copy for the record."""
        ex.status = resp.status
        copy_for_record = ex.logged and ex.cfg.mode in ("all", "predictions")
        out = web.StreamResponse(status=resp.status, reason=resp.reason,
                                 headers=returned_headers(resp, ex.request_id))
        try:
            await out.prepare(ex.request)
            async for chunk in chain(head, resp.content.iter_any()):
                if ex.logged:
                    self.keep(ex, chunk, full=copy_for_record)
                await out.write(chunk)
            ex.answered = time.monotonic()
            await out.write_eof()
        except (TimeoutError, ClientError) as e:
            log(f"upstream {ex.upstream}: the answer to {ex.request_id} broke off: {e!r}")
            raise
        except (ConnectionResetError, RuntimeError) as e:  # the client went away
            log(f"client {ex.request.remote} went away before the answer: {e!r}")
        finally:
            resp.release()
        return out

    def keep(self, ex: Exchange, chunk: bytes, *, full: bool) -> None:
        """Keep the answer for the record: all of it (up to maxRecordBytes) when predictions
        are logged, else only enough to read model_version."""
        room = (ex.cfg.max_record_bytes if full else 4096) - len(ex.answer)
        if len(chunk) > room:
            ex.answer_too_large = True
            chunk = chunk[:max(room, 0)]
        ex.answer += chunk

    def error(self, ex: Exchange, status: int, message: str) -> web.Response:
        ex.status = status
        return json_response(status, {"error": message}, ex.request_id)

    # ---------------------------------------------------------------- records
    def record(self, ex: Exchange) -> None:
        if ex.cfg.mode in ("all", "predictions") and ex.answer_too_large:
            self.stats.failed("tooLarge", f"record {ex.request_id}: the answer is larger than "
                                          f"maxRecordBytes {ex.cfg.max_record_bytes}")
            return
        try:
            value = self.record_of(ex)
        except Exception as e:  # noqa: BLE001 - a record must never fail a request
            log(f"record {ex.request_id} not made: {e!r}")
            return
        ex.recorder.send(ex.request_id, value)

    def record_of(self, ex: Exchange) -> bytes:
        answer = bytes(ex.answer)
        end = ex.answered or time.monotonic()
        pinned = self.pool.pinned_version()
        fields: JSON = {
            "serving": ex.cfg.serving,
            "model": ex.cfg.model,
            "modelVersion": response_version(answer) or (None if pinned is None else str(pinned)),
            "requestId": ex.request_id,
            "timestamp": rfc3339_ms(ex.started),
            "statusCode": ex.status,
            "latencyMs": round((end - ex.t0) * 1000.0, 3),
            "mode": ex.cfg.mode,
        }
        members: dict[str, str] = {}
        if ex.cfg.mode in ("all", "model-inputs"):
            members["inputs"] = ex.inputs_json
        if ex.cfg.mode in ("all", "predictions"):
            members["predictions"] = dumps(json_member(answer, "predictions", "outputs"))
        return record_value(fields, members)


# ------------------------------------------------------------------------------------------
# Process
# ------------------------------------------------------------------------------------------

def stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum, stop)
    return stop


async def listen(server: web.Server, host: str, port: int) -> asyncio.AbstractServer | None:
    """`server` listening on host:port; None (logged) when it cannot."""
    try:
        return await asyncio.get_running_loop().create_server(
            server, host, port, reuse_address=True, backlog=128)
    except OSError as e:
        log(f"cannot listen on {host}:{port}: {e}")
        return None


async def serve(cfg: Config, config_path: str | None = None) -> int:
    loop = asyncio.get_running_loop()
    proxy = FrontProxy(cfg, config_path)
    stop = stop_on_signals()
    server = web.Server(proxy.handle)
    listener = await listen(server, cfg.host, cfg.port)
    if listener is None:
        await proxy.close()
        proxy.close_recorders()
        return 1
    proxy.start()
    log(f"serving {cfg.serving!r} (model {cfg.model!r}) on {cfg.host}:{cfg.port}, mode "
        f"{cfg.mode}" + (f", topic {cfg.topic!r}, bootstrap {cfg.bootstrap}" if cfg.logging else "")
        + f", upstreams from {cfg.upstreams_file} ({len(proxy.pool.upstreams)})")
    await stop.wait()
    listener.close()  # no new connections
    proxy.stopping = True
    await drain(proxy, proxy.cfg.drain_seconds)
    await server.shutdown(0.5)
    await proxy.close()
    left = await loop.run_in_executor(None, proxy.close_recorders)
    snap = proxy.stats.snapshot()
    log(f"stopped; requests={snap['requests']} records produced={snap['recordsProduced']} "
        f"failed={sum(snap['recordsFailed'].values())} undelivered={max(left, 0)}")
    return 0


def on_signal(signum: int, stop: asyncio.Event) -> None:
    if not stop.is_set():
        log(f"{signal.Signals(signum).name}: stopping")
        stop.set()


async def drain(proxy: FrontProxy, seconds: float) -> None:
    try:
        await asyncio.wait_for(proxy.idle.wait(), timeout=seconds)
    except TimeoutError:
        log(f"{proxy.inflight} request(s) still in progress after {seconds:g}s; not waiting")


def run(argv: list[str] | None, description: str, default_config: str,
        load: Callable[[str], C],
        serve_config: Callable[[C, str], Coroutine[Any, Any, int]]) -> int:
    """A program's main: --config, loaded with `load` (exit 2 when it cannot be used), then
    served with `serve_config` (exit 1 when that fails to start)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=default_config)
    args = parser.parse_args(argv)
    try:
        cfg = load(args.config)
    except ConfigError as e:
        log(str(e))
        return 2
    try:
        return asyncio.run(serve_config(cfg, args.config))
    except Exception as e:  # noqa: BLE001 - e.g. a producer setting librdkafka refuses
        log(f"cannot start: {e!r}")
        return 1


def main(argv: list[str] | None = None) -> int:
    return run(argv, "declserve front proxy", "/etc/declserve/proxy.json", load_config, serve)


if __name__ == "__main__":
    sys.exit(main())
