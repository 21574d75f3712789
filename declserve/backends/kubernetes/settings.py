"""The Kubernetes backend's settings, from the project file: cluster, namespace, images, models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from declserve import spec as S

MANAGER = "declserve"  # the field manager of every server-side apply


@dataclass(frozen=True)
class KubernetesSettings:
    project: str
    namespace: str
    image: str
    pull_policy: str
    service_type: str
    proxy_image: str
    pre_stop_seconds: int
    ready_timeout: float
    kubeconfig: str | None = None
    context: str | None = None
    models_claim: str | None = None
    models_sub_path: str = ""
    models_host_path: str | None = None  # the registry root on the node
    kafka_bootstrap: str = ""  # as the pods reach the brokers
    max_message_bytes: int = 2 * 2**20
    kserve_mode: str = "Standard"  # KServe's deployment mode for tool: kserve servings
    transformer_image: str = "declserve/kserve-transformer:latest"

    @classmethod
    def from_project(
        cls, project: S.Project, directory: Path, image_override: str | None = None
    ) -> KubernetesSettings:
        b = project.spec.backend
        assert isinstance(b, S.KubernetesBackend)
        kafka = project.spec.kafka
        host_path = b.models.host_path
        if host_path is None and b.models.claim is None:
            # single-node convenience: the node is this machine and holds the registry
            host_path = str((directory / project.spec.registry).resolve())
        return cls(
            project=project.name,
            namespace=b.namespace,
            image=image_override or b.image,
            pull_policy=b.pull_policy,
            service_type=b.service_type,
            proxy_image=b.logging_proxy_image,
            pre_stop_seconds=b.pre_stop_seconds,
            ready_timeout=float(b.ready_timeout_seconds),
            kubeconfig=b.kubeconfig,
            context=b.context,
            models_claim=b.models.claim,
            models_sub_path=b.models.sub_path,
            models_host_path=host_path,
            # the pods' view of the brokers; declserve itself (topics) uses kafka's own
            kafka_bootstrap=",".join(b.kafka_bootstrap_servers or kafka.bootstrap_servers)
            if kafka else "",
            max_message_bytes=kafka.max_message_bytes if kafka else 2 * 2**20,
            kserve_mode=b.kserve.deployment_mode,
            transformer_image=b.kserve.transformer_image,
        )

    def config_map_name(self, serving: str) -> str:
        return f"{serving}-config"
