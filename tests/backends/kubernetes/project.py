"""A throwaway declserve project on the real single-node cluster, in a namespace of its own.

The namespace is created for the project and deleted by `cleanup` (nothing else is), the
servings run the TensorFlow Serving double (imported into the cluster's containerd, never
pulled), their Services are NodePorts so that tests reach them on 127.0.0.1, and the models
are the project's own copy of the example registry, by hostPath (through a symlink beside the
checkout: the node's path is a setting, not a path of the checkout).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.backends.docker.project import TestProject
from tests.fixtures.cluster import Cluster

READY_TIMEOUT_S = 240  # the node is shared with other tests on 2 cores
PRE_STOP_S = 5  # the default: on a loaded node kube-proxy may take seconds to drop a pod


class KubeProject(TestProject):
    __test__ = False

    def __init__(
        self,
        base: Path,
        image: str,
        *,
        cluster: Cluster,
        pods_kafka: str | None = None,
        kubeconfig: Path | None = None,
        namespace: str | None = None,
        **kw: Any,
    ) -> None:
        """`pods_kafka`: the brokers as pods reach them (not as the tests do).
        `kubeconfig`: the credentials declserve uses (default: the cluster's admin).
        `namespace`: an existing namespace, which the caller made and deletes; by default the
        project makes one of its own name and `cleanup` deletes it."""
        self.cluster = cluster
        self.pods_kafka = pods_kafka
        self.kubeconfig = kubeconfig or cluster.kubeconfig
        self.given_namespace = namespace
        # the node's path of the registry, a setting of the project, not a path of its checkout
        self.node_registry = base / f"node-registry-{id(self):x}"
        super().__init__(base, image, **kw)
        self.node_registry.symlink_to((self.root / "registry").resolve())
        self.namespace = namespace or self.name
        if namespace is None:
            cluster.kubectl("create", "namespace", self.namespace)
            cluster.kubectl("label", "namespace", self.namespace, "declserve.io/test=true")

    def backend_settings(self) -> dict[str, Any]:
        return {
            "type": "kubernetes",
            "kubeconfig": str(self.kubeconfig),
            "namespace": self.given_namespace or self.name,
            "image": self.image,
            "pullPolicy": "Never",
            "serviceType": "NodePort",
            "models": {"hostPath": str(self.node_registry)},
            "preStopSeconds": PRE_STOP_S,
            "readyTimeoutSeconds": READY_TIMEOUT_S,
            **({"kafkaBootstrapServers": [self.pods_kafka]} if self.pods_kafka else {}),
        }

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(  # type: ignore[no-any-return]
            "-n", self.namespace, *args, check=check, input=input
        )

    def objects(self, kind: str, serving: str | None = None) -> list[dict[str, Any]]:
        selector = f"declserve.io/project={self.name}"
        if serving:
            selector += f",declserve.io/serving={serving}"
        out = self.kubectl("get", kind, "-l", selector, "-o", "json").stdout
        return list(json.loads(out)["items"])

    def pods(self, serving: str) -> list[dict[str, Any]]:
        """The serving's pods that are not being deleted."""
        return [p for p in self.objects("pods", serving)
                if not p["metadata"].get("deletionTimestamp")]

    def cleanup(self) -> None:
        if self.given_namespace is None:
            self.cluster.kubectl("delete", "namespace", self.namespace, "--wait=false",
                                 check=False)
