"""Serving backends, registered by the name a project file gives as `backend.type`.

Each is imported only when a project asks for it, so a command pays for the SDK it uses.
"""

from __future__ import annotations

import os

from declserve.loader import LoadedProject
from declserve.provider import ServingBackend
from declserve.providers import register_backend

IMAGE_ENV = "DECLSERVE_IMAGE"


def _docker(project: LoadedProject) -> ServingBackend:
    from declserve.backends.docker.backend import DockerBackend
    from declserve.backends.docker.settings import DockerSettings

    settings = DockerSettings.from_project(project.project, os.environ.get(IMAGE_ENV) or None)
    return DockerBackend(settings, project)


def _kubernetes(project: LoadedProject) -> ServingBackend:
    from declserve.backends.kubernetes.backend import KubernetesBackend
    from declserve.backends.kubernetes.settings import KubernetesSettings

    settings = KubernetesSettings.from_project(
        project.project, project.directory, os.environ.get(IMAGE_ENV) or None
    )
    return KubernetesBackend(settings, project)


register_backend("docker", _docker)
register_backend("kubernetes", _kubernetes)
