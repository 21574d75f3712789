"""The Docker backend's essence of a serving: what declserve sets, made from a spec or read back.

Both directions live here so they cannot drift apart: `desired_*` builds the essence from a
spec (pure), `observed_*` reduces `docker inspect` output and the files declserve wrote to the
same shape. Values the engine fills in by itself never enter the essence, and user labels are
compared only for the keys declserve set, so image labels and engine defaults are not drift.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from declserve.backends import tfserving as tfs
from declserve.desired import DesiredServing
from declserve.spec import DesiredState, format_cpu, format_memory

LABEL_PREFIX = "declserve.io/"
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


def desired_serving_essence(d: DesiredServing) -> dict[str, Any]:
    essence: dict[str, Any] = {
        "model": {"name": d.spec.model.name, "version": d.version},
        "protected": d.spec.protected,
    }
    if d.spec.batching.enabled:
        essence["batchingParameters"] = d.spec.batching.parameters()
    return essence


def desired_replica_essence(d: DesiredServing, image: str, restart: str, poll: int) -> dict[str, Any]:
    res = d.spec.resources
    return {
        "image": image,
        "running": d.spec.state is DesiredState.RUNNING,
        "modelDir": str(d.model_dir),
        "resources": {"cpu": res.cpu, "memory": res.memory, "gpus": res.gpus},
        "batching": d.spec.batching.enabled,
        "restartPolicy": restart,
        "args": tfs.server_args(poll, batching=False),
        "labels": dict(d.serving.metadata.labels),
    }


def spec_hash(essence: dict[str, Any], replica: dict[str, Any], instances: int) -> str:
    text = json.dumps([essence, replica, instances], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _gpus(host_config: dict[str, Any]) -> int:
    total = 0
    for req in host_config.get("DeviceRequests") or ():
        count = req.get("Count", 0)
        total += 0 if count is None else (count if count >= 0 else 1)
    return total


def observed_replica_essence(attrs: dict[str, Any]) -> dict[str, Any]:
    """The essence of one container, from `docker inspect`."""
    config, host = attrs.get("Config") or {}, attrs.get("HostConfig") or {}
    args, batching = tfs.split_batching_args(list(attrs.get("Args") or config.get("Cmd") or []))
    labels = config.get("Labels") or {}
    user_keys = [k for k in labels.get(LABEL_USER_KEYS, "").split(",") if k]
    model_dir = next(
        (m.get("Source") for m in attrs.get("Mounts") or () if str(m.get("Destination", "")).startswith(MODEL_MOUNT_ROOT)),
        None,
    )
    nano = host.get("NanoCpus") or 0
    memory = host.get("Memory") or 0
    return {
        "image": config.get("Image"),
        "running": bool((attrs.get("State") or {}).get("Running")),
        "modelDir": model_dir,
        "resources": {
            "cpu": format_cpu(Decimal(nano) / 10**9) if nano else None,
            "memory": format_memory(memory) if memory else None,
            "gpus": _gpus(host),
        },
        "batching": batching,
        "restartPolicy": (host.get("RestartPolicy") or {}).get("Name") or "no",
        "args": args,
        "labels": {k: labels.get(k) for k in user_keys},
    }


def config_dir_of(attrs: dict[str, Any]) -> Path | None:
    for mount in attrs.get("Mounts") or ():
        if mount.get("Destination") == tfs.CONFIG_DIR:
            return Path(mount["Source"])
    return None


def observed_serving_essence(config_dir: Path | None) -> dict[str, Any]:
    """The serving-wide essence: what the model config (and batching) files really say."""
    if config_dir is None:
        return {"model": {"name": None, "version": None}, "protected": False}
    try:
        parsed = tfs.parse_model_config((config_dir / tfs.MODEL_CONFIG).read_text())
    except OSError:
        parsed = {"name": None, "version": None}
    essence: dict[str, Any] = {"model": parsed, "protected": (config_dir / PROTECTED_MARK).exists()}
    try:
        essence["batchingParameters"] = tfs.parse_batching_config(
            (config_dir / tfs.BATCHING_CONFIG).read_text()
        )
    except OSError:
        pass
    return essence
