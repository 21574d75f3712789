"""The Docker backend's essence of a serving: what declserve sets, made from a spec or read back.

Both directions live here so they cannot drift apart: `desired_essence` builds it from a spec
(pure), `replica_essence` and `serving_essence` reduce `docker inspect` output and the files
declserve wrote to the same shape. A serving is N containers, but its essence is one: fields
every replica shares are shown once, and a field that differs between replicas reads
`mixed: <value> on <replica>; ...`, so it never equals a desired value and shows as a change.
Values the engine fills in by itself never enter the essence, and user labels are compared
only for the keys declserve set, so image labels and engine defaults are not drift.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from declserve.backends import tfserving as tfs
from declserve.backends.docker.settings import DockerSettings
from declserve.desired import DesiredServing
from declserve.live import flatten
from declserve.registry import MODELS_DIR
from declserve.spec import DesiredState, format_cpu, format_memory

LABEL_MANAGED = "declserve.io/managed-by"
LABEL_PROJECT = "declserve.io/project"
LABEL_SERVING = "declserve.io/serving"
LABEL_INDEX = "declserve.io/index"
LABEL_SPEC_HASH = "declserve.io/spec-hash"
LABEL_USER_KEYS = "declserve.io/label-keys"
LABEL_MODEL = "declserve.io/model"
LABEL_ROLE = "declserve.io/role"
MANAGER = "declserve"
MODEL_MOUNT_ROOT = tfs.MODELS_MOUNT + "/"
PROTECTED_MARK = "protected"  # a file in the serving's config directory, mounted in every replica

# Fields each container carries for itself; everything else is serving-wide (config files).
REPLICA_FIELDS = (
    "image",
    "running",
    "modelSource",
    "resources",
    "batching.enabled",
    "restartPolicy",
    "args",
    "labels",
)
IN_PLACE = frozenset({"resources.cpu", "resources.memory"})
AUTO_PORT = "chosen once"  # the front proxy's port when the spec names none


def is_replica_field(path: str) -> bool:
    return any(path == f or path.startswith(f + ".") for f in REPLICA_FIELDS)


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def desired_replica(d: DesiredServing, s: DockerSettings) -> dict[str, Any]:
    """The flat essence every replica of the serving should have."""
    res = d.spec.resources
    return flatten(
        {
            "image": s.image,
            "running": d.spec.state is DesiredState.RUNNING,
            "modelSource": d.model.model_path,
            "resources": {"cpu": res.cpu, "memory": res.memory, "gpus": res.gpus},
            "batching": {"enabled": d.spec.batching.enabled},
            "restartPolicy": s.restart_policy,
            "args": tfs.server_args(s.poll_seconds, batching=False),
            "labels": dict(d.serving.metadata.labels),
        }
    )


def desired_essence(d: DesiredServing, s: DockerSettings) -> dict[str, Any]:
    replica = {k: v for k, v in desired_replica(d, s).items() if k != "running"}
    config = tfs.model_config_text(d.spec.model.name, d.version)
    essence: dict[str, Any] = {
        "model": {"name": d.spec.model.name, "version": d.version},
        "modelConfig": tfs.model_config_fields(config),
        "instances": d.spec.instances,
        "state": d.spec.state.value,
        "protected": d.spec.protected,
        **unflatten(replica),
    }
    essence["batching"].update(d.spec.batching.parameters())
    essence["frontend"] = {"image": s.proxy_image, "port": d.spec.endpoint.port or AUTO_PORT}
    logging = d.spec.inference_logging
    if d.topic is not None and logging is not None:
        essence["logging"] = {
            "topic": d.topic,
            "mode": logging.mode.value,
            "maxRecordBytes": s.max_message_bytes,
        }
    return essence


def spec_hash(essence: dict[str, Any]) -> str:
    text = json.dumps(essence, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _gpus(host_config: dict[str, Any]) -> int:
    total = 0
    for req in host_config.get("DeviceRequests") or ():
        count = req.get("Count", 0)
        total += 0 if count is None else (count if count >= 0 else 1)
    return total


def _cpus(host: dict[str, Any]) -> str | None:
    nano = host.get("NanoCpus") or 0
    if nano:
        return format_cpu(Decimal(nano) / 10**9)
    quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or 0
    if quota > 0 and period > 0:
        return format_cpu((Decimal(quota) / Decimal(period)).quantize(Decimal("0.001")))
    return None


def model_source(mount_source: str | None) -> str | None:
    """What a replica mounts, as the registry names it: `Models/<name>` when it is a registry's.

    The host path of the registry differs between clones and runners; only the part below the
    registry root says which model is served, so only that part is compared.
    """
    if not mount_source:
        return None
    path = Path(mount_source)
    if path.parent.name == MODELS_DIR:
        return f"{MODELS_DIR}/{path.name}"
    return mount_source


def replica_essence(attrs: dict[str, Any]) -> dict[str, Any]:
    """The flat essence of one container, from `docker inspect`."""
    config, host = attrs.get("Config") or {}, attrs.get("HostConfig") or {}
    args, batching = tfs.split_batching_args(list(attrs.get("Args") or config.get("Cmd") or []))
    labels = config.get("Labels") or {}
    user_keys = [k for k in labels.get(LABEL_USER_KEYS, "").split(",") if k]
    mount = next(
        (
            m.get("Source")
            for m in attrs.get("Mounts") or ()
            if str(m.get("Destination", "")).startswith(MODEL_MOUNT_ROOT)
        ),
        None,
    )
    memory = host.get("Memory") or 0
    return flatten(
        {
            "image": config.get("Image"),
            "running": bool((attrs.get("State") or {}).get("Running")),
            "modelSource": model_source(mount),
            "resources": {
                "cpu": _cpus(host),
                "memory": format_memory(memory) if memory else None,
                "gpus": _gpus(host),
            },
            "batching": {"enabled": batching},
            "restartPolicy": (host.get("RestartPolicy") or {}).get("Name") or "no",
            "args": args,
            "labels": {k: labels.get(k) for k in user_keys},
        }
    )


def collapse(replicas: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One flat essence for many replicas: shared values once, differing ones as `mixed: ...`."""
    keys = sorted({k for _, e in replicas for k in e})
    out: dict[str, Any] = {}
    for key in keys:
        by_value: dict[str, list[str]] = {}
        values: dict[str, Any] = {}
        for name, essence in replicas:
            value = essence.get(key)
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            by_value.setdefault(text, []).append(name)
            values[text] = value
        if len(by_value) == 1:
            out[key] = next(iter(values.values()))
        else:
            out[key] = "mixed: " + "; ".join(
                f"{text} on {', '.join(names)}" for text, names in sorted(by_value.items())
            )
    return out


def _state(running: Any) -> Any:
    if running is True:
        return DesiredState.RUNNING.value
    if running is False:
        return DesiredState.STOPPED.value
    return str(running).replace("true on", "running on").replace("false on", "stopped on")


def files_essence(config_dir: Path | None) -> dict[str, Any]:
    """What the files declserve wrote for a serving really say."""
    if config_dir is None:
        return {"model": {"name": None, "version": None}, "protected": False}
    try:
        text = (config_dir / tfs.MODEL_CONFIG).read_text()
        parsed, fields = tfs.parse_model_config(text), tfs.model_config_fields(text)
    except OSError:
        parsed, fields = {"name": None, "version": None}, {}
    essence: dict[str, Any] = {
        "model": parsed,
        "modelConfig": fields,
        "protected": (config_dir / PROTECTED_MARK).exists(),
    }
    try:
        text = (config_dir / tfs.BATCHING_CONFIG).read_text()
        essence["batching"] = tfs.parse_batching_config(text)
    except OSError:
        pass
    return essence


def serving_essence(
    replicas: Sequence[tuple[str, dict[str, Any]]],
    files: dict[str, Any],
    proxy: dict[str, Any],
) -> dict[str, Any]:
    """The serving's essence from its replicas' flat essences, its files and its front proxy
    (`frontend` and, when it logs, `logging`)."""
    flat = collapse(replicas)
    state = _state(flat.pop("running", False))
    essence = {**files, "instances": len(replicas), "state": state, **unflatten(flat)}
    batching = files.get("batching") or {}
    essence["batching"] = {**batching, **essence.get("batching", {})}
    if "enabled" not in essence["batching"]:
        essence["batching"]["enabled"] = False
    essence.update(proxy)
    return essence


def config_dir_of(attrs: dict[str, Any]) -> Path | None:
    for mount in attrs.get("Mounts") or ():
        if mount.get("Destination") == tfs.CONFIG_DIR:
            return Path(mount["Source"])
    return None
