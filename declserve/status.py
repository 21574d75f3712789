"""The "detailed information" of each serving: state, health, versions, instances, address, topic.

A pure function of the desired specs and the live state (its observed status, which the plan
never compares); the CLI prints it as a table or JSON. Providers that could not be read show
as unknown with their reason, so the servings are listed even when, say, Kafka is down.
"""

from __future__ import annotations

from typing import Any

from declserve.desired import DesiredServing
from declserve.live import LiveResource, LiveState


def _dependency(address: str, state: LiveState) -> dict[str, str]:
    kind = address.split(".", 1)[0]
    if kind in state.unknown:
        return {"address": address, "state": f"unknown: {state.unknown[kind]}"}
    return {"address": address, "state": "present" if address in state.resources else "absent"}


def serving_status(
    name: str,
    desired: DesiredServing | None,
    live: LiveResource | None,
    state: LiveState,
    uses: tuple[str, ...] = (),
) -> dict[str, Any]:
    essence = live.essence if live else {}
    observed = live.observed if live else {}
    model = essence.get("model") or {}
    served_as = observed.get("servedName") or model.get("name")
    return {
        "name": name,
        "state": essence.get("state", "absent") if live else "absent",
        "health": live.health.state.value if live else None,
        "healthReason": live.health.reason if live else "",
        "desiredState": desired.spec.state.value if desired else None,
        "model": model.get("name") or (desired.spec.model.name if desired else None),
        "configuredVersion": model.get("version"),
        "desiredVersion": desired.version if desired else None,
        "servedVersions": list(observed.get("servedVersions", [])),
        "instancesReady": observed.get("ready", 0),
        "instancesDesired": desired.spec.instances if desired else None,
        "endpoints": [f"{e}/v1/models/{served_as}" for e in observed.get("endpoints", [])],
        "innerEndpoints": [
            f"{e}/v1/models/{served_as}" for e in observed.get("innerEndpoints", [])
        ],
        "members": list(observed.get("members", [])),
        "records": observed.get("records"),
        "topic": desired.topic if desired else None,
        "dependencies": [_dependency(a, state) for a in uses],
        "managedBySpec": desired is not None,
    }


def project_status(
    desired: dict[str, DesiredServing],
    live: LiveState,
    kind: str,
    uses: dict[str, tuple[str, ...]],
    only: str | None = None,
) -> list[dict[str, Any]]:
    """One row per serving; `uses` gives the addresses each serving depends on."""
    have = live.of_kind(kind)
    names = sorted(set(desired) | set(have))
    if only is not None:
        names = [n for n in names if n == only]
    return [serving_status(n, desired.get(n), have.get(n), live, uses.get(n, ())) for n in names]


def print_status(rows: list[dict[str, Any]], *, verbose: bool = False) -> None:
    for row in rows:
        served = ",".join(map(str, row["servedVersions"])) or "-"
        wanted = row["instancesDesired"] if row["instancesDesired"] is not None else "-"
        health = row["health"] or "-"
        topic = row["topic"] or "-"
        missing = [d for d in row["dependencies"] if d["state"] != "present"]
        topic += "".join(f" ({d['address']} {d['state']})" for d in missing)
        print(
            f"{row['name']:<20} {row['state']:<8} {health:<11} model {row['model']} "
            f"v{row['configuredVersion']} (served: {served})  "
            f"instances {row['instancesReady']}/{wanted}  topic {topic}"
        )
        records = row.get("records")
        if records:
            lost = sum(records["failed"].values())
            why = ", ".join(f"{k}: {v}" for k, v in sorted(records["failed"].items()) if v)
            print(f"{'':<20} records: {records['produced']} produced, {lost} not produced"
                  + (f" ({why})" if why else "")
                  + f", {records.get('refused', 0)} requests refused as too large to log")
        if row["healthReason"]:
            print(f"{'':<20} {row['healthReason']}")
        for endpoint in row["endpoints"]:
            print(f"{'':<20} {endpoint}")
        for endpoint in row.get("innerEndpoints", []):
            print(f"{'':<20} {endpoint} (inside the cluster)")
        if verbose:
            for m in row["members"]:
                where = f"  {m['endpoint']}" if m.get("endpoint") else ""
                print(f"{'':<22}{m['name']}: {m['state']}{where}")
