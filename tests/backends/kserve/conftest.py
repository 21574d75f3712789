"""Fixtures for `tool: kserve` servings: KServe's real controller on the test cluster.

`kserve_controller` runs testinfra/kserve/run.sh up (KServe v0.20.0's `manager`, built from its
Go module and cached, run out of cluster in Standard mode, its webhooks on 127.0.0.1) for this
package's tests and stops it after them, before tests/cluster may take the cluster down. It
fails, never skips, when the controller cannot be built or started.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.backends.kserve.project import KServeProject
from tests.fixtures.cluster import Cluster, ClusterError, no_proxy_env, run_cluster_sh

ROOT = Path(__file__).resolve().parents[3]
RUN = ROOT / "testinfra" / "kserve" / "run.sh"
# A cold build of the manager takes 7-17 min on 2 cores (testinfra/kserve/NOTES.md).
pytestmark = pytest.mark.timeout(3600)


def _run(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(RUN), command], capture_output=True, text=True,
                          timeout=timeout, env=no_proxy_env(), check=False)


@pytest.fixture(scope="package")
def kserve_controller(cluster: Cluster) -> Iterator[str]:
    up = _run("up", 2400)  # the session's shared hold on the cluster keeps it up meanwhile
    last = (up.stdout.strip().splitlines() or [""])[-1]
    if up.returncode != 0 or not last.startswith(("started ", "running ")):
        pytest.fail(f"KServe's controller did not start (exit {up.returncode}): "
                    f"{up.stderr[-3000:]}", pytrace=False)
    yield last
    if last.startswith("started "):
        _run("down", 300)


@pytest.fixture(scope="package")
def cluster_transformer_image(cluster: Cluster, transformer_image: str) -> str:
    """KServe's Python model server image, in the cluster's containerd (pods never pull)."""
    try:
        run_cluster_sh(f"images {transformer_image}", 900)
    except ClusterError as exc:
        pytest.fail(f"cluster_transformer_image: {exc}", pytrace=False)
    return transformer_image


@pytest.fixture
def make_kserve_project(
    tmp_path: Path, cluster: Cluster, cluster_images: dict[str, str], kserve_controller: str,
    cluster_transformer_image: str,
) -> Iterator[Callable[..., KServeProject]]:
    made: list[KServeProject] = []

    def make(**kw: object) -> KServeProject:
        kw.setdefault("proxy_image", cluster_images["proxy"])
        kw.setdefault("transformer_image", cluster_transformer_image)
        project = KServeProject(tmp_path, cluster_images["serving"], cluster=cluster, **kw)  # type: ignore[arg-type]
        made.append(project)
        return project

    yield make
    for project in made:
        project.cleanup()
