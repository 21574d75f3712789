"""Desired state: the loaded specs with every `latest` resolved against the registry and pinned.

What a plan is made from on the desired side. Resolution happens once, here, so the plan, the
saved plan file and apply all see the same version numbers even if the registry gains a new
version in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from declserve import spec as S
from declserve.errors import InputError
from declserve.loader import LoadedProject
from declserve.registry import RegistryError


@dataclass(frozen=True)
class DesiredServing:
    """One serving as it should be, with a concrete model version and its model directory."""

    serving: S.Serving
    version: int
    model_dir: Path
    source: str  # file:line of the document, for messages
    topic: str | None = None  # the resolved inference-logging topic, None when logging is off
    creates_topic: bool = False

    @property
    def name(self) -> str:
        return self.serving.name

    @property
    def spec(self) -> S.ServingSpec:
        return self.serving.spec


def _topic(project: LoadedProject, serving: S.Serving) -> tuple[str | None, bool]:
    logging = serving.spec.inference_logging
    kafka = project.project.spec.kafka
    if logging is None or not logging.enabled or kafka is None:
        return None, False
    if logging.topic == "create":
        name = kafka.topic_pattern.replace("{project}", project.name).replace("{serving}", serving.name)
        return name, True
    return logging.topic, False


def resolve_desired(project: LoadedProject) -> list[DesiredServing]:
    """Every serving of the project, versions pinned; registry problems are input errors."""
    out: list[DesiredServing] = []
    problems = []
    for loaded in project.servings:
        model = loaded.serving.spec.model
        try:
            version = project.registry.resolve(model.name, model.version)
            model_dir = project.registry.model_dir(model.name).resolve()
        except RegistryError as exc:
            problems.append(loaded.problem(("spec", "model", "version"), str(exc)))
            continue
        line = loaded.doc.position(("metadata", "name"))[0]
        topic, creates = _topic(project, loaded.serving)
        out.append(
            DesiredServing(loaded.serving, version, model_dir, f"{loaded.doc.file}:{line}", topic, creates)
        )
    if problems:
        raise InputError(problems)
    return sorted(out, key=lambda d: d.name)
