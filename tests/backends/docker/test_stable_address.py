"""One stable address per serving on Docker: its front proxy's port, kept across every change,
answering without a failed request while apply changes the serving behind it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.backends.docker.project import TestProject
from tests.backends.docker.test_logging import consume, logged, topic_name  # noqa: F401
from tests.backends.docker.traffic import SteadyClient, served_version

BASE: dict[str, Any] = {
    "version": 1,
    "instances": 2,
    "batching": {"enabled": True, "maxBatchSize": 8},
    "inferenceLogging": {"topic": "create", "mode": "all"},
}
CHANGES: dict[str, list[dict[str, Any]]] = {
    "version-bump": [{**BASE, "version": 2}],
    "instances-1-3-1": [{**BASE, "instances": n} for n in (1, 3, 1)],
    "batching": [{**BASE, "batching": {"enabled": True, "maxBatchSize": 16}}],
    "logging-mode": [{**BASE, "inferenceLogging": {"topic": "create", "mode": "predictions"}}],
}


def address(project: TestProject, serving: str) -> str:
    (url,) = project.status()[serving]["endpoints"]
    return str(url)


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_no_request_fails_through_the_stable_address(
    change: str,
    logged: TestProject,  # noqa: F811
    kafka_broker: Any,
) -> None:
    logged.serving("m", **BASE)
    logged.apply()
    url = address(logged, "m")
    with SteadyClient([url]) as client:
        for spec in CHANGES[change]:
            logged.serving("m", **spec)
            plan = logged.plan()
            assert [rc["symbol"] for rc in plan["resource_changes"]] == ["~"], plan
            logged.apply()
            assert logged.detailed_exitcode() == 0
    assert client.failures == [], client.failures[:5]
    assert client.ok > 10
    assert address(logged, "m") == url  # the same address after the change
    final = CHANGES[change][-1]
    assert served_version(url) == str(final["version"])
    records = consume(kafka_broker, topic_name(logged, "m"), client.ok + 1, deadline=60)
    assert len(records) == client.ok + 1  # one per request (the last one is served_version's)


def test_a_port_named_in_the_spec_is_the_address(make_project) -> None:
    from tests.fixtures.docker_engine import free_port

    project: TestProject = make_project()
    port = free_port()
    project.serving("m", endpoint={"port": port})
    project.apply()
    assert address(project, "m") == f"http://127.0.0.1:{port}/v1/models/mnist"
    assert served_version(address(project, "m")) == "1"
    project.serving("m", endpoint={"port": port}, version=2)
    project.apply()
    assert address(project, "m") == f"http://127.0.0.1:{port}/v1/models/mnist"
    assert project.detailed_exitcode() == 0


def test_no_record_is_lost_silently_near_and_over_the_limit(
    logged: TestProject,  # noqa: F811
    kafka_broker: Any,
) -> None:
    import json
    import urllib.error
    import urllib.request

    logged.serving("m", inferenceLogging={"topic": "create", "mode": "model-inputs"})
    logged.apply()
    url = address(logged, "m")
    row = [1.0, 2.0, 3.0, 4.0]
    near = json.dumps({"instances": [row] * 40_000}).encode()  # ~0.9 MiB, under the 1 MiB limit
    over = json.dumps({"instances": [row] * 60_000}).encode()  # ~1.3 MiB
    assert 0.8 * 2**20 < len(near) < 2**20 < len(over)
    request = urllib.request.Request(f"{url}:predict", data=near,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        assert resp.status == 200
    (record,) = consume(kafka_broker, topic_name(logged, "m"), 1, deadline=60)
    assert len(record["inputs"]) == 40_000
    refused = urllib.request.Request(f"{url}:predict", data=over,
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(refused, timeout=60)
    assert answer.value.code == 413 and "error" in json.loads(answer.value.read())
    (status,) = json.loads(logged.ok("status", "m", "--json").stdout)
    assert status["records"]["produced"] == 1 and status["records"]["refused"] == 1
    assert "1 requests refused as too large to log" in logged.ok("status").stdout
