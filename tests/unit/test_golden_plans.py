"""Golden plans: each folder's `desired/` project and `observed.json` live state give exactly its
`plan.txt` and `plan.json` (or `error.txt`), through the real providers' pure halves.

The serving backend here is a test double of the Docker backend's effects only: its planner,
essences and steps are the real ones, its live state is read from `observed.json`. Kafka topics
use the real topic provider, which connects to nothing until it observes or executes.
Regenerate after an intended change with UPDATE_GOLDEN=1 and read the diff before committing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from declserve import planfile, render
from declserve.backends.docker.planner import DockerPlanner
from declserve.backends.docker.settings import DockerSettings
from declserve.desired import resolve_desired
from declserve.errors import DeclserveError
from declserve.live import Blocker, Health, HealthStatus, LiveResource, LiveState
from declserve.loader import load_project
from declserve.provider import Provider
from declserve.topics.provider import open_topics
from declserve.workflow import Workspace

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "observed.json").is_file())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


class DockerPlannerDouble(DockerPlanner):
    """The Docker backend's pure half, with an identity and no engine behind it."""

    def identity(self) -> str:
        return "docker:golden"


def live_state(doc: dict[str, Any]) -> LiveState:
    resources = {}
    for r in doc["resources"]:
        health = r.get("health") or {}
        resource = LiveResource(
            r["kind"],
            r["name"],
            r["essence"],
            HealthStatus(Health(health.get("state", "ready")), health.get("reason", "")),
            r.get("observed", {}),
            r.get("detail", {}),
            r.get("managed", True),
            r.get("protected", False),
            r.get("revision", ""),
        )
        resources[resource.address] = resource
    return LiveState(resources, tuple(Blocker(**b) for b in doc.get("blockers", [])))


def plan_case(folder: Path) -> tuple[str, str | None]:
    """(plan.txt, plan.json) or (error.txt, None)."""
    project = load_project(folder / "desired")
    desired = {d.name: d for d in resolve_desired(project)}
    backend = DockerPlannerDouble(DockerSettings.from_project(project.project))
    topics = open_topics(project)
    others: list[Provider] = [topics] if topics is not None else []
    ws = Workspace(project, backend, others, desired)  # type: ignore[arg-type]
    options = json.loads((folder / "options.json").read_text())
    live = live_state(json.loads((folder / "observed.json").read_text()))
    try:
        plan = ws.plan(
            live,
            guards=frozenset(options.get("guards", [])),
            targets=frozenset(options["targets"]) if "targets" in options else None,
            destroy=options.get("destroy", False),
        )
    except DeclserveError as exc:
        return f"{type(exc).__name__}: {exc}\n", None
    return render.render_text(plan), planfile.to_json(plan) + "\n"


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES)
def test_golden_plan(case: str) -> None:
    folder = GOLDEN / case
    text, doc = plan_case(folder)
    expected = {"error.txt": text} if doc is None else {"plan.txt": text, "plan.json": doc}
    if UPDATE:
        for name in ("error.txt", "plan.txt", "plan.json"):
            (folder / name).unlink(missing_ok=True)
        for name, content in expected.items():
            (folder / name).write_text(content)
    for name, content in expected.items():
        path = folder / name
        assert path.is_file(), f"{case}: {name} is missing; run with UPDATE_GOLDEN=1 and review it"
        assert content == path.read_text(), f"{case}: {name} differs (UPDATE_GOLDEN=1 rewrites it)"
