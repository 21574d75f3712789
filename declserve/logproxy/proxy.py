#!/usr/bin/env python3
"""declserve inference-logging proxy.

Stands in front of one serving's TensorFlow Serving replicas (REST API), forwards every request
to a replica (round robin, skipping replicas that do not answer) and, for each
``POST /v1/models/<name>[/versions/<v> | /labels/<l>]:predict``, produces ONE JSON record to a
Kafka topic (key = the request id). The record format is ``schema/inference-record.schema.json``
in the declserve repository.

Started as ``python3 /app/proxy.py --config /etc/declserve/proxy.json``; one file, Python 3.11
standard library plus ``confluent_kafka`` (1.7 in the image, 2.x on a developer machine).

proxy.json::

    {"serving": "mnist", "model": "mnist", "listen": "127.0.0.1:PORT",
     "topic": "demo-mnist-inference", "mode": "all" | "model-inputs" | "predictions",
     "bootstrap": "127.0.0.1:9092",
     "upstreamsFile": "/etc/declserve/upstreams.json",
     "modelConfigFile": "/etc/declserve/models.config"}

upstreams.json: ``{"upstreams": ["http://127.0.0.1:32768", ...]}``, re-read whenever its
mtime, size or inode changes (one ``stat`` per request). Missing or empty: every forwarded
request gets 503 with a JSON error.

Kafka never fails or delays a client request: records are produced asynchronously
(``produce`` + ``poll(0)``, plus a background poll thread for delivery reports); a full local
queue drops the record with a log line; delivery errors are logged to stderr.
``GET /-/healthz`` is answered by the proxy itself. SIGTERM/SIGINT: stop accepting requests,
wait at most 2 s for requests in progress, flush the producer for at most 5 s, exit 0.

Forwarding: any method, path and query, the body, and the request headers except hop-by-hop
ones (Host is the upstream's; X-Request-Id and X-Forwarded-For are set). An upstream that
refuses the connection, or closes it without any answer, is skipped for the next one (each at
most once per request; for 2 s it is tried last); none answering is 502, an answer that does
not complete within 120 s is 504, no upstreams is 503 -- each with a JSON ``{"error": ...}``.
The upstream's status, headers (minus hop-by-hop ones) and body are returned unchanged, plus
``X-Request-Id``.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("all", "model-inputs", "predictions")
FLUSH_SECONDS = 5.0  # SIGTERM: flush the producer for at most this long
DRAIN_SECONDS = 2.0  # SIGTERM: wait this long at most for requests in progress
UPSTREAM_CONNECT_TIMEOUT = 5.0
UPSTREAM_TIMEOUT = 120.0
MAX_BODY = 256 * 1024 * 1024
ERROR_LOG_SECONDS = 30.0
DOWN_SECONDS = 2.0  # an upstream that did not answer is tried last for this long

HOP_BY_HOP = frozenset((
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
))

PREDICT_PATH = re.compile(
    r"^/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
    r":predict$")

_log_lock = threading.Lock()


def log(message: str) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    with _log_lock:
        try:
            sys.stderr.write(f"{stamp}Z logproxy: {message}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def rfc3339_ms(epoch: float) -> str:
    dt = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# ------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------

class ConfigError(Exception):
    pass


def load_config(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the proxy config {path}: {e}") from e
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: the proxy config must be a JSON object")
    for key in ("serving", "model", "listen", "topic", "mode", "upstreamsFile"):
        if not isinstance(cfg.get(key), str) or not cfg[key]:
            raise ConfigError(f"{path}: '{key}' must be a non-empty string")
    if cfg["mode"] not in MODES:
        raise ConfigError(f"{path}: 'mode' must be one of {', '.join(MODES)}, not {cfg['mode']!r}")
    for key in ("bootstrap", "modelConfigFile"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            raise ConfigError(f"{path}: '{key}' must be a string")
    host, sep, port = cfg["listen"].rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{path}: 'listen' must be HOST:PORT, not {cfg['listen']!r}")
    cfg["_listen"] = (host.strip("[]") or "127.0.0.1", int(port))
    return cfg


def _file_signature(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)


class Upstreams:
    """The replica list from upstreams.json, re-read when the file changes; round robin."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._sig: object = "unread"
        self._urls: list[tuple[str, str, int]] = []  # (url, host, port)
        self._next = 0
        self._down: dict[str, float] = {}

    def _parse(self) -> list[tuple[str, str, int]]:
        with open(self.path, encoding="utf-8") as f:
            doc = json.load(f)
        items = doc.get("upstreams") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise ValueError("expected {\"upstreams\": [\"http://HOST:PORT\", ...]}")
        out = []
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"upstream {item!r} is not a string")
            u = urllib.parse.urlsplit(item)
            if u.scheme != "http" or not u.hostname:
                raise ValueError(f"upstream {item!r} is not an http://HOST:PORT URL")
            out.append((item.rstrip("/"), u.hostname, u.port or 80))
        return out

    def current(self) -> list[tuple[str, str, int]]:
        sig = _file_signature(self.path)
        with self._lock:
            if sig == self._sig:
                return self._urls
            if sig is None:
                if self._urls or self._sig == "unread":
                    log(f"upstreams file {self.path} is missing: no upstreams")
                self._urls, self._sig = [], None
                return self._urls
            try:
                urls = self._parse()
            except (OSError, ValueError) as e:
                # Possibly caught mid-write: keep the last good list, try again next request.
                log(f"cannot read the upstreams file {self.path} ({e}); keeping "
                    f"{len(self._urls)} upstream(s)")
                return self._urls
            if [u[0] for u in urls] != [u[0] for u in self._urls]:
                log(f"upstreams: {', '.join(u[0] for u in urls) or '(none)'}")
            self._urls, self._sig = urls, sig
            return self._urls

    def order(self) -> list[tuple[str, str, int]]:
        """All current upstreams, starting at the next one in round-robin order; those that
        failed in the last DOWN_SECONDS go last (still tried, in case all are down)."""
        urls = self.current()
        if not urls:
            return []
        now = time.monotonic()
        with self._lock:
            start = self._next % len(urls)
            self._next = (self._next + 1) % (1 << 30)
            down = {u for u, until in self._down.items() if until > now}
        ordered = urls[start:] + urls[:start]
        return [u for u in ordered if u[0] not in down] + [u for u in ordered if u[0] in down]

    def mark(self, url: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._down.pop(url, None)
            else:
                self._down[url] = time.monotonic() + DOWN_SECONDS


_CONFIG_BLOCK = re.compile(r"\bconfig\s*:?\s*\{")
_NAME = re.compile(r"\bname\s*:\s*(?:\"([^\"]*)\"|'([^']*)')")
_SPECIFIC = re.compile(r"\bspecific\s*:?\s*\{([^{}]*)\}")
_VERSIONS = re.compile(r"\bversions\s*:\s*(?:\[\s*)?([0-9]+)")


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def parse_model_versions(text: str) -> dict[str, str]:
    """{model name: pinned version} for each config with ONE specific version."""
    body = _strip_comments(text)
    out: dict[str, str] = {}
    for m in _CONFIG_BLOCK.finditer(body):
        depth, i = 1, m.end()
        while i < len(body) and depth:
            depth += {"{": 1, "}": -1}.get(body[i], 0)
            i += 1
        block = body[m.end():i - 1]
        name = _NAME.search(block)
        specific = _SPECIFIC.search(block)
        if not name or not specific:
            continue
        versions = _VERSIONS.findall(specific.group(1))
        if len(set(versions)) == 1:
            out[name.group(1) if name.group(1) is not None else name.group(2)] = str(int(versions[0]))
    return out


class ModelConfig:
    """The pinned version per model from TensorFlow Serving's model config file (cached)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._sig: object = "unread"
        self._versions: dict[str, str] = {}

    def version(self, model: str) -> str | None:
        if not self.path:
            return None
        sig = _file_signature(self.path)
        with self._lock:
            if sig != self._sig:
                versions: dict[str, str] = {}
                if sig is not None:
                    try:
                        with open(self.path, encoding="utf-8") as f:
                            versions = parse_model_versions(f.read())
                    except (OSError, ValueError) as e:
                        log(f"cannot read the model config file {self.path}: {e}")
                self._versions, self._sig = versions, sig
            return self._versions.get(model)


# ------------------------------------------------------------------------------------------
# Kafka
# ------------------------------------------------------------------------------------------

class Recorder:
    """Asynchronous producer of inference records; never blocks nor raises into a request."""

    def __init__(self, bootstrap: str | None, topic: str, serving: str) -> None:
        self.topic = topic
        self.producer = None
        self.delivered = 0
        self.failed = 0
        self._stop = threading.Event()
        self._err_lock = threading.Lock()
        self._err_seen: dict = {}
        if not bootstrap:
            log("no 'bootstrap' configured: inference records are NOT produced")
            return
        from confluent_kafka import Producer  # imported here so --help works without it

        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "client.id": f"declserve-logproxy-{serving}",
            "linger.ms": 5,
            "message.timeout.ms": 60000,
            "queue.buffering.max.messages": 100000,
            "socket.keepalive.enable": True,
            # librdkafka's own log lines would repeat every connection failure; errors reach
            # stderr through error_cb (rate-limited) and the delivery reports instead.
            "log_level": 2,
            "error_cb": self._on_error,
        })
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._poller.start()

    def _on_error(self, err) -> None:
        # librdkafka repeats connection errors on every reconnect attempt while the broker is
        # down: one line per error code per ERROR_LOG_SECONDS, with the count left out.
        now = time.monotonic()
        code = err.code() if hasattr(err, "code") else str(err)
        with self._err_lock:
            last, skipped = self._err_seen.get(code, (None, 0))
            if last is not None and now - last < ERROR_LOG_SECONDS:
                self._err_seen[code] = (last, skipped + 1)
                return
            self._err_seen[code] = (now, 0)
        more = f" (and {skipped} more like it)" if skipped else ""
        log(f"kafka: {err}{more}")

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.failed += 1
            key = msg.key().decode("utf-8", "replace") if msg is not None and msg.key() else "?"
            log(f"kafka: record {key} was not delivered to {self.topic}: {err}")
        else:
            self.delivered += 1

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.producer.poll(0.5)
            except Exception as e:  # noqa: BLE001 - keep polling whatever happens
                log(f"kafka: poll failed: {e}")
                self._stop.wait(0.5)

    def send(self, key: str, record: dict) -> None:
        if self.producer is None:
            return
        try:
            value = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            self.producer.produce(self.topic, value=value, key=key.encode("utf-8"),
                                  on_delivery=self._on_delivery)
        except BufferError:
            self.failed += 1
            log(f"kafka: local queue full, record {key} dropped")
        except Exception as e:  # noqa: BLE001 - a record must never fail a request
            self.failed += 1
            log(f"kafka: record {key} not produced: {e}")
        try:
            self.producer.poll(0)
        except Exception:  # noqa: BLE001
            pass

    def close(self, timeout: float = FLUSH_SECONDS) -> int:
        """Flush for at most `timeout` seconds; the number of records still undelivered."""
        self._stop.set()
        if self.producer is None:
            return 0
        try:
            left = self.producer.flush(timeout)
        except Exception as e:  # noqa: BLE001
            log(f"kafka: flush failed: {e}")
            return -1
        if left:
            log(f"kafka: {left} record(s) still undelivered after {timeout:g}s; dropped")
        return left


# ------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------

class UpstreamUnavailable(Exception):
    """The upstream could not be reached or closed the connection without any answer."""


class UpstreamTimeout(Exception):
    pass


def _forward_once(host: str, port: int, method: str, target: str, headers: list, body: bytes):
    conn = http.client.HTTPConnection(host, port, timeout=UPSTREAM_CONNECT_TIMEOUT)
    try:
        try:
            conn.connect()
        except OSError as e:
            raise UpstreamUnavailable(str(e) or type(e).__name__) from e
        conn.sock.settimeout(UPSTREAM_TIMEOUT)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders(body if body or method in ("POST", "PUT", "PATCH") else None)
            resp = conn.getresponse()
        except socket.timeout as e:
            raise UpstreamTimeout("no answer within %gs" % UPSTREAM_TIMEOUT) from e
        except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine) as e:
            # Nothing came back at all (e.g. Docker's port proxy accepts the connection while
            # the server inside the container is not listening): safe to try another replica.
            raise UpstreamUnavailable(str(e) or type(e).__name__) from e
        try:
            data = b"" if method == "HEAD" else resp.read()
        except socket.timeout as e:
            raise UpstreamTimeout("the answer did not complete within %gs" % UPSTREAM_TIMEOUT) from e
        except (OSError, http.client.HTTPException) as e:
            raise UpstreamTimeout(f"the answer broke off: {e}") from e
        return resp.status, resp.reason, resp.getheaders(), data
    finally:
        conn.close()


def _json_value(raw: bytes, *keys: str):
    """The first of `keys` in a JSON object body; (found, value)."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False, None
    if not isinstance(doc, dict):
        return False, None
    for key in keys:
        if key in doc:
            return True, doc[key]
    return True, None


def _response_version(raw: bytes) -> str | None:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(doc, dict) and doc.get("model_version") is not None:
        return str(doc["model_version"])
    return None


class Proxy:
    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.mode = cfg["mode"]
        self.upstreams = Upstreams(cfg["upstreamsFile"])
        self.models = ModelConfig(cfg.get("modelConfigFile"))
        self.recorder = Recorder(cfg.get("bootstrap"), cfg["topic"], cfg["serving"])
        self._inflight = 0
        self._idle = threading.Condition()

    def begin(self) -> None:
        with self._idle:
            self._inflight += 1

    def end(self) -> None:
        with self._idle:
            self._inflight -= 1
            if not self._inflight:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> int:
        """Wait at most `timeout` s for requests in progress; the number still running."""
        with self._idle:
            self._idle.wait_for(lambda: not self._inflight, timeout)
            return self._inflight

    def record(self, *, request_id: str, started: float, status: int, latency_ms: float,
               request_body: bytes, response_body: bytes) -> dict:
        version = _response_version(response_body) or self.models.version(self.cfg["model"])
        rec = {
            "serving": self.cfg["serving"],
            "model": self.cfg["model"],
            "modelVersion": version,
            "requestId": request_id,
            "timestamp": rfc3339_ms(started),
            "statusCode": int(status),
            "latencyMs": round(latency_ms, 3),
            "mode": self.mode,
        }
        if self.mode in ("all", "model-inputs"):
            rec["inputs"] = _json_value(request_body, "instances", "inputs")[1]
        if self.mode in ("all", "predictions"):
            rec["predictions"] = _json_value(response_body, "predictions", "outputs")[1]
        return rec


def make_handler(proxy: Proxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "declserve-logproxy"
        sys_version = ""

        def log_message(self, format, *args):  # noqa: A002 - stdlib signature
            pass  # one line per request is written by _handle

        def log_error(self, format, *args):  # noqa: A002
            log(f"{self.client_address[0]}: " + (format % args))

        # ---------------------------------------------------------------- helpers
        def _read_body(self) -> bytes:
            te = (self.headers.get("Transfer-Encoding") or "").lower()
            if "chunked" in te:
                chunks, total = [], 0
                while True:
                    line = self.rfile.readline(65537)
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        break
                    total += size
                    if total > MAX_BODY:
                        raise ValueError("request body too large")
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(3)
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0 or length > MAX_BODY:
                raise ValueError("bad Content-Length")
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, headers: list, body: bytes, request_id: str,
                  reason: str | None = None) -> None:
            self.send_response_only(status, reason)
            self.send_header("Date", self.date_time_string())
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("X-Request-Id", request_id)
            if status >= 200 and status not in (204, 304) and self.command != "HEAD":
                self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)
            self.wfile.flush()

        def _send_json(self, status: int, doc: dict, request_id: str) -> None:
            body = (json.dumps(doc) + "\n").encode("utf-8")
            self._send(status, [("Content-Type", "application/json")], body, request_id)

        # ---------------------------------------------------------------- request
        def _handle(self) -> None:
            started = time.time()
            t0 = time.monotonic()
            request_id = (self.headers.get("X-Request-Id") or "").strip() or str(uuid.uuid4())
            path_only = urllib.parse.urlsplit(self.path).path
            if path_only == "/-/healthz" and self.command in ("GET", "HEAD"):
                self._send_json(200, {"ok": True, "upstreams": len(proxy.upstreams.current())},
                                request_id)
                self._log_line(200, "-", t0, request_id)
                return
            try:
                body = self._read_body()
            except (ValueError, OSError) as e:
                self.close_connection = True
                self._send_json(400, {"error": f"unreadable request body: {e}"}, request_id)
                self._log_line(400, "-", t0, request_id)
                return

            predict = self.command == "POST" and PREDICT_PATH.match(path_only) is not None
            status, reason, resp_headers, resp_body, used = self._forward(body, request_id)
            latency_ms = (time.monotonic() - t0) * 1000.0
            if predict:
                # Queued before the client sees the answer (produce() never blocks), so a
                # SIGTERM right after the answer still flushes this record.
                try:
                    proxy.recorder.send(request_id, proxy.record(
                        request_id=request_id, started=started, status=status,
                        latency_ms=latency_ms, request_body=body, response_body=resp_body))
                except Exception as e:  # noqa: BLE001 - a record must never fail a request
                    log(f"record {request_id} not made: {e!r}")
            try:
                self._send(status, resp_headers, resp_body, request_id, reason)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.close_connection = True
                log(f"client {self.client_address[0]} went away before the answer: {e}")
            self._log_line(status, used, t0, request_id)

        def _tracked(self) -> None:
            proxy.begin()
            try:
                self._handle()
            finally:
                proxy.end()

        def _forward(self, body: bytes, request_id: str):
            connection_tokens = {t.strip().lower() for t in
                                 (self.headers.get("Connection") or "").split(",") if t.strip()}
            headers = []
            for name, value in self.headers.items():
                low = name.lower()
                if low in HOP_BY_HOP or low in connection_tokens or low in (
                        "host", "content-length", "x-request-id"):
                    continue
                headers.append((name, value))
            headers.append(("X-Request-Id", request_id))
            forwarded_for = self.headers.get("X-Forwarded-For")
            client = self.client_address[0]
            headers.append(("X-Forwarded-For",
                            f"{forwarded_for}, {client}" if forwarded_for else client))
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers.append(("Content-Length", str(len(body))))

            order = proxy.upstreams.order()
            if not order:
                return self._error(503, "no upstreams configured for serving "
                                   f"{proxy.cfg['serving']!r} ({proxy.upstreams.path})") + ("-",)
            failures = []
            for url, host, port in order:
                try:
                    status, reason, raw_headers, data = _forward_once(
                        host, port, self.command, self.path,
                        [("Host", f"{host}:{port}")] + headers, body)
                except UpstreamUnavailable as e:
                    proxy.upstreams.mark(url, False)
                    failures.append(f"{url}: {e}")
                    log(f"upstream {url} unavailable ({e}); trying the next one")
                    continue
                except UpstreamTimeout as e:
                    return self._error(504, f"upstream {url}: {e}") + (url,)
                proxy.upstreams.mark(url, True)
                resp_tokens = {t.strip().lower() for name, value in raw_headers
                               if name.lower() == "connection" for t in value.split(",")}
                out = [(n, v) for n, v in raw_headers
                       if n.lower() not in HOP_BY_HOP and n.lower() not in resp_tokens
                       and n.lower() not in ("date", "x-request-id")
                       and (n.lower() != "content-length" or self.command == "HEAD")]
                return status, reason, out, data, url
            return self._error(502, "no upstream answered: " + "; ".join(failures)) + ("-",)

        @staticmethod
        def _error(status: int, message: str):
            body = (json.dumps({"error": message}) + "\n").encode("utf-8")
            return status, None, [("Content-Type", "application/json")], body

        def _log_line(self, status: int, upstream: str, t0: float, request_id: str) -> None:
            log(f'{self.client_address[0]} "{self.command} {self.path}" {status} '
                f"upstream={upstream} {(time.monotonic() - t0) * 1000:.1f}ms id={request_id}")

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _tracked

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="declserve inference-logging proxy")
    parser.add_argument("--config", default="/etc/declserve/proxy.json")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        log(str(e))
        return 2
    try:
        proxy = Proxy(cfg)
    except Exception as e:  # noqa: BLE001 - e.g. a producer setting librdkafka refuses
        log(f"cannot start: {e}")
        return 1
    try:
        server = Server(cfg["_listen"], make_handler(proxy))
    except OSError as e:
        log(f"cannot listen on {cfg['listen']}: {e}")
        proxy.recorder.close(0)
        return 1

    stopping = threading.Event()

    def on_signal(signum, _frame):
        if stopping.is_set():
            return
        stopping.set()
        log(f"{signal.Signals(signum).name}: stopping")
        # shutdown() waits for serve_forever() to return, so it must not run on its thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host, port = server.server_address[:2]
    log(f"serving {cfg['serving']!r} (model {cfg['model']!r}) on {host}:{port}, "
        f"topic {cfg['topic']!r}, mode {cfg['mode']}, bootstrap {cfg.get('bootstrap')}, "
        f"upstreams from {cfg['upstreamsFile']} ({len(proxy.upstreams.current())})")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        busy = proxy.wait_idle(DRAIN_SECONDS)
        if busy:
            log(f"{busy} request(s) still in progress after {DRAIN_SECONDS:g}s; not waiting")
        left = proxy.recorder.close(FLUSH_SECONDS)
        log(f"stopped; records delivered={proxy.recorder.delivered} "
            f"failed={proxy.recorder.failed} undelivered={max(left, 0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
