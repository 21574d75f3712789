"""The backend contract: what every serving backend does, shown against its real server.

Each test runs once per backend in `conftest.BACKENDS`. Only declserve's command line and the
harness (the backend's own tools, for what users do by hand) are used, so a new backend joins
by adding a harness, not by changing these tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from declserve.lock import LockInfo
from declserve.workflow import Workspace
from tests.backends.contract.harness import Harness
from tests.backends.docker.project import TestProject, changes, field
from tests.backends.docker.traffic import predict


def only_change(plan: dict[str, Any]) -> dict[str, Any]:
    (rc,) = plan["resource_changes"]
    return rc  # type: ignore[no-any-return]


def answers(project: TestProject, serving: str) -> set[str]:
    """The versions the serving's addresses answer with."""
    urls = project.status()[serving]["endpoints"]
    assert urls, f"serving {serving} has no address"
    return {str(predict(url)["model_version"]) for url in urls}


def running(harness: Harness, **spec: Any) -> TestProject:
    project = harness.project()
    project.serving("m", **spec)
    project.apply()
    assert project.detailed_exitcode() == 0
    return project


def test_create_answers_and_the_next_plan_is_empty(harness: Harness) -> None:
    project = harness.project()
    project.serving("m", version=1, instances=2)
    rc = only_change(project.plan())
    assert rc["action"] == "create" and rc["steps"], rc
    project.apply()
    assert project.detailed_exitcode() == 0
    assert harness.members(project, "m") == 2
    assert answers(project, "m") == {"1"}


def test_version_bump_is_in_place(harness: Harness) -> None:
    project = running(harness, version=1)
    project.serving("m", version=2)
    rc = only_change(project.plan())
    assert rc["action"] == "update" and changes(project.plan(), "serving.m") == {
        field("model.version", 1, 2)
    }
    project.apply()
    assert answers(project, "m") == {"2"} and project.detailed_exitcode() == 0


def test_instances_up_and_down(harness: Harness) -> None:
    project = running(harness, instances=1)
    for n in (3, 1):
        project.serving("m", instances=n)
        assert field("instances", 4 - n, n) in changes(project.plan(), "serving.m")
        project.apply()
        assert harness.members(project, "m") == n and project.detailed_exitcode() == 0


def test_resources_update_in_place(harness: Harness) -> None:
    project = running(harness)
    project.serving("m", resources={"cpu": "500m", "memory": "256Mi"})
    rc = only_change(project.plan())
    assert rc["action"] == "update"
    assert {c["path"] for c in rc["changes"]} == {"resources.cpu", "resources.memory"}
    project.apply()
    assert project.detailed_exitcode() == 0 and answers(project, "m") == {"1"}


def test_model_change_is_a_replace(harness: Harness) -> None:
    project = running(harness)
    project.serving("m", model="iris", version=1)
    rc = only_change(project.plan())
    assert rc["action"] == "replace" and rc["symbol"] == "-/+"
    project.apply()
    assert project.detailed_exitcode() == 0
    assert project.status()["m"]["model"] == "iris" and answers(project, "m") == {"1"}


def test_stop_keeps_and_start_restores(harness: Harness) -> None:
    project = running(harness, instances=2)
    project.serving("m", instances=2, state="stopped")
    assert only_change(project.plan())["action"] == "stop"
    project.apply()
    assert project.status()["m"]["state"] == "stopped" and project.detailed_exitcode() == 0
    project.serving("m", instances=2)
    assert only_change(project.plan())["action"] == "start"
    project.apply()
    assert answers(project, "m") == {"1"} and harness.members(project, "m") == 2


def test_delete_only_with_prune(harness: Harness) -> None:
    project = running(harness)
    project.serving("keep")
    project.remove_serving("m")
    plan = project.plan()
    assert [rc["address"] for rc in plan["resource_changes"]] == ["serving.keep"]
    assert any("--prune" in w for w in plan["warnings"])
    project.apply("--prune")
    assert harness.members(project, "m") == 0 and project.detailed_exitcode() == 0


def test_drift_made_by_hand_shows_and_apply_repairs_it(harness: Harness) -> None:
    project = running(harness, instances=2)
    harness.scale_by_hand(project, "m", 1)
    assert field("instances", 1, 2) in changes(project.plan(), "serving.m")
    assert project.detailed_exitcode() == 2
    project.apply()
    assert harness.members(project, "m") == 2 and project.detailed_exitcode() == 0


def test_a_broken_member_is_a_repair(harness: Harness) -> None:
    project = running(harness, instances=2)
    harness.break_member(project, "m")
    rc = only_change(project.plan())
    assert rc["action"] == "repair" and rc["reason"], rc
    assert project.status()["m"]["health"] == "degraded"
    assert project.detailed_exitcode() == 2
    project.apply()
    assert project.detailed_exitcode() == 0 and project.status()["m"]["health"] == "ready"


def test_the_lock_stops_a_second_apply_and_names_its_holder(harness: Harness) -> None:
    project = harness.project()
    project.serving("m")
    backend = Workspace.open(project.root).backend
    holder = LockInfo.mine("test-holder")
    assert backend.try_lock(holder) is None
    try:
        refused = project.run("apply", "--auto-approve")
        assert refused.returncode == 1
        assert holder.id in refused.stderr and "test-holder" in refused.stderr
        assert harness.members(project, "m") == 0
    finally:
        assert backend.unlock(holder.id)
    project.apply()
    assert backend.read_lock() is None


def test_history_keeps_every_apply(harness: Harness) -> None:
    project = running(harness)
    project.serving("m", version=2)
    project.apply()
    entries = json.loads(project.ok("history", "--json").stdout)
    assert [e["outcome"] for e in entries] == ["succeeded", "succeeded"]
    assert [e["summary"] for e in entries] == [
        {"add": 1, "change": 0, "destroy": 0},
        {"add": 0, "change": 1, "destroy": 0},
    ]


def test_protection_survives_prune_until_lifted(harness: Harness) -> None:
    project = running(harness, protected=True)
    project.serving("other")
    project.remove_serving("m")
    project.apply("--prune")
    assert harness.members(project, "m") == 1
    project.ok("unprotect", "m")
    project.apply("--prune")
    assert harness.members(project, "m") == 0


def test_import_adopts_a_serving_made_by_hand(harness: Harness) -> None:
    project = harness.project()
    (project.root / "servings").mkdir()
    name = f"{project.name}h"
    harness.hand_made(project, name)
    project.ok("import", name, "--auto-approve")
    spec = (project.root / "servings" / f"{name}.yaml").read_text()
    assert "iris" in spec
    assert answers(project, name) == {"2"}
    # Kubernetes adopts the pods as they are and the next apply rolls them to declserve's
    # template; Docker replaced the containers already, so this apply has nothing to do
    project.apply()
    assert project.detailed_exitcode() == 0
    assert answers(project, name) == {"2"}


def test_a_plan_made_in_one_clone_applies_from_another(harness: Harness, tmp_path: Path) -> None:
    project = harness.project()
    project.serving("m", version=1)
    saved = tmp_path / "plan.json"
    project.ok("plan", "--out", str(saved))
    assert str(project.root) not in saved.read_text()  # no path of the machine that planned
    clone = TestProject.clone_of(project, tmp_path / "elsewhere")
    clone.ok("apply", str(saved))
    assert clone.detailed_exitcode() == 0 and project.detailed_exitcode() == 0
    project.serving("m", version=2)
    project.apply()
    clone.serving("m", version=2)
    assert clone.detailed_exitcode() == 0
    shutil.rmtree(clone.root)
