"""Serving backends; `open_backend` picks the one the project file names."""

from __future__ import annotations

import os

from declserve.backends.base import Backend
from declserve.errors import DeclserveError
from declserve.loader import LoadedProject

IMAGE_ENV = "DECLSERVE_IMAGE"


def open_backend(project: LoadedProject) -> Backend:
    """Connect to the project's backend. `DECLSERVE_IMAGE` overrides the serving image."""
    backend = project.project.spec.backend
    if backend.type == "docker":
        from declserve.backends.docker import DockerBackend, DockerSettings

        settings = DockerSettings.from_project(project.project, os.environ.get(IMAGE_ENV) or None)
        return DockerBackend(settings)
    raise DeclserveError(f"the {backend.type!r} backend is not available in this version yet")
