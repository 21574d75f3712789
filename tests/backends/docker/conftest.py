"""Fixtures for tests against the real Docker engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.backends.docker.project import TestProject


@pytest.fixture
def make_project(
    tmp_path: Path, tfs_double_image: str, logproxy_image: str, docker_client: object
) -> Iterator[Callable[..., TestProject]]:
    made: list[TestProject] = []

    def make(**kw: object) -> TestProject:
        kw.setdefault("proxy_image", logproxy_image)  # every serving has a front proxy
        project = TestProject(tmp_path, tfs_double_image, **kw)  # type: ignore[arg-type]
        made.append(project)
        return project

    yield make
    for project in made:
        project.cleanup()
