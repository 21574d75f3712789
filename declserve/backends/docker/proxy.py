"""The inference-logging proxy of a serving on Docker: one container in front of its replicas.

It runs declserve's logging proxy image with host networking (so it reaches the replicas'
published ports and a Kafka broker on the host), listens on the serving's bind address, and
reads two files from the serving's config directory: `proxy.json` (topic, mode, brokers) and
`upstreams.json` (the replicas' endpoints, rewritten whenever they change).
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import docker
from docker.types import Mount

from declserve.backends import tfserving as tfs
from declserve.backends.docker import essence as E
from declserve.backends.docker.engine import engine_errors
from declserve.backends.docker.essence import AUTO_PORT
from declserve.backends.docker.files import atomic_write
from declserve.errors import NotFound, NotReady, Rejected

PROXY_CONFIG = "proxy.json"
ENDPOINT = "endpoint.json"  # the port, and whether declserve chose it (kept across recreates)
UPSTREAMS = "upstreams.json"
ROLE_PROXY = "logging-proxy"  # the label value of earlier versions, kept so their proxies are found
REPLY_ROOM = 2**20


def read_upstreams(config_dir: Path | None) -> list[str] | None:
    if config_dir is None:
        return None
    try:
        return sorted(json.loads((config_dir / UPSTREAMS).read_text())["upstreams"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_json(config_dir: Path | None, name: str) -> dict[str, Any]:
    """A JSON object declserve wrote in the config directory; empty when absent or broken."""
    if config_dir is None:
        return {}
    try:
        doc = json.loads((config_dir / name).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def read_config(config_dir: Path | None) -> dict[str, Any]:
    return _read_json(config_dir, PROXY_CONFIG)


def observed(attrs: dict[str, Any], config_dir: Path | None) -> dict[str, Any]:
    """What the front proxy container and its files say: `frontend`, and `logging` when on."""
    config = read_config(config_dir)
    chosen = read_endpoint(config_dir)
    port: Any = chosen.get("port")
    out: dict[str, Any] = {
        "frontend": {
            "image": attrs["Config"].get("Image"),
            "port": AUTO_PORT if chosen.get("auto") else port,
        }
    }
    if config.get("mode") not in (None, "none"):
        out["logging"] = {
            "topic": config.get("topic"),
            "mode": config.get("mode"),
            "maxRecordBytes": config.get("maxRecordBytes"),
        }
    return out


def read_endpoint(config_dir: Path | None) -> dict[str, Any]:
    return _read_json(config_dir, ENDPOINT)


def endpoint(config_dir: Path | None, host: str) -> str | None:
    listen = read_config(config_dir).get("listen")
    if not isinstance(listen, str) or ":" not in listen:
        return None
    return f"http://{host}:{listen.rsplit(':', 1)[1]}"


def listen_port(config_dir: Path, bind: str, wanted: int | None) -> int:
    """The front proxy's port: the spec's; else the one chosen before; else a free one.

    The choice is recorded in the serving's config directory, so the address stays the same
    across every recreate, restart and version bump.
    """
    if wanted is not None:
        port = wanted
    else:
        before = read_endpoint(config_dir)
        listen = read_config(config_dir).get("listen")
        if before.get("auto") and isinstance(before.get("port"), int):
            port = before["port"]
        elif isinstance(listen, str) and listen.rsplit(":", 1)[-1].isdigit():
            port = int(listen.rsplit(":", 1)[1])  # a proxy made before the choice was recorded
        else:
            with socket.socket() as probe:
                probe.bind((bind, 0))
                port = int(probe.getsockname()[1])
    atomic_write(config_dir / ENDPOINT, json.dumps({"port": port, "auto": wanted is None}) + "\n")
    return port


def write_config(
    config_dir: Path,
    *,
    serving: str,
    model: str,
    topic: str | None,
    mode: str,
    bootstrap: str,
    bind: str,
    port: int,
    max_record_bytes: int,
) -> None:
    """The proxy's settings; it re-reads them when they change (mode, topic, limits)."""
    doc: dict[str, Any] = {
        "serving": serving,
        "model": model,
        "listen": f"{bind}:{port}",
        "mode": mode,
        # Each proxy checks every replica this often; many servings on one host add up.
        "healthIntervalSeconds": 1.0,
        "upstreamsFile": f"{tfs.CONFIG_DIR}/{UPSTREAMS}",
        "modelConfigFile": f"{tfs.CONFIG_DIR}/{tfs.MODEL_CONFIG}",
        # A record holds the request's inputs and the answer's predictions: the request may
        # use all but 1 MiB of what the topic accepts, and a larger one is refused with 413.
        "maxRequestBytes": max_record_bytes - REPLY_ROOM,
        "maxRecordBytes": max_record_bytes,
    }
    if topic is not None:
        doc.update(topic=topic, bootstrap=bootstrap)
    atomic_write(config_dir / PROXY_CONFIG, json.dumps(doc, indent=2) + "\n")


def write_upstreams(config_dir: Path, endpoints: list[str]) -> None:
    atomic_write(config_dir / UPSTREAMS, json.dumps({"upstreams": endpoints}) + "\n")


def remove_files(config_dir: Path) -> None:
    for name in (PROXY_CONFIG, UPSTREAMS, ENDPOINT):
        (config_dir / name).unlink(missing_ok=True)


WAITING_FOR_PORT = "declserve: loaded; waiting for the listen port to be free"
# Runs the proxy program of the image (/app/proxy.py) once its port is free. Started while
# another process still holds the port, it has paid for Python and its imports already when
# the port is released, and binds within a millisecond: the hand-over of a hand-made
# container's port then costs that, not the proxy's start. (The proxy program itself exits
# when its port is taken; it is shared with the Kubernetes backend, so the wait lives here.)
_TAKE_OVER = f"""
import json, socket, sys, time
sys.path.insert(0, "/app")
import proxy
config, seconds = sys.argv[1], float(sys.argv[2])
host, _, port = json.load(open(config))["listen"].rpartition(":")
deadline = time.monotonic() + seconds
print({WAITING_FOR_PORT!r}, flush=True)
while time.monotonic() < deadline:
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host.strip("[]") or "127.0.0.1", int(port)))
        break
    except OSError:
        time.sleep(0.0005)
    finally:
        probe.close()
sys.exit(proxy.main(["--config", config]))
"""


def create(
    client: docker.DockerClient,
    *,
    name: str,
    image: str,
    labels: dict[str, str],
    config_dir: Path,
    start: bool,
    take_over_seconds: float | None = None,
) -> str:
    """The front proxy container; with `take_over_seconds`, one that waits that long at most
    for its port to be free before it listens (`WAITING_FOR_PORT` in its log meanwhile)."""
    config = f"{tfs.CONFIG_DIR}/{PROXY_CONFIG}"
    command = ["python3", "/app/proxy.py", "--config", config]
    if take_over_seconds is not None:
        command = ["python3", "-c", _TAKE_OVER, config, str(take_over_seconds)]
    try:
        with engine_errors(f"run the logging proxy {name}"):
            container = client.containers.create(
                image,
                name=name,
                command=command,
                labels={**labels, E.LABEL_ROLE: ROLE_PROXY},
                mounts=[Mount(tfs.CONFIG_DIR, str(config_dir), type="bind", read_only=True)],
                network_mode="host",
                restart_policy={"Name": "unless-stopped"},  # type: ignore[arg-type]
            )
            if start:
                container.start()
    except NotFound as exc:
        raise Rejected(
            f"the logging proxy image {image} is not on the Docker engine; build it "
            "with scripts/build-logproxy-image.sh"
        ) from exc
    return str(container.id)


def wait_healthy(url: str, deadline_seconds: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + deadline_seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/-/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(interval)  # polling the proxy's own health endpoint, bounded by the deadline
    raise NotReady(
        f"the logging proxy at {url} did not answer within {deadline_seconds:.0f}s ({last})"
    )


def wait_settings(url: str, want: dict[str, Any], deadline_seconds: float) -> None:
    """Until the proxy reports the settings `want` at /-/stats (it re-reads its file)."""
    deadline = time.monotonic() + deadline_seconds
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/-/stats", timeout=1) as resp:
                seen = json.loads(resp.read())
            if all(seen.get(k) == v for k, v in want.items()):
                return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.2)  # polling the proxy's own report, bounded by the deadline
    shown = {k: seen.get(k) for k in want}
    raise NotReady(
        f"the logging proxy at {url} did not take its new settings within "
        f"{deadline_seconds:.0f}s (it reports {shown})"
    )


def read_stats(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """The proxy's counters (requests, records produced and not produced, by reason)."""
    try:
        with urllib.request.urlopen(f"{url}/-/stats", timeout=timeout) as resp:
            doc = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
