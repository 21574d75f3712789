"""The contract suite runs once per serving backend, each against its real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.contract.harness import DockerHarness, Harness, KubernetesHarness

BACKENDS = ["docker", "kubernetes"]


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "docker":
        made = DockerHarness(tmp_path, request.getfixturevalue("tfs_double_image"),
                             request.getfixturevalue("logproxy_image"))
    elif request.param == "kubernetes":
        made = KubernetesHarness(tmp_path, request.getfixturevalue("cluster"),
                                 request.getfixturevalue("cluster_images"))
    else:  # pragma: no cover - a backend listed without a harness
        raise AssertionError(f"no harness for backend {request.param}")
    try:
        yield made
    finally:
        made.cleanup()
