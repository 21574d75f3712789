"""`declserve import NAME`: what the command does around the backend's adoption of hand-made ones.

The serving backend finds the objects and reads them back into a Serving document (each
backend knows its own objects); here the document is checked against the registry, the spec
file is placed and written, and the import is recorded like an apply. The spec file is written
last, so an import that fails leaves the project as it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from declserve import spec as S
from declserve.apply import Outcome, Status
from declserve.desired import SERVING_KIND, DesiredServing, ModelSource, topic_of
from declserve.errors import DeclserveError
from declserve.loader import LoadedProject
from declserve.plan import Action, Plan, ResourceChange
from declserve.provider import ApplyContext

SCHEMA_FILE = Path("schema") / "serving.schema.json"
SCHEMA_URL = "https://declserve.io/schema/v1/serving.schema.json"


class ImportRefused(DeclserveError):
    """Nothing to import, or the serving is already managed or specified."""


def spec_path(project: LoadedProject, name: str) -> Path:
    folder = project.directory / "servings"
    return (folder if folder.is_dir() else project.directory) / f"{name}.yaml"


def schema_ref(path: Path, project: LoadedProject) -> str:
    """The serving schema relative to the spec file, as the examples point at it.

    The nearest `schema/serving.schema.json` at or above the project directory; the
    schema's published address when there is none.
    """
    start = project.directory.resolve()
    for folder in (start, *start.parents):
        candidate = folder / SCHEMA_FILE
        if candidate.is_file():
            return os.path.relpath(candidate, path.parent.resolve())
    return SCHEMA_URL


def write_spec(path: Path, doc: dict[str, Any], schema: str) -> None:
    header = (
        f"# yaml-language-server: $schema={schema}\n"
        "# Written by `declserve import`; edit freely, it is yours now.\n"
    )
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False))


def desired_of(doc: dict[str, Any], project: LoadedProject, path: Path) -> DesiredServing:
    serving = S.Serving.model_validate(doc)
    version = project.registry.resolve(serving.spec.model.name, serving.spec.model.version)
    topic, creates = topic_of(project.project, serving)
    where = os.path.relpath(path, project.directory)
    return DesiredServing(
        serving, ModelSource(serving.spec.model.name, version), f"{where}:1", topic, creates
    )


def adoption_plan(project: str, backend: str, desired: DesiredServing) -> Plan:
    """The import as a plan of one creation, for the history."""
    change = ResourceChange(SERVING_KIND, desired.name, Action.CREATE, ())
    return Plan(project, backend, (change,), "")


def done(plan: Plan) -> Outcome:
    (change,) = plan.changes
    return Outcome(change.address, change.action, Status.DONE)


def context(name: str) -> ApplyContext:
    return ApplyContext(lambda message: print(f"{SERVING_KIND}.{name}: {message}", flush=True))
