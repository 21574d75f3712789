"""examples/kubernetes/rbac.yaml is enough for every command and no wider than needed.

On the real cluster (its API server authorizes by RBAC): a namespace of its own with the
example's Role, ServiceAccount and RoleBinding, a token of that account in a mode-600
kubeconfig, and declserve run with that kubeconfig only. The servings run the TensorFlow
Serving test double.
"""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.docker.traffic import served_version
from tests.backends.kubernetes.project import KubeProject
from tests.backends.kubernetes.serviceaccount import (
    apply_rbac,
    kubectl_as,
    role_rules,
    token_kubeconfig,
)
from tests.fixtures.cluster import Cluster
from tests.fixtures.polling import wait_until

# the node has 2 CPUs for every engineer's tests: small requests, so a rolling update's surge pod
# is scheduled
SMALL = {"cpu": "50m", "memory": "64Mi"}


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"rbac-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "declserve.io/test=true")
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def project(
    cluster: Cluster, cluster_images: dict[str, str], namespace: str, tmp_path: Path
) -> Iterator[KubeProject]:
    apply_rbac(cluster, namespace)
    kubeconfig = token_kubeconfig(cluster, namespace, tmp_path / "sa.kubeconfig")
    made = KubeProject(tmp_path, cluster_images["serving"], cluster=cluster,
                       kubeconfig=kubeconfig, namespace=namespace)
    try:
        yield made
    finally:
        made.cleanup()


def answers(project: KubeProject, serving: str) -> set[str]:
    return {served_version(url) for url in project.status()[serving]["endpoints"]}


def test_the_role_is_namespaced_and_names_every_verb() -> None:
    for rule in role_rules("x"):
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        assert "resourceNames" not in rule  # declserve's objects are named by the specs


def test_every_command_works_with_the_role_alone_and_nothing_outside_it(
    project: KubeProject, cluster: Cluster
) -> None:
    kubeconfig, ns = project.kubeconfig, project.namespace
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    for kind in ("pods", "deployments", "configmaps"):
        other = kubectl_as(kubeconfig, "get", kind, "-n", "default")
        assert other.returncode == 1 and "Forbidden" in other.stderr, (kind, other.stderr)
    secrets = kubectl_as(kubeconfig, "get", "secrets", "-n", ns)
    assert secrets.returncode == 1 and "Forbidden" in secrets.stderr, secrets.stderr
    assert kubectl_as(kubeconfig, "auth", "can-i", "create", "namespaces").stdout.strip() == "no"

    project.serving("a", version=1, resources=SMALL)
    project.serving("b", model="iris", version=1, resources=SMALL)
    assert project.detailed_exitcode() == 2  # plan: LISTs and GETs only
    project.apply()
    assert answers(project, "a") == {"1"} and answers(project, "b") == {"1"}
    assert project.detailed_exitcode() == 0
    logs = project.ok("logs", "a", "--tail", "20").stdout
    assert logs.strip() and all(line.startswith("a-") for line in logs.splitlines()), logs

    project.serving("a", version=2, resources=SMALL)  # a version bump: a rolling update
    project.apply()
    assert answers(project, "a") == {"2"}
    history = json.loads(project.ok("history", "--json").stdout)
    assert len(history) == 2, history

    project.remove_serving("b")
    project.apply("--prune")
    assert project.objects("deployments", "b") == [] and project.objects("configmaps", "b") == []
    assert project.detailed_exitcode() == 0
    assert project.kubectl("get", "lease", "-o", "name").stdout.strip() == ""  # unlocked


def test_one_verb_less_fails_with_one_sentence_naming_the_request(
    project: KubeProject, cluster: Cluster
) -> None:
    project.serving("a", version=1, resources=SMALL)
    project.serving("b", version=1, resources=SMALL)
    project.apply()
    apply_rbac(cluster, project.namespace, drop=("configmaps", "delete"))
    project.remove_serving("b")

    run = project.run("apply", "--auto-approve", "--no-color", "--prune")
    assert run.returncode == 1, run.stdout + run.stderr
    refused = [line for line in run.stderr.splitlines() if "does not allow declserve" in line]
    assert len(refused) == 1, run.stderr
    assert "to delete ConfigMap b-config" in refused[0], refused
    assert "forbidden" in refused[0] and "cannot delete resource" in refused[0], refused
    assert project.kubectl("get", "lease", "-o", "name").stdout.strip() == ""  # unlocked

    apply_rbac(cluster, project.namespace)  # the whole Role again: the next apply converges
    project.apply("--prune")
    wait_until(lambda: project.objects("configmaps", "b") == [], timeout=30,
               message="b's ConfigMap deleted")
    assert project.detailed_exitcode() == 0
