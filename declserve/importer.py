"""`declserve import NAME`: adopt a serving started by hand and write its spec into the project.

The hand-made containers (named NAME or NAME-<n>, running the project's TensorFlow Serving
image, not labelled by declserve) are read back into a spec: model and version from their mount
and what the server reports, instance count, limits, batching, running or stopped. Docker labels
cannot be added to a container, so adopting means: managed replicas are created from that spec
and become ready, then the hand-made ones are removed. The spec file is written last, so an
import that fails leaves the project as it was.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from declserve import spec as S
from declserve.backends import tfserving as tfs
from declserve.desired import DesiredServing
from declserve.errors import DeclserveError
from declserve.loader import LoadedProject


class ImportRefused(DeclserveError):
    """Nothing to import, or the serving is already managed or specified."""


def _arg(args: list[str], flag: str) -> str | None:
    for a in args:
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def spec_from_containers(
    name: str, containers: list[dict[str, Any]], project: LoadedProject, served: tuple[int, ...] | None
) -> dict[str, Any]:
    """A Serving document describing what the hand-made containers run."""
    first = containers[0]
    args = list(first.get("Args") or [])
    env = dict(e.split("=", 1) for e in (first["Config"].get("Env") or []) if "=" in e)
    model = _arg(args, "--model_name") or env.get("MODEL_NAME")
    mount = next((m for m in first.get("Mounts") or () if str(m.get("Destination", "")).startswith(tfs.MODELS_MOUNT + "/")), None)
    if mount is not None:
        model = model or Path(mount["Destination"]).name
        source = Path(mount["Source"]).resolve()
        if model is None or project.registry.model_dir(model).resolve() != source:
            raise ImportRefused(f"{first['Name'].lstrip('/')} mounts {source}, which is not "
                                f"Models/{model} of the project's registry")
    if model is None:
        raise ImportRefused(f"cannot tell which model {first['Name'].lstrip('/')} serves")
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
    spec: dict[str, Any] = {"model": {"name": model, "version": version}, "instances": len(containers)}
    if not running:
        spec["state"] = "stopped"
    if tfs.split_batching_args(args)[1]:
        spec["batching"] = {"enabled": True}
    if resources:
        spec["resources"] = resources
    doc = {"apiVersion": S.API_VERSION, "kind": "Serving", "metadata": {"name": name}, "spec": spec}
    S.Serving.model_validate(doc)  # what we write must load
    return doc


def spec_path(project: LoadedProject, name: str) -> Path:
    folder = project.directory / "servings"
    return (folder if folder.is_dir() else project.directory) / f"{name}.yaml"


def write_spec(path: Path, doc: dict[str, Any], schema_ref: str) -> None:
    header = (f"# yaml-language-server: $schema={schema_ref}\n"
              "# Written by `declserve import`; edit freely, it is yours now.\n")
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False))


def desired_of(doc: dict[str, Any], project: LoadedProject, path: Path) -> DesiredServing:
    serving = S.Serving.model_validate(doc)
    version = project.registry.resolve(serving.spec.model.name, serving.spec.model.version)
    return DesiredServing(serving, version, project.registry.model_dir(serving.spec.model.name).resolve(),
                          f"{path}:1")
