"""The least-privilege credential of examples/kubernetes/rbac.yaml, made on the real cluster.

The Role, ServiceAccount and RoleBinding are applied from the example file itself (its
placeholder namespace replaced), a token comes from the TokenRequest API (`kubectl create
token`), and the kubeconfig holding it is created mode 600. Nothing here prints the token or
the kubeconfig: failures name the command and kubectl's stderr only.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.cluster import Cluster, no_proxy_env
from tests.fixtures.polling import wait_until

ROOT = Path(__file__).resolve().parents[3]
RBAC = ROOT / "examples" / "kubernetes" / "rbac.yaml"
PLACEHOLDER = "declserve-demo"  # the namespace rbac.yaml names, as declserve.yaml does
ACCOUNT = "declserve"  # the ServiceAccount, Role and RoleBinding of rbac.yaml


def rbac_documents(namespace: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text().replace(PLACEHOLDER, namespace)) if d]


def role_rules(namespace: str) -> list[dict[str, Any]]:
    role = next(d for d in rbac_documents(namespace) if d["kind"] == "Role")
    return list(role["rules"])


def apply_rbac(cluster: Cluster, namespace: str, drop: tuple[str, str] | None = None) -> None:
    """Apply rbac.yaml into `namespace` with the admin credentials; `drop` = (resource, verb)
    takes one verb out of the Role, to show that declserve needs it."""
    docs = rbac_documents(namespace)
    if drop is not None:
        resource, verb = drop
        role = next(d for d in docs if d["kind"] == "Role")
        rule = next(r for r in role["rules"] if resource in r["resources"])
        assert verb in rule["verbs"], f"the Role has no {verb} on {resource}"
        rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    # the authorizer follows Role changes through its informer: wait until it sees this one
    for rule in (r for d in docs if d["kind"] == "Role" for r in d["rules"]):
        for resource in rule["resources"]:
            for verb in rule["verbs"]:
                wait_until(lambda v=verb, r=resource: can_i(cluster, namespace, v, r), timeout=30,
                           message=f"the Role allows {verb} {resource}")
    if drop is not None:
        wait_until(lambda: not can_i(cluster, namespace, drop[1], drop[0]), timeout=30,
                   message=f"the Role no longer allows {drop[1]} {drop[0]}")


def can_i(cluster: Cluster, namespace: str, verb: str, resource: str) -> bool:
    """What the API server's authorizer answers for the ServiceAccount (SubjectAccessReview)."""
    kind, _, sub = resource.partition("/")  # kubectl names a subresource by a flag
    res = cluster.kubectl("auth", "can-i", verb, kind, f"--subresource={sub}", "-n", namespace,
                          f"--as=system:serviceaccount:{namespace}:{ACCOUNT}", check=False)
    return res.stdout.strip() == "yes"


def token_kubeconfig(cluster: Cluster, namespace: str, path: Path) -> Path:
    """A kubeconfig at `path` (mode 600) with a one-hour token of the ServiceAccount only."""
    token = cluster.kubectl("create", "token", ACCOUNT, "-n", namespace,
                            "--duration=1h").stdout.strip()
    assert token.count(".") == 2, "kubectl create token did not return a JWT"
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    name = admin["current-context"]
    context = next(c["context"] for c in admin["contexts"] if c["name"] == name)
    server = dict(next(c["cluster"] for c in admin["clusters"] if c["name"] == context["cluster"]))
    ca = server.get("certificate-authority")
    if ca and not Path(ca).is_absolute():  # relative to the admin kubeconfig's folder
        server["certificate-authority"] = str(cluster.kubeconfig.parent / ca)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": server}],
        "users": [{"name": ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "test", "user": ACCOUNT,
                                                "namespace": namespace}}],
        "current-context": "sa",
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(doc, fh)
    return path


def kubectl_as(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with the ServiceAccount's kubeconfig (the caller checks the outcome)."""
    return subprocess.run(["/usr/bin/kubectl", "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=60, env=no_proxy_env())
