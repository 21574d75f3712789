"""What the plan says is what really runs on Docker: the server process, every file declserve
writes, each replica's health, and the records of the project that housekeeping must not erase."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from typing import Any

from tests.backends.docker.project import TestProject, changes, field, steps
from tests.backends.docker.test_interrupt import Lines
from tests.backends.docker.test_logging import logged  # noqa: F401  (a fixture)
from tests.backends.docker.traffic import served_version
from tests.fixtures.polling import wait_until


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def prune_volumes(label_filter: str) -> None:
    """`docker volume prune -a -f`, limited to this test's own volumes so no one else's go.

    Engines before API 1.42 (Debian's 20.10) have no `-a`: their prune removes unused named
    volumes as well, which is what `-a` does on newer ones.
    """
    new = subprocess.run(["docker", "volume", "prune", "-a", "-f", "--filter", label_filter],
                         capture_output=True, text=True)
    if new.returncode != 0:
        assert "unknown shorthand flag" in new.stderr or "requires API version" in new.stderr, (
            new.stderr)
        docker("volume", "prune", "-f", "--filter", label_filter)


def loaded_batch_sizes(project: TestProject, serving: str) -> dict[str, str]:
    """The max_batch_size each replica's server process says it loaded when it started."""
    out: dict[str, str] = {}
    for line in project.ok("logs", serving, "--tail", "200").stdout.splitlines():
        member, _, text = line.partition(" | ")
        if "Wrapping session to perform batch processing (max_batch_size:" in text:
            out[member] = text.rsplit("max_batch_size: ", 1)[1].rstrip(")")
    return out


def test_a_batching_parameter_change_reaches_the_server_process(make_project) -> None:
    project: TestProject = make_project()
    project.serving("m", instances=2, batching={"enabled": True, "maxBatchSize": 8})
    project.apply()
    assert set(loaded_batch_sizes(project, "m").values()) == {"8"}
    project.serving("m", instances=2, batching={"enabled": True, "maxBatchSize": 16})
    plan = project.plan()
    assert changes(plan, "serving.m") == {field("batching.max_batch_size", 8, 16)}
    assert [op for op, _ in steps(plan, "serving.m")].count("recreate") == 2
    project.apply()
    loaded = loaded_batch_sizes(project, "m")
    assert loaded == {f"{project.name}-m-0": "16", f"{project.name}-m-1": "16"}
    assert project.detailed_exitcode() == 0


def test_an_edit_of_the_model_config_beyond_the_version_is_drift(make_project) -> None:
    project: TestProject = make_project()
    project.serving("m")
    project.apply()
    config = project.state_dir / project.name / "m" / "models.config"
    config.write_text(config.read_text().replace('base_path: "/models/m', 'base_path: "/models/x'))
    plan = project.plan()
    assert field("modelConfig.base_path", "/models/xnist", "/models/mnist") in changes(
        plan, "serving.m")
    project.apply()
    assert 'base_path: "/models/mnist"' in config.read_text()
    assert project.detailed_exitcode() == 0


def test_a_replica_whose_server_stops_answering_is_repaired(make_project) -> None:
    project: TestProject = make_project()
    project.serving("m", instances=2)
    project.apply()
    frozen = f"{project.name}-m-1"
    pid = int(docker("inspect", "--format", "{{.State.Pid}}", frozen))
    os.kill(pid, signal.SIGSTOP)  # from the host: the port stays open and nothing answers
    plan = project.plan()
    (rc,) = plan["resource_changes"]
    assert rc["action"] == "repair" and "does not answer" in rc["reason"]
    assert steps(plan, "serving.m")[0] == ("recreate", frozen)
    assert project.status()["m"]["health"] == "degraded"
    project.apply()
    assert project.detailed_exitcode() == 0
    assert {served_version(u) for u in project.status()["m"]["endpoints"]} == {"1"}


def test_history_survives_volume_housekeeping_and_keeps_its_bound(make_project) -> None:
    project: TestProject = make_project()
    for version in (1, 2, 1):
        project.serving("m", version=version)
        project.apply()
    prune_volumes(f"label=declserve.io/history={project.name}")
    entries = json.loads(project.ok("history", "--json").stdout)
    assert [e["summary"] for e in entries] == [
        {"add": 1, "change": 0, "destroy": 0}, {"add": 0, "change": 1, "destroy": 0},
        {"add": 0, "change": 1, "destroy": 0}]
    project.serving("m", version=2)
    project.apply("--keep", "2")
    kept = json.loads(project.ok("history", "--json").stdout)
    assert kept == [entries[2], kept[1]] and kept[1]["summary"]["change"] == 1


def test_history_text_shows_the_whole_commit_and_dirty(make_project) -> None:
    project: TestProject = make_project()
    project.serving("m")
    git = ["git", "-C", str(project.root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "specs"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    project.serving("m", instances=2)  # uncommitted
    project.apply()
    assert f"commit {head}+dirty" in project.ok("history").stdout


def test_status_shows_the_servings_when_kafka_is_down(
    logged: TestProject,  # noqa: F811
    kafka_broker: Any,
) -> None:
    logged.serving("a", inferenceLogging={"topic": "create"})
    logged.apply()
    kafka_broker.stop()
    try:
        result = logged.ok("status", "--json")
        (row,) = json.loads(result.stdout)
        assert row["state"] == "running" and row["endpoints"]
        (dep,) = row["dependencies"]
        assert dep["state"].startswith("unknown: cannot reach Kafka")
        assert "unknown: cannot reach Kafka" in logged.ok("status").stdout
    finally:
        kafka_broker.start()


def test_logs_show_the_proxy_and_follow_until_ctrl_c(logged: TestProject) -> None:  # noqa: F811
    logged.serving("a", inferenceLogging={"topic": "create"})
    logged.apply()
    members = {line.split(" | ")[0] for line in logged.ok("logs", "a").stdout.splitlines()}
    assert members == {f"{logged.name}-a-0", f"{logged.name}-a-proxy"}
    follow = subprocess.Popen(logged.command("logs", "a", "-f", "--tail", "5"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)
    assert follow.stdout is not None
    out = Lines(follow.stdout)
    out.wait_for(f"{logged.name}-a-proxy | ")
    out.wait_for(f"{logged.name}-a-0 | ")
    assert follow.poll() is None  # still following
    follow.send_signal(signal.SIGINT)
    assert follow.wait(timeout=30) == 0



def test_a_replica_that_never_came_to_serve_the_pinned_version_is_repaired(make_project) -> None:
    project: TestProject = make_project()
    project.serving("m", instances=2, version=2)
    project.apply()
    # As after an apply that failed half-way: replica 1 made the way declserve makes it, but
    # from a model directory that lacks the pinned version: that version never becomes
    # AVAILABLE there (TensorFlow Serving then keeps its REST port shut, waiting for it).
    stale = project.root / "stale" / "Models" / "mnist"
    stale.mkdir(parents=True)
    shutil.copytree(project.root / "registry" / "Models" / "mnist" / "1", stale / "1")
    name = f"{project.name}-m-1"
    attrs = json.loads(docker("inspect", name))[0]
    docker("rm", "-f", name)
    labels = [x for k, v in attrs["Config"]["Labels"].items() for x in ("--label", f"{k}={v}")]
    mounts = [f"{stale if m['Destination'] == '/models/mnist' else m['Source']}:"
              f"{m['Destination']}:ro" for m in attrs["Mounts"]]
    host = attrs["HostConfig"]
    docker("run", "-d", "--name", name, *labels, *[x for m in mounts for x in ("-v", m)],
           "-p", "127.0.0.1::8501", "--cpus", str(host["NanoCpus"] / 1e9),
           "--memory", str(host["Memory"]), "--memory-swap", str(host["Memory"]),
           "--restart", host["RestartPolicy"]["Name"], "--entrypoint", "tensorflow_model_server",
           attrs["Config"]["Image"], *attrs["Args"])
    wait_until(lambda: "was not found in the file system" in subprocess.run(
        ["docker", "logs", name], capture_output=True, text=True).stderr, timeout=60)
    assert project.detailed_exitcode() == 2
    plan = project.plan()
    (rc,) = plan["resource_changes"]
    assert rc["action"] == "repair" and f"{name} does not answer" in rc["reason"], rc
    assert ("recreate", name) in steps(plan, "serving.m")
    project.apply()
    assert project.detailed_exitcode() == 0
    assert project.status()["m"]["servedVersions"] == [2]
