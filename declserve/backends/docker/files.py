"""The files declserve writes for a serving on the Docker host, in its config directory.

The model config file and the batching parameters file are what TensorFlow Serving reads
(mounted read-only at /etc/declserve in every replica); the protection mark is an empty file
there too. Every write replaces the file atomically, so a server polling it never reads half.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from declserve.backends import tfserving as tfs
from declserve.backends.docker.essence import PROTECTED_MARK
from declserve.desired import DesiredServing


def atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_serving_files(directory: Path, desired: DesiredServing) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(
        directory / tfs.MODEL_CONFIG,
        tfs.model_config_text(desired.spec.model.name, desired.version),
    )
    mark = directory / PROTECTED_MARK
    if desired.spec.protected:
        mark.write_text("declserve: --prune and destroy keep this serving\n")
    else:
        mark.unlink(missing_ok=True)
    batching = directory / tfs.BATCHING_CONFIG
    if desired.spec.batching.enabled:
        atomic_write(batching, tfs.batching_config_text(desired.spec.batching.parameters()))
    else:
        batching.unlink(missing_ok=True)


def remove_serving_files(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def remove_protection(directory: Path) -> bool:
    mark = directory / PROTECTED_MARK
    if mark.exists():
        mark.unlink()
        return True
    return False
