"""The steps the Docker planner plans for each kind of change (pure): what apply will do."""

from __future__ import annotations

import copy
from typing import Any

from declserve.backends.docker import planner as P
from declserve.backends.docker.essence import desired_essence, desired_replica
from declserve.live import HealthStatus, LiveResource
from declserve.plan import Action, DesiredResource, Step, field_diff
from tests.unit.test_docker_essence import SETTINGS, desired


def live_of(
    spec: dict[str, Any],
    *,
    health: HealthStatus | None = None,
    replica_edits: dict[int, dict[str, Any]] | None = None,
    extra: list[dict[str, Any]] | None = None,
    proxy: dict[str, Any] | None = None,
) -> LiveResource:
    """A live serving exactly as declserve would have made it from `spec`, then edited."""
    d = desired(**spec)
    essence = desired_essence(d, SETTINGS)
    replicas = []
    for i in range(d.spec.instances):
        r = {
            "name": f"p-m-{i}",
            "id": f"id{i}",
            "index": i,
            "running": d.spec.state.value == "running",
            "status": "running",
            "essence": desired_replica(d, SETTINGS),
            "problem": None,
        }
        r.update((replica_edits or {}).get(i, {}))
        replicas.append(r)
    running = d.spec.state.value == "running"
    front = {"name": "p-m-proxy", "id": "px", "running": running, "upstreamsCurrent": True}
    proxy = front if proxy is None else proxy
    return LiveResource(
        "serving",
        "m",
        essence,
        health or HealthStatus.ready(),
        detail={"replicas": replicas + (extra or []), "proxy": proxy},
    )


def shape(spec: dict[str, Any], live: LiveResource):  # type: ignore[no-untyped-def]
    want = DesiredResource("serving", "m", desired_essence(desired(**spec), SETTINGS))
    return P.DockerPlanner(SETTINGS).shape(want, live, field_diff(live.essence, want.essence))


def texts(s: Any) -> list[str]:
    return [step.text() for step in s.steps]


def test_version_bump_writes_the_file_and_waits_no_container_is_touched() -> None:
    live = live_of({"instances": 2})
    s = shape({"instances": 2, "model": {"name": "mnist", "version": 3}}, live)
    assert s.action is Action.UPDATE
    assert texts(s) == [
        "write config files (model config: version 3; replicas reload it in place)",
        "wait until ready: 2 replicas (each serving version 3)",
    ]


def test_limits_change_in_place_image_is_a_rolling_recreate() -> None:
    live = live_of({"instances": 2})
    s = shape({"instances": 2, "resources": {"cpu": 2}}, live)
    assert [(t.op, t.target) for t in s.steps] == [(P.LIMITS, "p-m-0"), (P.LIMITS, "p-m-1")]
    edited = live_of(
        {"instances": 2},
        replica_edits={
            1: {"essence": {**desired_replica(desired(), SETTINGS), "image": "other:1"}}
        },
    )
    edited = LiveResource(
        "serving", "m", {**edited.essence, "image": "mixed"}, detail=edited.detail
    )
    s = shape({"instances": 2}, edited)
    assert [(t.op, t.target) for t in s.steps] == [
        (P.RECREATE, "p-m-1"), (P.WAIT, "2 replicas"), (P.PROXY_POINT, P.READY_REPLICAS)]


def test_batching_parameters_restart_every_replica_one_at_a_time() -> None:
    spec = {"instances": 2, "batching": {"enabled": True, "maxBatchSize": 8}}
    live = live_of(spec)
    s = shape({"instances": 2, "batching": {"enabled": True, "maxBatchSize": 16}}, live)
    ops = [(t.op, t.target) for t in s.steps]
    assert ops == [
        (P.WRITE, P.CONFIG_FILES),
        (P.RECREATE, "p-m-0"),
        (P.RECREATE, "p-m-1"),
        (P.WAIT, "2 replicas"),
        (P.PROXY_POINT, P.READY_REPLICAS),
    ]
    assert "read at start" in s.steps[1].detail


def test_scaling_up_creates_and_down_removes_after_the_rest_are_ready() -> None:
    live = live_of({"instances": 2})
    up = shape({"instances": 3}, live)
    assert [(t.op, t.target) for t in up.steps] == [
        (P.CREATE, "p-m-2"), (P.WAIT, "3 replicas"), (P.PROXY_POINT, P.READY_REPLICAS)]
    down = shape({"instances": 1}, live)
    assert [(t.op, t.target) for t in down.steps] == [(P.REMOVE, "p-m-1")]


def test_a_container_started_by_hand_with_the_labels_is_the_one_removed() -> None:
    intruder = {
        "name": "handmade",
        "id": "x",
        "index": None,
        "running": True,
        "status": "running",
        "essence": desired_replica(desired(), SETTINGS),
        "problem": None,
    }
    live = live_of({"instances": 2}, extra=[intruder])
    live = LiveResource("serving", "m", {**live.essence, "instances": 3}, detail=live.detail)
    s = shape({"instances": 2}, live)
    assert [(t.op, t.target) for t in s.steps] == [(P.REMOVE, "handmade")]


def test_stop_and_start_are_their_own_actions() -> None:
    live = live_of({"instances": 2})
    s = shape({"instances": 2, "state": "stopped"}, live)
    assert s.action is Action.STOP
    assert [(t.op, t.target) for t in s.steps] == [
        (P.STOP, "p-m-0"), (P.STOP, "p-m-1"), (P.PROXY_STOP, "p-m-proxy")]
    stopped = live_of({"instances": 2, "state": "stopped"})
    s = shape({"instances": 2}, stopped)
    assert s.action is Action.START
    assert [t.op for t in s.steps] == [P.START, P.START, P.WAIT, P.PROXY_START, P.PROXY_POINT]


def test_a_degraded_replica_is_recreated_and_only_it() -> None:
    live = live_of(
        {"instances": 2},
        health=HealthStatus.degraded("p-m-1 is paused"),
        replica_edits={1: {"problem": "p-m-1 is paused"}},
    )
    s = shape({"instances": 2}, live)
    assert s.action is Action.REPAIR
    assert [(t.op, t.target, t.detail) for t in s.steps] == [
        (P.RECREATE, "p-m-1", "p-m-1 is paused"),
        (P.WAIT, "2 replicas", "each serving version 2"),
        (P.PROXY_POINT, P.READY_REPLICAS, ""),
    ]


def test_model_name_change_replaces_the_serving() -> None:
    live = live_of({"instances": 1})
    s = shape({"instances": 1, "model": {"name": "iris", "version": 1}}, live)
    assert s.action is Action.REPLACE and "model.name" in s.reason
    ops = [t.op for t in s.steps]
    assert ops.index(P.REMOVE) < ops.index(P.CREATE)


def test_a_stale_logging_proxy_is_pointed_at_the_replicas_again() -> None:
    spec = {"instances": 1, "inferenceLogging": {"topic": "t"}}
    d = desired(**spec)
    d = type(d)(d.serving, d.model, d.source, "t", False)
    proxy = {"name": "p-m-proxy", "id": "px", "running": True, "upstreamsCurrent": False}
    live = live_of(spec, proxy=proxy, health=HealthStatus.degraded("stale"))
    essence = copy.deepcopy(desired_essence(d, SETTINGS))
    live = LiveResource("serving", "m", essence, live.health, detail=live.detail)
    want = DesiredResource("serving", "m", essence)
    s = P.DockerPlanner(SETTINGS).shape(want, live, [])
    assert [(t.op, t.target) for t in s.steps] == [(P.PROXY_POINT, P.READY_REPLICAS)]


def test_every_serving_gets_a_front_proxy_and_logging_is_a_setting_of_it() -> None:
    want = DesiredResource("serving", "m", desired_essence(desired(instances=1), SETTINGS))
    created = P.DockerPlanner(SETTINGS).shape(want, None, [])
    assert created.steps[-1] == Step(P.PROXY_CREATE, "p-m-proxy",
                                     "a port chosen once and kept; no inference logging")
    d = desired(instances=1, inferenceLogging={"topic": "t"})
    logged = type(d)(d.serving, d.model, d.source, "t", False)
    essence = desired_essence(logged, SETTINGS)
    s = P.DockerPlanner(SETTINGS).shape(DesiredResource("serving", "m", essence), live_of(
        {"instances": 1}), field_diff(live_of({"instances": 1}).essence, essence))
    assert s.action is Action.UPDATE
    assert [(t.op, t.detail) for t in s.steps] == [
        (P.PROXY_CONFIGURE, "logs all to topic t")]  # no restart: the address keeps answering


def test_a_port_named_in_the_spec_moves_the_front_proxy() -> None:
    live = live_of({"instances": 1})
    s = shape({"instances": 1, "endpoint": {"port": 18500}}, live)
    assert [(t.op, t.detail) for t in s.steps] == [(P.PROXY_RECREATE, "frontend.port")]
