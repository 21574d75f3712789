"""Fixtures for tests of the Kubernetes backend on the real single-node cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.backends.kubernetes.project import KubeProject
from tests.fixtures.cluster import Cluster

# The first run on a machine may build the cluster inside the session fixture.
pytestmark = pytest.mark.timeout(3600)


@pytest.fixture
def make_kube_project(
    tmp_path: Path, cluster: Cluster, cluster_images: dict[str, str]
) -> Iterator[Callable[..., KubeProject]]:
    made: list[KubeProject] = []

    def make(**kw: object) -> KubeProject:
        kw.setdefault("proxy_image", cluster_images["proxy"])
        project = KubeProject(tmp_path, cluster_images["serving"], cluster=cluster, **kw)  # type: ignore[arg-type]
        made.append(project)
        return project

    yield make
    for project in made:
        project.cleanup()


@pytest.fixture(scope="module")
def module_kube_project(
    tmp_path_factory: pytest.TempPathFactory, cluster: Cluster, cluster_images: dict[str, str]
) -> Iterator[KubeProject]:
    """One project for a module whose tests each leave it as its specs say."""
    project = KubeProject(tmp_path_factory.mktemp("kube"), cluster_images["serving"],
                          cluster=cluster, proxy_image=cluster_images["proxy"])
    yield project
    project.cleanup()
