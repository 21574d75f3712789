"""Reading hand-made TensorFlow Serving containers back into a Serving document (pure).

The containers `declserve import NAME` adopts (named NAME or NAME-<n>, running the project's
image, not labelled by declserve) say which model they serve through their mount or flags,
how many there are, their limits, batching, and whether they run; what the server reports
picks the version. The REST port a container published becomes the serving's `endpoint.port`,
so its clients keep their address once the front proxy takes it over.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from declserve import spec as S
from declserve.backends import tfserving as tfs
from declserve.importer import ImportRefused
from declserve.loader import LoadedProject


def _arg(args: list[str], flag: str) -> str | None:
    for a in args:
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _model_mount(attrs: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (
            m
            for m in attrs.get("Mounts") or ()
            if str(m.get("Destination", "")).startswith(tfs.MODELS_MOUNT + "/")
        ),
        None,
    )


def model_of(attrs: dict[str, Any]) -> str | None:
    """The model a container serves, from its flags, environment or mount."""
    args = list(attrs.get("Args") or [])
    env = dict(e.split("=", 1) for e in (attrs["Config"].get("Env") or []) if "=" in e)
    model = _arg(args, "--model_name") or env.get("MODEL_NAME")
    mount = _model_mount(attrs)
    if model is None and mount is not None:
        model = Path(mount["Destination"]).name
    return model


WILDCARDS = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class Published:
    """Where a hand-made container's REST port is published on the host."""

    container: str
    host_ip: str
    port: int

    def address(self, host: str) -> str:
        return f"{host if self.host_ip in WILDCARDS else self.host_ip}:{self.port}"


def published_rest_port(attrs: dict[str, Any], bind: str) -> Published | None:
    """The host port a container publishes its REST port on, when the front proxy can listen
    there: on the backend's bind address, or on every address (then on the bind address only).

    A running container's actual binding (an engine-chosen port too); a stopped one's fixed
    binding, which is the address its clients were given.
    """
    key = f"{tfs.REST_PORT}/tcp"
    if attrs["State"].get("Running"):
        bindings = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(key)
    else:
        bindings = ((attrs.get("HostConfig") or {}).get("PortBindings") or {}).get(key)
    usable = bind in WILDCARDS
    for b in bindings or ():
        ip, port = str(b.get("HostIp") or ""), str(b.get("HostPort") or "")
        if port.isdigit() and (usable or ip == bind or ip in WILDCARDS):
            return Published(attrs["Name"].lstrip("/"), ip, int(port))
    return None


def spec_from_containers(
    name: str,
    containers: list[dict[str, Any]],
    project: LoadedProject,
    served: tuple[int, ...] | None,
    port: int | None = None,
) -> dict[str, Any]:
    """A Serving document describing what the hand-made containers run."""
    first = containers[0]
    shown = first["Name"].lstrip("/")
    model = model_of(first)
    mount = _model_mount(first)
    if model is None:
        raise ImportRefused(f"cannot tell which model {shown} serves")
    if mount is not None:
        source = Path(mount["Source"]).resolve()
        if project.registry.model_dir(model).resolve() != source:
            raise ImportRefused(
                f"{shown} mounts {source}, which is not Models/{model} of the project's registry"
            )
    valid = project.registry.valid_versions(model)
    version = max(served) if served else (valid[-1] if valid else None)
    if version is None:
        raise ImportRefused(f"model {model!r} has no valid version in the registry")
    host = first.get("HostConfig") or {}
    resources: dict[str, Any] = {}
    if host.get("NanoCpus"):
        resources["cpu"] = S.format_cpu(Decimal(host["NanoCpus"]) / 10**9)
    if host.get("Memory"):
        resources["memory"] = S.format_memory(host["Memory"])
    running = any(c["State"].get("Running") for c in containers)
    spec: dict[str, Any] = {
        "model": {"name": model, "version": version},
        "instances": len(containers),
    }
    if not running:
        spec["state"] = "stopped"
    if tfs.split_batching_args(list(first.get("Args") or []))[1]:
        spec["batching"] = {"enabled": True}
    if resources:
        spec["resources"] = resources
    if port is not None:
        spec["endpoint"] = {"port": port}
    doc = {"apiVersion": S.API_VERSION, "kind": "Serving", "metadata": {"name": name}, "spec": spec}
    S.Serving.model_validate(doc)  # what we write must load
    return doc
