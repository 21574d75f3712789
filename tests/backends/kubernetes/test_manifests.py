"""`plan --manifests DIR` on the real cluster: `kubectl diff --server-side` of the files it writes
sees what plan sees (nothing after an apply; exactly the version after a bump), so the bench
compares the two on the same input."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.backends.kubernetes.project import KubeProject
from tests.fixtures.cluster import Cluster

SMALL = {"cpu": "50m", "memory": "64Mi"}


def kubectl_diff(project: KubeProject, directory: Path) -> subprocess.CompletedProcess[str]:
    # as declserve's field manager, as apply would send them
    return project.kubectl("diff", "--server-side", "--field-manager=declserve",
                           "--force-conflicts", "-f", str(directory), check=False)


def test_kubectl_diff_of_the_written_manifests_agrees_with_plan(
    cluster: Cluster, cluster_images: dict[str, str], tmp_path: Path
) -> None:
    project = KubeProject(tmp_path, cluster_images["serving"], cluster=cluster,
                          proxy_image=cluster_images["proxy"])
    try:
        # stopped: the objects are all there and no pod has to start
        project.serving("m", state="stopped", resources=SMALL)
        project.apply()
        same = tmp_path / "same"
        result = project.run("plan", "--detailed-exitcode", "--no-color", "--manifests",
                             str(same))
        assert result.returncode == 0, result.stdout + result.stderr
        assert sorted(p.name for p in same.iterdir()) == [
            "m.configmap.yaml", "m.deployment.yaml", "m.service.yaml"]
        assert f"Wrote 3 manifests of 1 servings to {same}" in result.stderr
        diff = kubectl_diff(project, same)
        assert diff.returncode == 0, diff.stdout + diff.stderr

        project.serving("m", version=2, state="stopped", resources=SMALL)
        changed = tmp_path / "changed"
        result = project.run("plan", "--detailed-exitcode", "--no-color", "--manifests",
                             str(changed))
        assert result.returncode == 2, result.stdout + result.stderr
        diff = kubectl_diff(project, changed)
        assert diff.returncode == 1, diff.stdout + diff.stderr
        assert re.search(r"^-.*versions: 1\b", diff.stdout, re.M), diff.stdout
        assert re.search(r"^\+.*versions: 2\b", diff.stdout, re.M), diff.stdout
        # a diff changes nothing: the plan still shows the bump
        assert project.detailed_exitcode() == 2
    finally:
        project.cleanup()
