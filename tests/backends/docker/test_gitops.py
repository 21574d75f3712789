"""The GitOps workflow on the real Docker engine: saved plans, the lock, targets, delete safety,
protection and history."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.backends.docker.project import ROOT, TestProject, changes, field, run_hand_made
from tests.backends.docker.traffic import predict


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def test_saved_plan_applies_exactly_its_actions(make_project, tmp_path: Path) -> None:
    project: TestProject = make_project()
    project.serving("a", instances=1)
    project.serving("b", instances=1)
    saved = tmp_path / "plan.json"
    project.ok("plan", "--out", str(saved))
    project.serving("c", instances=1)  # added after the plan was made: not part of it
    result = project.ok("apply", str(saved), "--no-color")
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in result.stdout
    assert {
        r["Labels"].split("declserve.io/serving=")[1].split(",")[0] for r in project.containers()
    } == {"a", "b"}
    plan = project.plan()
    assert [rc["address"] for rc in plan["resource_changes"]] == ["serving.c"]


def test_saved_plan_is_refused_when_stale_edited_or_foreign(make_project, tmp_path: Path) -> None:
    project: TestProject = make_project()
    project.serving("a", instances=2)
    project.apply()
    project.serving("a", instances=2, version=2)
    saved = tmp_path / "plan.json"
    project.ok("plan", "--out", str(saved))

    edited = tmp_path / "edited.json"
    body = json.loads(saved.read_text())
    body["plan"]["resource_changes"][0]["changes"][0]["after"] = 3
    edited.write_text(json.dumps(body))
    result = project.run("apply", str(edited))
    assert result.returncode == 1 and "checksum mismatch" in result.stderr

    other: TestProject = make_project()
    other.serving("a", instances=2, version=2)
    result = other.run("apply", str(saved))
    assert result.returncode == 1 and f"the plan is for project {project.name!r}" in result.stderr

    docker("stop", "-t", "1", f"{project.name}-a-1")  # a hand change after the plan
    result = project.run("apply", str(saved))
    assert result.returncode == 1 and "the plan is stale" in result.stderr
    assert project.status()["a"]["configuredVersion"] == 1  # nothing applied


def test_two_applies_at_once_one_acts_the_other_names_the_holder(make_project) -> None:
    project: TestProject = make_project()
    for name in ("a", "b"):
        project.serving(name, instances=2)
    command = project.command("apply", "--auto-approve", "--no-color", "--lock-timeout", "1s")
    runs = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in runs]  # type: ignore[union-attr]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert "the project is locked after waiting" in loser and "declserve: error:" in loser
    assert "held by" in loser and "(pid " in loser and "declserve force-unlock" in loser
    history = json.loads(project.ok("history", "--json").stdout)
    assert [e["outcome"] for e in history] == ["succeeded"]
    assert len(project.containers()) == 4


def test_target_touches_only_the_named_servings(make_project) -> None:
    project: TestProject = make_project()
    for name in ("a", "b", "c"):
        project.serving(name)
    plan = project.plan("--target", "a", "--target", "c")
    assert [rc["address"] for rc in plan["resource_changes"]] == ["serving.a", "serving.c"]
    project.apply("--target", "b")
    assert {r["Names"] for r in project.containers()} == {f"{project.name}-b-0"}
    bad = project.run("plan", "--target", "nope")
    assert bad.returncode == 1 and "--target: no serving named 'nope'" in bad.stderr


def test_empty_spec_directory_with_prune_is_refused(make_project) -> None:
    project: TestProject = make_project()
    project.serving("a")
    project.serving("b")
    project.apply()
    project.remove_serving("a")
    project.remove_serving("b")
    refused = project.run("apply", "--auto-approve", "--prune")
    assert refused.returncode == 1 and "--allow-empty" in refused.stderr
    assert len(project.containers()) == 2
    project.apply("--prune", "--allow-empty")
    assert project.containers(proxies=True) == []


def test_protected_serving_survives_prune_and_destroy_until_unprotected(make_project) -> None:
    project: TestProject = make_project()
    project.serving("keep", protected=True)
    project.serving("other")
    project.apply()
    project.remove_serving("keep")
    plan = project.plan("--prune")
    assert plan["resource_changes"] == [] and any("protected" in w for w in plan["warnings"])
    project.apply("--prune")
    assert len(project.containers("keep")) == 1
    project.ok("destroy", "--auto-approve")
    assert len(project.containers("keep")) == 1 and project.containers("other") == []
    project.ok("unprotect", "keep")
    project.ok("destroy", "--auto-approve")
    assert project.containers(proxies=True) == []


def test_protection_changes_in_place(make_project) -> None:
    project: TestProject = make_project()
    project.serving("a")
    project.apply()
    project.serving("a", protected=True)
    assert changes(project.plan(), "serving.a") == {field("protected", False, True)}
    before = {r["ID"] for r in project.containers()}
    project.apply()
    assert {r["ID"] for r in project.containers()} == before and project.detailed_exitcode() == 0


def test_history_lists_every_apply_with_its_outcome(make_project) -> None:
    project: TestProject = make_project()
    project.serving("a")
    project.apply()
    project.serving("a", resources={"cpu": "250m", "memory": "6Mi"})  # below what it uses: refused
    failed = project.run("apply", "--auto-approve", "--no-color")
    assert failed.returncode == 1 and "refused to change the limits" in failed.stderr
    project.serving("a")
    project.apply()  # nothing to do: the refused change left the container as it was
    entries = json.loads(project.ok("history", "--json").stdout)
    assert [e["outcome"] for e in entries] == ["succeeded", "failed", "succeeded"]
    assert [e["summary"]["change"] for e in entries] == [0, 1, 0]
    assert all(e["user"] and e["host"] and e["operation"] == "apply" for e in entries)
    assert entries[1]["changes"][0]["status"] == "failed"
    text = project.ok("history").stdout
    assert text.count("succeeded") == 2 and text.count("failed") == 1


def test_import_adopts_a_hand_made_serving_and_the_next_plan_is_empty(make_project) -> None:
    project: TestProject = make_project()
    (project.root / "servings").mkdir()
    schema = project.root.parent / "schema"  # as in this repository: a schema/ above the project
    schema.mkdir(exist_ok=True)
    shutil.copy(ROOT / "schema" / "serving.schema.json", schema)
    name = f"{project.name}x"  # a serving name nobody else uses on this engine
    for i in range(2):
        run_hand_made(
            project, f"{name}-{i}", "-p", "127.0.0.1::8501", "--cpus", "0.5", "--memory", "128m"
        )
    try:
        asked = project.run("import", name)  # no terminal to answer: nothing is changed
        assert asked.returncode == 1 and "Cancelled" in asked.stderr
        assert f"remove the hand-made container(s) {name}-1 (ports they publish" in asked.stdout
        port = int(docker("port", f"{name}-0", "8501/tcp").split()[0].rsplit(":", 1)[1])
        assert f"127.0.0.1:{port} moves to the front proxy of serving {name}" in asked.stdout
        assert project.containers(proxies=True) == []
        result = project.ok("import", name, "--auto-approve")
        assert "model iris version 2, 2 instance(s)" in result.stdout
        written = (project.root / "servings" / f"{name}.yaml").read_text()
        header = "# yaml-language-server: $schema=../../schema/serving.schema.json"
        assert written.startswith(header)
        spec = yaml.safe_load(written)
        assert spec["spec"] == {
            "model": {"name": "iris", "version": 2},
            "instances": 2,
            "resources": {"cpu": "500m", "memory": "128Mi"},
            "endpoint": {"port": port},  # the address name-0 published, kept
        }
        assert project.detailed_exitcode() == 0
        assert len(project.containers(name)) == 2
        leftovers = docker("ps", "-aq", "--filter", f"name=^/{name}-[0-9]+$").split()
        assert leftovers == []
        (url,) = project.status()[name]["endpoints"]
        assert url == f"http://127.0.0.1:{port}/v1/models/iris"  # name-0's address
        assert predict(url)["model_version"] == "2"
        again = project.run("import", name)
        assert again.returncode == 1 and "already has a spec" in again.stderr
    finally:
        ids = docker("ps", "-aq", "--filter", f"name=^/{name}-[0-9]+$").split()
        if ids:
            docker("rm", "-f", *ids)
