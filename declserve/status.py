"""The "detailed information" of each serving: state, served version, instances, endpoints, topic.

A pure function of the desired specs and the live state; the CLI prints it as a table or JSON.
"""

from __future__ import annotations

from typing import Any

from declserve.desired import DesiredServing
from declserve.live import LiveServing, LiveState


def _state(live: LiveServing | None, wanted: int) -> str:
    if live is None or not live.replicas:
        return "absent"
    running = live.running_count
    if running == 0:
        return "stopped"
    return "running" if running >= wanted else "partial"


def serving_status(name: str, desired: DesiredServing | None, live: LiveServing | None) -> dict[str, Any]:
    wanted = desired.spec.instances if desired else 0
    model = (live.essence.get("model", {}) if live else {}) or {}
    served = sorted({v for r in (live.replicas if live else ()) for v in (r.served_versions or ())})
    return {
        "name": name,
        "state": _state(live, wanted),
        "desiredState": desired.spec.state.value if desired else None,
        "model": model.get("name") or (desired.spec.model.name if desired else None),
        "configuredVersion": model.get("version"),
        "desiredVersion": desired.version if desired else None,
        "servedVersions": served,
        "instancesRunning": live.running_count if live else 0,
        "instancesDesired": wanted if desired else None,
        "endpoints": [
            f"{r.endpoint}/v1/models/{model.get('name')}"
            for r in (live.replicas if live else ())
            if r.endpoint and r.running
        ],
        "topic": desired.topic if desired else None,
        "loggingEndpoint": (
            f"{live.proxy.endpoint}/v1/models/{model.get('name')}" if live and live.proxy and live.proxy.endpoint else None
        ),
        "managedBySpec": desired is not None,
    }


def project_status(desired: dict[str, DesiredServing], live: LiveState, only: str | None = None) -> list[dict[str, Any]]:
    names = sorted(set(desired) | set(live.servings))
    if only is not None:
        names = [n for n in names if n == only]
    return [serving_status(n, desired.get(n), live.servings.get(n)) for n in names]
