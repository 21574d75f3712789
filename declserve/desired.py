"""Desired state: the loaded specs with every `latest` resolved against the registry and pinned.

What a plan is made from on the desired side. Resolution happens once, here, so the plan, the
saved plan file and apply all see the same version numbers even if the registry gains a new
version in between. Nothing here holds a path of the machine that planned: the model is named
relative to the registry (`ModelSource`), and each backend resolves that to what it mounts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from declserve import spec as S
from declserve.errors import InputError, Problem
from declserve.loader import LoadedProject
from declserve.registry import MODELS_DIR, RegistryError

# The kind every serving backend provides; other providers name servings by this address.
SERVING_KIND = "serving"


@dataclass(frozen=True)
class ModelSource:
    """A model version in the registry, by name: `Models/<name>/<version>` under its root."""

    name: str
    version: int

    @property
    def model_path(self) -> str:
        """The model's directory relative to the registry root (what TF Serving mounts)."""
        return f"{MODELS_DIR}/{self.name}"

    @property
    def version_path(self) -> str:
        return f"{MODELS_DIR}/{self.name}/{self.version}"


@dataclass(frozen=True)
class DesiredServing:
    """One serving as it should be, with a concrete model version."""

    serving: S.Serving
    model: ModelSource
    source: str  # file:line of the document relative to the project directory, for messages
    topic: str | None = None  # the resolved inference-logging topic, None when logging is off
    creates_topic: bool = False

    @property
    def name(self) -> str:
        return self.serving.name

    @property
    def spec(self) -> S.ServingSpec:
        return self.serving.spec

    @property
    def version(self) -> int:
        return self.model.version

    @property
    def address(self) -> str:
        return f"{SERVING_KIND}.{self.name}"


def topic_of(project: S.Project, serving: S.Serving) -> tuple[str | None, bool]:
    """The topic a serving logs to, and whether declserve creates it."""
    logging = serving.spec.inference_logging
    kafka = project.spec.kafka
    if logging is None or not logging.enabled or kafka is None:
        return None, False
    if logging.topic == "create":
        name = kafka.topic_pattern.replace("{project}", project.name)
        return name.replace("{serving}", serving.name), True
    return logging.topic, False


def resolve_desired(project: LoadedProject) -> list[DesiredServing]:
    """Every serving of the project, versions pinned; registry problems are input errors."""
    out: list[DesiredServing] = []
    problems: list[Problem] = []
    for loaded in project.servings:
        model = loaded.serving.spec.model
        try:
            version = project.registry.resolve(model.name, model.version)
        except RegistryError as exc:
            problems.append(loaded.problem(("spec", "model", "version"), str(exc)))
            continue
        line = loaded.doc.position(("metadata", "name"))[0]
        where = os.path.relpath(loaded.doc.file, project.directory)
        topic, creates = topic_of(project.project, loaded.serving)
        out.append(
            DesiredServing(
                loaded.serving, ModelSource(model.name, version), f"{where}:{line}", topic, creates
            )
        )
    if problems:
        raise InputError(problems)
    return sorted(out, key=lambda d: d.name)
