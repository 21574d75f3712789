"""Drift made with kubectl behind declserve's back: each shows as exactly that change, naming
the manager that made it where the cluster records one, plan exits 2, and apply takes it back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.backends.docker.project import changes, field
from tests.backends.kubernetes.project import KubeProject


@pytest.fixture(scope="module")
def project(module_kube_project: KubeProject) -> KubeProject:
    module_kube_project.serving("m", instances=2, labels={"team": "a"})
    module_kube_project.apply()
    assert module_kube_project.detailed_exitcode() == 0
    return module_kube_project


def drift(project: KubeProject) -> dict[str, Any]:
    """The one change of the plan, after checking that plan exits 2."""
    assert project.detailed_exitcode() == 2
    (rc,) = project.plan()["resource_changes"]
    return rc  # type: ignore[no-any-return]


def by(rc: dict[str, Any], path: str) -> str:
    return next(c["changed_by"] for c in rc["changes"] if c["path"] == path)


def repaired(project: KubeProject) -> None:
    project.apply()
    assert project.detailed_exitcode() == 0


def test_kubectl_scale_is_the_instances_it_set_and_names_kubectl(project: KubeProject) -> None:
    project.kubectl("scale", "deployment/m", "--replicas=3")
    rc = drift(project)
    assert changes(project.plan(), "serving.m") == {field("instances", 3, 2)}
    assert by(rc, "instances").startswith("kubectl")
    repaired(project)
    assert json.loads(project.kubectl("get", "deployment/m", "-o", "json").stdout)[
        "spec"]["replicas"] == 2


def test_kubectl_edit_of_the_config_map_names_kubectl_edit(project: KubeProject) -> None:
    # kubectl edit with a non-interactive editor: what a person does, field manager and all
    project.cluster.kubectl("-n", project.namespace, "edit", "configmap/m-config",
                            editor="sed -i 's/versions: 1/versions: 2/'")
    rc = drift(project)
    assert changes(project.plan(), "serving.m") == {field("model.version", 2, 1)}
    assert by(rc, "model.version").startswith("kubectl-edit at 20")
    repaired(project)


def test_kubectl_set_image_is_the_image(project: KubeProject) -> None:
    other = "declserve/tfserving-double:latest"
    project.kubectl("set", "image", "deployment/m", f"serving={other}")
    assert changes(project.plan(), "serving.m") == {field("image", other, project.image)}
    assert drift(project)["changes"][0]["changed_by"].startswith("kubectl-set")
    repaired(project)


def test_a_deleted_service_is_recreated(project: KubeProject) -> None:
    project.kubectl("delete", "service/m")
    rc = drift(project)
    assert {c["path"] for c in rc["changes"]} == {
        "service.type", "service.target", "service.nodePort",
        "serviceSpec.ports.rest.port", "serviceSpec.ports.rest.protocol",
        "serviceSpec.ports.grpc.port", "serviceSpec.ports.grpc.protocol",
    }
    assert all(c["before"] is None for c in rc["changes"])
    assert [s["target"] for s in rc["steps"]] == ["Service m"]
    repaired(project)


def test_a_changed_limit_is_that_resource(project: KubeProject) -> None:
    project.kubectl("set", "resources", "deployment/m", "-c", "serving", "--limits=cpu=500m")
    assert changes(project.plan(), "serving.m") == {
        field("resources.cpu", "limit 500m, request 250m", "250m")
    }
    repaired(project)


def test_a_changed_label_is_that_label(project: KubeProject) -> None:
    project.kubectl("label", "deployment/m", "team=b", "--overwrite")
    rc = drift(project)
    assert changes(project.plan(), "serving.m") == {field("labels.team", "b", "a")}
    assert by(rc, "labels.team").startswith("kubectl-label at 20")
    repaired(project)


def test_an_edited_probe_is_drift_too(project: KubeProject) -> None:
    probe = "/spec/template/spec/containers/0/readinessProbe/periodSeconds"
    patch = [{"op": "replace", "path": probe, "value": 7}]
    project.kubectl("patch", "deployment/m", "--type=json", "-p", json.dumps(patch))
    rc = drift(project)
    assert changes(project.plan(), "serving.m") == {
        field("pod.serving.readinessProbe.periodSeconds", 7, 2)
    }
    assert by(rc, "pod.serving.readinessProbe.periodSeconds").startswith("kubectl-patch")
    repaired(project)
