"""The Docker backend's settings, from the project file: engine, image, ports, files, deadlines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from declserve import spec as S

DEFAULT_STATE_ROOT = "/var/lib/declserve"


@dataclass(frozen=True)
class DockerSettings:
    project: str
    image: str
    bind_address: str
    restart_policy: str
    state_root: Path  # config directories, one per serving: a setting, the same on every runner
    poll_seconds: int
    ready_timeout: float
    pull_policy: str
    base_url: str | None = None
    proxy_image: str = "declserve/logproxy:latest"
    kafka_bootstrap: str = ""
    max_message_bytes: int = 2 * 2**20  # the topics' max.message.bytes: the largest record

    @classmethod
    def from_project(cls, project: S.Project, image_override: str | None = None) -> DockerSettings:
        b = project.spec.backend
        assert isinstance(b, S.DockerBackend)
        kafka = project.spec.kafka
        return cls(
            project=project.name,
            image=image_override or b.image,
            bind_address=b.bind_address,
            restart_policy=b.restart_policy,
            state_root=Path(b.state_dir or DEFAULT_STATE_ROOT) / project.name,
            poll_seconds=b.poll_seconds,
            ready_timeout=float(b.ready_timeout_seconds),
            pull_policy=b.pull_policy,
            base_url=b.base_url,
            proxy_image=b.logging_proxy_image,
            kafka_bootstrap=",".join(kafka.bootstrap_servers) if kafka else "",
            max_message_bytes=kafka.max_message_bytes if kafka else 2 * 2**20,
        )

    @property
    def host(self) -> str:
        """The address clients on this machine reach published ports on."""
        return "127.0.0.1" if self.bind_address in ("0.0.0.0", "") else self.bind_address

    def container_name(self, serving: str, index: int) -> str:
        return f"{self.project}-{serving}-{index}"

    def proxy_name(self, serving: str) -> str:
        return f"{self.project}-{serving}-proxy"

    def config_dir(self, serving: str) -> Path:
        return self.state_root / serving
