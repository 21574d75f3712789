"""Plan and apply against the real Docker engine: create, converge, change, prune, conflicts."""

from __future__ import annotations

import json
import shutil
import subprocess

import jsonschema
import yaml

from tests.backends.docker.project import EXAMPLES, ROOT, TestProject, changes, field
from tests.backends.docker.traffic import SteadyClient, served_version


def test_examples_apply_from_an_empty_engine_then_plan_is_empty(make_project) -> None:
    project: TestProject = make_project()
    shutil.copytree(EXAMPLES / "servings", project.root / "servings")
    assert project.containers(proxies=True) == []
    project.apply()
    status = project.status()
    specs = [
        d
        for f in (project.root / "servings").glob("*.yaml")
        for d in yaml.safe_load_all(f.read_text())
    ]
    assert set(status) == {d["metadata"]["name"] for d in specs}
    for doc in specs:
        row = status[doc["metadata"]["name"]]
        wanted = doc["spec"].get("instances", 1)
        if doc["spec"].get("state", "running") == "stopped":
            assert row["state"] == "stopped" and len(project.containers(row["name"])) == wanted
            continue
        assert row["state"] == "running" and row["instancesReady"] == wanted
        assert len(row["endpoints"]) == 1 and len(row["members"]) == wanted
        assert served_version(row["endpoints"][0]) == str(row["desiredVersion"])
    again = project.run("plan", "--detailed-exitcode", "--no-color")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout


def test_version_bump_under_load_drops_no_request(make_project) -> None:
    project: TestProject = make_project()
    project.serving("mnist", version=1, instances=2)
    project.apply()
    before = project.status()["mnist"]
    replicas = [f"{m['endpoint']}/v1/models/mnist" for m in before["members"]]
    assert len(replicas) == 2
    project.serving("mnist", version=2, instances=2)
    plan = project.plan()
    assert changes(plan, "serving.mnist") == {field("model.version", 1, 2)}
    with SteadyClient(replicas + before["endpoints"]) as client:
        project.apply()
    assert client.failures == [], client.failures[:5]
    assert client.ok > 20 and client.versions >= {"1", "2"}
    for url in replicas:  # the same containers, reloaded in place
        assert served_version(url) == "2"
    after = project.status()["mnist"]
    assert after["endpoints"] == before["endpoints"] and after["members"] == [
        {**m, "servedVersions": [2]} for m in before["members"]]


def test_scale_up_and_down(make_project) -> None:
    project: TestProject = make_project()
    project.serving("mnist", instances=1)
    project.apply()
    project.serving("mnist", instances=3)
    assert changes(project.plan(), "serving.mnist") == {field("instances", 1, 3)}
    project.apply()
    assert project.status()["mnist"]["instancesReady"] == 3
    project.serving("mnist", instances=1)
    plan = project.plan()
    assert ("instances", "3", "1") in changes(plan, "serving.mnist")
    project.apply()
    assert len(project.containers("mnist")) == 1 and project.detailed_exitcode() == 0


def test_stop_keeps_containers_and_start_serves_again(make_project) -> None:
    project: TestProject = make_project()
    project.serving("mnist", instances=2)
    project.apply()
    project.serving("mnist", instances=2, state="stopped")
    plan = project.plan()
    (rc,) = plan["resource_changes"]
    assert rc["action"] == "stop" and changes(plan, "serving.mnist") == {
        field("state", "running", "stopped")
    }
    project.apply()
    rows = project.containers("mnist")
    assert len(rows) == 2 and all(r["State"] == "exited" for r in rows)
    project.serving("mnist", instances=2, state="running")
    assert project.plan()["resource_changes"][0]["action"] == "start"
    project.apply()
    for url in project.status()["mnist"]["endpoints"]:
        assert served_version(url) == "1"
    assert project.detailed_exitcode() == 0


def test_batching_on_recreates_with_the_batching_file(make_project) -> None:
    project: TestProject = make_project()
    project.serving("mnist")
    project.apply()
    batching = {
        "enabled": True,
        "maxBatchSize": 16,
        "batchTimeoutMicros": 1000,
        "allowedBatchSizes": [4, 16],
    }
    project.serving("mnist", batching=batching)
    assert changes(project.plan(), "serving.mnist") == {
        field("batching.enabled", False, True),
        field("batching.allowed_batch_sizes", None, [4, 16]),
        field("batching.batch_timeout_micros", None, 1000),
        field("batching.max_batch_size", None, 16),
    }
    project.apply()
    (row,) = project.containers("mnist")
    inspect = json.loads(
        subprocess.run(
            ["docker", "inspect", row["ID"]], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    assert "--enable_batching=true" in inspect["Args"]
    text = (project.state_dir / project.name / "mnist" / "batching.config").read_text()
    assert "max_batch_size { value: 16 }" in text
    assert served_version(project.status()["mnist"]["endpoints"][0]) == "1"
    assert project.detailed_exitcode() == 0


def test_resources_change_in_place(make_project) -> None:
    project: TestProject = make_project()
    project.serving("mnist")
    project.apply()
    before = {r["ID"] for r in project.containers("mnist")}
    project.serving("mnist", resources={"cpu": "500m", "memory": "256Mi"})
    assert changes(project.plan(), "serving.mnist") == {
        field("resources.cpu", "250m", "500m"),
        field("resources.memory", "128Mi", "256Mi"),
    }
    project.apply()
    (row,) = project.containers("mnist")
    assert {row["ID"]} == before  # docker update, no restart
    inspect = json.loads(
        subprocess.run(
            ["docker", "inspect", row["ID"]], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    assert (
        inspect["HostConfig"]["NanoCpus"] == 500_000_000
        and inspect["HostConfig"]["Memory"] == 256 * 2**20
    )
    assert project.detailed_exitcode() == 0


def test_unmanaged_container_in_the_way_fails_the_plan(make_project) -> None:
    project: TestProject = make_project()
    project.serving("mnist")
    squatter = f"{project.name}-mnist-0"
    subprocess.run(
        ["docker", "create", "--name", squatter, project.image], check=True, capture_output=True
    )
    result = project.run("plan", "--no-color")
    assert result.returncode == 1
    assert squatter in result.stderr and "not managed by declserve" in result.stderr
    assert project.run("apply", "--auto-approve").returncode == 1
    assert project.containers(proxies=True) == []  # nothing created


def test_removed_spec_is_deleted_only_with_prune(make_project) -> None:
    project: TestProject = make_project()
    project.serving("mnist")
    project.serving("iris", model="iris")
    project.apply()
    project.remove_serving("iris")
    plan = project.plan()
    assert plan["resource_changes"] == [] and any("--prune" in w for w in plan["warnings"])
    project.apply()
    assert len(project.containers("iris")) == 1
    pruned = project.plan("--prune")
    assert [(rc["address"], rc["action"]) for rc in pruned["resource_changes"]] == [
        ("serving.iris", "delete")
    ]
    project.apply("--prune")
    assert project.containers("iris") == [] and len(project.containers("mnist")) == 1


def test_json_plan_validates_against_its_schema_and_markdown_starts_with_summary(
    make_project,
) -> None:
    project: TestProject = make_project()
    project.serving("mnist")
    plan = project.plan()
    schema = json.loads((ROOT / "schema" / "plan.schema.json").read_text())
    jsonschema.validate(plan, schema)
    assert plan["summary"] == {"add": 1, "change": 0, "destroy": 0} and plan["changes_present"]
    markdown = project.ok("plan", "--markdown").stdout
    assert (
        markdown.splitlines()[0].startswith("### declserve plan for")
        and "1 to add" in markdown.splitlines()[0]
    )
    assert "<details>" in markdown
    text = project.ok("plan", "--no-color").stdout
    assert "+ serving.mnist" in text and text.rstrip().endswith(
        "Plan: 1 to add, 0 to change, 0 to destroy."
    )
    assert "\x1b[" not in text


def test_status_and_logs_show_the_details_of_each_serving(make_project) -> None:
    project: TestProject = make_project()
    project.serving("mnist", version=2, instances=2)
    project.serving("off", model="iris", state="stopped")
    project.apply()
    text = project.ok("status").stdout
    assert (
        "mnist" in text
        and "running" in text
        and "v2 (served: 2)" in text
        and "instances 2/2" in text
    )
    assert "off" in text and "stopped" in text and "instances 0/1" in text
    assert text.count("http://127.0.0.1:") == 1  # the one address of the running serving
    verbose = project.ok("status", "--verbose").stdout
    assert verbose.count("http://127.0.0.1:") == 1 + 2  # and each replica's own
    one = json.loads(project.ok("status", "mnist", "--json").stdout)
    assert [r["name"] for r in one] == ["mnist"] and one[0]["servedVersions"] == [2]
    logs = project.ok("logs", "mnist", "--tail", "50").stdout.splitlines()
    replicas = {line.split(" | ")[0] for line in logs}
    assert replicas == {f"{project.name}-mnist-0", f"{project.name}-mnist-1",
                        f"{project.name}-mnist-proxy"}
    assert any("Successfully loaded servable version" in line for line in logs)
    missing = project.run("logs", "nope")
    assert missing.returncode == 1 and "no serving named 'nope'" in missing.stderr


def test_apply_without_auto_approve_asks_and_only_yes_applies(make_project) -> None:
    import os

    project: TestProject = make_project()
    project.serving("mnist")
    command = project.command("apply", "--no-color")
    for answer in ("no\n", "", "YES\n"):
        declined = subprocess.run(
            command, input=answer, capture_output=True, text=True, timeout=120, env=os.environ
        )
        assert declined.returncode == 1 and "Only 'yes' will be accepted" in declined.stdout
        assert "nothing was changed" in declined.stderr and project.containers(proxies=True) == []
    accepted = subprocess.run(
        command, input="yes\n", capture_output=True, text=True, timeout=300, env=os.environ
    )
    assert accepted.returncode == 0 and "Apply complete" in accepted.stdout
    assert len(project.containers()) == 1


def test_plan_colours_only_on_a_terminal_and_never_with_no_color(make_project) -> None:
    import os
    import pty
    import sys

    project: TestProject = make_project()
    project.serving("mnist")

    def on_terminal(*flags: str) -> str:
        leader, follower = pty.openpty()
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        child = subprocess.run(
            [sys.executable, "-m", "declserve.cli", "plan", "-C", str(project.root), *flags],
            stdout=follower,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=120,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.close(leader)
        assert child.returncode == 0
        return b"".join(chunks).decode()

    assert "\x1b[32m+ serving.mnist" in on_terminal()
    assert "\x1b[" not in on_terminal("--no-color")
    assert "\x1b[" not in project.ok("plan").stdout  # a pipe is not a terminal
