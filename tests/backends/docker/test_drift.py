"""Drift made by hand with the docker CLI shows as exactly that change, and apply repairs it."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.backends.docker.project import TestProject, changes, field, steps


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def running(make_project) -> TestProject:
    project: TestProject = make_project()
    project.serving("mnist", version=2, instances=2)
    project.apply()
    assert project.detailed_exitcode() == 0
    return project


def _repair(project: TestProject) -> None:
    assert project.detailed_exitcode() == 2
    project.apply()
    assert project.detailed_exitcode() == 0


def test_container_removed(running: TestProject) -> None:
    docker("rm", "-f", f"{running.name}-mnist-1")
    assert changes(running.plan(), "serving.mnist") == {field("instances", 1, 2)}
    _repair(running)
    assert len(running.containers("mnist")) == 2


def test_container_stopped(running: TestProject) -> None:
    name = f"{running.name}-mnist-0"
    docker("stop", "-t", "1", name)
    plan = running.plan()
    other = f"{running.name}-mnist-1"
    assert changes(plan, "serving.mnist") == {
        field("state", f"mixed: stopped on {name}; running on {other}", "running")
    }
    assert steps(plan, "serving.mnist")[0] == ("start", name)
    _repair(running)
    assert all(r["State"] == "running" for r in running.containers("mnist"))


def test_extra_container_with_the_serving_labels(running: TestProject) -> None:
    extra = f"{running.name}-handmade"
    docker(
        "run",
        "-d",
        "--name",
        extra,
        "--label",
        f"declserve.io/project={running.name}",
        "--label",
        "declserve.io/serving=mnist",
        "--entrypoint",
        "tensorflow_model_server",
        running.image,
        "--model_name=mnist",
        "--model_base_path=/nonexistent",
    )
    plan = running.plan()
    assert field("instances", 3, 2) in changes(plan, "serving.mnist")
    assert ("remove", extra) in steps(plan, "serving.mnist")
    _repair(running)
    assert extra not in {r["Names"] for r in running.containers("mnist")}


def test_model_config_file_edited(running: TestProject) -> None:
    config = running.state_dir / running.name / "mnist" / "models.config"
    config.write_text(config.read_text().replace("versions: 2", "versions: 1"))
    assert changes(running.plan(), "serving.mnist") == {field("model.version", 1, 2)}
    _repair(running)
    assert "versions: 2" in config.read_text()


def test_limit_changed(running: TestProject) -> None:
    name = f"{running.name}-mnist-1"
    docker("update", "--cpus", "1.5", name)
    other = f"{running.name}-mnist-0"
    plan = running.plan()
    assert changes(plan, "serving.mnist") == {
        field("resources.cpu", f"mixed: 1500m on {name}; 250m on {other}", "250m")
    }
    assert steps(plan, "serving.mnist") == [("update the limits of", name)]
    _repair(running)


def test_apply_killed_midway_leaves_exactly_the_remaining_work(make_project) -> None:
    project: TestProject = make_project()
    names = ["a1", "a2", "a3", "a4"]
    for n in names:
        project.serving(n, instances=2)
    command = project.command("apply", "--auto-approve", "--no-color", "--parallelism", "1")
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    done: list[str] = []
    deadline = time.monotonic() + 120
    assert child.stdout is not None
    for line in child.stdout:  # the child flushes each progress line
        if "create complete" in line:
            done.append(line.split(":")[0].strip().removeprefix("serving."))
        if ": create t" in line and done:
            os.kill(child.pid, signal.SIGKILL)  # killed while the second serving is half made
            break
        assert time.monotonic() < deadline, "apply never progressed"
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL and done == ["a1"]
    plan = project.plan()
    remaining = {rc["address"] for rc in plan["resource_changes"]}
    assert remaining == {f"serving.{n}" for n in names if n not in done}
    assert all(rc["action"] in ("create", "update") for rc in plan["resource_changes"])
    refused = project.run("apply", "--auto-approve")  # the killed run still holds the lock
    assert refused.returncode == 1 and "the project is locked" in refused.stderr
    lock_id = refused.stderr.split("lock ", 1)[1].split()[0]
    assert f"pid {child.pid}" in refused.stderr
    project.ok("force-unlock", lock_id)
    project.apply()
    assert project.detailed_exitcode() == 0
    assert len(project.containers()) == 8
