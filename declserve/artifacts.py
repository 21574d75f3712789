"""KServe artifacts: `Models/<model>/<version>/Artifacts/<n>/`, what a KServe serving mounts.

Artifact 0 (MODEL-ONLY) holds the model version alone and is shared by every serving of that
version without a transformer. A serving with a transformer gets the next number each time its
script or its model version changes; that artifact holds the version and the script:

    Artifacts/<n>/<version>/...                the version's files, hard-linked where possible
    Artifacts/<n>/transformer/<script name>    only n >= 1
    Artifacts/<n>/ARTIFACT.json                written last: what the artifact holds

KServe's TensorFlow runtime serves the latest numeric child of the mounted directory, hence the
`<version>/` level. An artifact is built under a hidden temporary name and renamed into place,
so a directory named by a number is complete or absent; complete artifacts are never modified.
Every path goes through the registry's rules: nothing leaves the registry root.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from declserve.registry import MODELS_DIR, Registry, RegistryError

MODEL_ONLY = 0
ARTIFACTS_DIR = "Artifacts"
MANIFEST = "ARTIFACT.json"
TRANSFORMER_DIR = "transformer"
_NUMBER = re.compile(r"^(0|[1-9][0-9]{0,9})$")
_TMP_PREFIX = ".tmp-"
_RM_PREFIX = ".rm-"


@dataclass(frozen=True)
class ArtifactInfo:
    number: int
    model: str
    version: int
    script: str | None  # registry-relative path of the transformer script, None for MODEL-ONLY
    script_sha256: str | None
    path: Path  # Models/<model>/<version>/Artifacts/<n>, absolute


@dataclass(frozen=True)
class ArtifactChoice:
    number: int
    new: bool  # apply must write it; plan never writes

    def label(self) -> str:
        return "MODEL-ONLY" if self.number == MODEL_ONLY else str(self.number)


def _check_names(model: str, version: int, number: int | None = None) -> None:
    # the same rule as Registry.model_dir, without touching the disk
    if not model or "/" in model or "\\" in model or model[0] == ".":
        raise RegistryError(f"model name {model!r} is not a plain directory name")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RegistryError(f"model {model!r} version {version!r} is not a positive number")
    if number is not None and (
        isinstance(number, bool) or not isinstance(number, int) or number < 0
    ):
        raise RegistryError(f"artifact number {number!r} is not a number >= 0")


def relative_path(registry: Registry, model: str, version: int, number: int) -> str:
    """The artifact's path relative to the registry root, e.g. 'Models/mnist/1/Artifacts/0'
    (POSIX; the disk is not read, so a plan can name an artifact it has yet to write)."""
    _check_names(model, version, number)
    return PurePosixPath(MODELS_DIR, model, str(version), ARTIFACTS_DIR, str(number)).as_posix()


def _script_key(script: str) -> str:
    # 'scripts/t.py' and './scripts/t.py' are the same script for reuse and idempotence
    return PurePosixPath(script).as_posix()


def _read_script(registry: Registry, script: str) -> tuple[Path, bytes]:
    path = registry.resolve_relative(script, "transformer script")
    if not path.is_file():
        raise RegistryError(f"transformer script {script!r} is not a file in the registry")
    return path, path.read_bytes()


def script_digest(registry: Registry, script: str) -> str:
    """sha256 hex of the transformer script's bytes (RegistryError when it escapes the root or
    is missing)."""
    return hashlib.sha256(_read_script(registry, script)[1]).hexdigest()


def _artifacts_dir(registry: Registry, model: str, version: int) -> Path:
    """The real `Artifacts` directory of a model version (it may not exist yet)."""
    _check_names(model, version)
    registry.model_dir(model)
    rel = PurePosixPath(MODELS_DIR, model, str(version), ARTIFACTS_DIR).as_posix()
    return registry.resolve_relative(rel, f"model {model!r} version {version} {ARTIFACTS_DIR}/")


def _read_manifest(path: Path, number: int, model: str, version: int) -> ArtifactInfo | None:
    """The artifact in `path`, or None when it is not one this module wrote for this version."""
    manifest = path / MANIFEST
    if manifest.is_symlink() or not manifest.is_file():
        return None
    try:
        data: Any = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    script, digest = data.get("script"), data.get("scriptSha256")
    if data.get("artifact") != number or data.get("model") != model:
        return None
    if type(data.get("version")) is not int or data["version"] != version:
        return None
    # MODEL-ONLY holds no script; every other artifact holds exactly one
    if number == MODEL_ONLY:
        if script is not None or digest is not None:
            return None
    elif not isinstance(script, str) or not isinstance(digest, str):
        return None
    return ArtifactInfo(number, model, version, script, digest, path)


def _scan(registry: Registry, model: str, version: int) -> tuple[dict[int, ArtifactInfo], int]:
    """The complete artifacts, and the highest number any entry of `Artifacts/` takes."""
    base = _artifacts_dir(registry, model, version)
    if not base.is_dir():
        return {}, MODEL_ONLY
    found: dict[int, ArtifactInfo] = {}
    highest = MODEL_ONLY
    for entry in base.iterdir():
        if not _NUMBER.match(entry.name):
            continue  # temporary directories, notes, '007'
        number = int(entry.name)
        # a junk entry still takes its number: renaming onto it would fail or replace it
        highest = max(highest, number)
        if entry.is_symlink():
            rel = entry.relative_to(registry.root.resolve()).as_posix()
            registry.resolve_relative(rel, f"model {model!r} version {version} artifact {number}")
            continue  # never one this module wrote: a mounted sub-directory cannot follow it
        if entry.is_dir():
            info = _read_manifest(entry, number, model, version)
            if info is not None:
                found[number] = info
    return found, highest


def existing(registry: Registry, model: str, version: int) -> dict[int, ArtifactInfo]:
    """The complete artifacts of a model version by number: directories named by a number
    holding a readable ARTIFACT.json for this model version. Temporary directories and junk are
    ignored; an `Artifacts` directory or an artifact leaving the root is a RegistryError."""
    return _scan(registry, model, version)[0]


def choose(
    registry: Registry, model: str, version: int, script: str | None, live_number: int | None
) -> ArtifactChoice:
    """The artifact a serving of `model` `version` with transformer `script` (or None) should
    use; `live_number` is the artifact its live serving uses now, if any. Reads only.

    Without a script: the shared MODEL-ONLY artifact. With one: the live artifact when it holds
    this very script (same path, same sha256), otherwise a new number above every one taken, so
    a changed script or a new model version gets the next number and two servings with a
    transformer never share one.
    """
    return _choose(registry, model, version, script, lambda n: n == live_number)


def holding(registry: Registry, model: str, version: int, script: str | None) -> ArtifactChoice:
    """Like `choose`, but any existing artifact of this version that holds this very script
    (the lowest such number) is reused, whichever serving made it. One scan, one digest."""
    return _choose(registry, model, version, script, lambda n: n != MODEL_ONLY)


def _choose(registry: Registry, model: str, version: int, script: str | None,
            candidate: Callable[[int], bool]) -> ArtifactChoice:
    found, highest = _scan(registry, model, version)
    if script is None:
        return ArtifactChoice(MODEL_ONLY, new=MODEL_ONLY not in found)
    key, digest = _script_key(script), script_digest(registry, script)
    for number in sorted(n for n in found if candidate(n)):
        if _same(found[number], key, digest):
            return ArtifactChoice(number, new=False)
    return ArtifactChoice(highest + 1, new=True)


def _place(src: Path, dst: Path) -> None:
    # a hard link costs no space and, unlike a symlink, works inside a mounted sub-directory
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_version(registry: Registry, src: Path, dst: Path, root: Path, seen: set[Path]) -> None:
    """Hard-link (or copy) the real directory `src` into `dst`, following symlinks that stay in
    the root, so that the artifact holds no symlink at all."""
    dst.mkdir()
    for entry in sorted(src.iterdir()):
        if not seen and entry.name == ARTIFACTS_DIR:
            continue  # the version's own artifacts: an artifact never holds artifacts
        real = entry
        if entry.is_symlink():
            rel = entry.relative_to(root).as_posix()
            real = registry.resolve_relative(rel, f"version file {rel!r}")
        if real.is_dir():
            if real in seen or real == src:
                raise RegistryError(f"version directory {entry} links back to itself")
            _copy_version(registry, real, dst / entry.name, root, seen | {src})
        elif real.is_file():
            _place(real, dst / entry.name)
        else:
            raise RegistryError(f"version file {entry} is neither a file nor a directory")


def _write_file(path: Path, data: bytes) -> None:
    # flushed before the rename, so the final name never points at unwritten bytes
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _temp_dir(base: Path, prefix: str) -> Path:
    # not tempfile.mkdtemp: its mode 0700 would survive the rename and lock out the server
    while True:
        path = base / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same(info: ArtifactInfo, script: str | None, digest: str | None) -> bool:
    return info.script == script and info.script_sha256 == digest


def write(
    registry: Registry, model: str, version: int, choice: ArtifactChoice, script: str | None
) -> ArtifactInfo:
    """The artifact `choice` names, created when `choice.new` and absent. Idempotent: an
    existing complete artifact with the same script (path and sha256) is returned as it is;
    one with different content, a number taken by junk, or a planned existing artifact that is
    gone is a RegistryError."""
    if (choice.number == MODEL_ONLY) != (script is None):
        raise ValueError(f"artifact {choice.label()} with script {script!r}: MODEL-ONLY and only "
                         "MODEL-ONLY is written without a transformer script")
    _check_names(model, version, choice.number)
    name = f"model {model!r} version {version} artifact {choice.label()}"
    key = _script_key(script) if script is not None else None
    data = _read_script(registry, script)[1] if script is not None else None
    digest = hashlib.sha256(data).hexdigest() if data is not None else None

    found = existing(registry, model, version)
    if choice.number in found:
        if _same(found[choice.number], key, digest):
            return found[choice.number]
        raise RegistryError(f"{name} exists with other content (script "
                            f"{found[choice.number].script!r}); it is never modified")
    if not choice.new:
        raise RegistryError(f"{name} was planned as existing but is not in the registry")

    source = registry.version_path(model, version)
    base = _artifacts_dir(registry, model, version)
    base.mkdir(exist_ok=True)
    final = base / str(choice.number)
    if final.exists() or final.is_symlink():
        # another writer (a serving applied in parallel) may have completed it meanwhile
        again = existing(registry, model, version).get(choice.number)
        if again is not None and _same(again, key, digest):
            return again
        raise RegistryError(f"{final} exists but is not a complete artifact; remove it")

    tmp = _temp_dir(base, f"{_TMP_PREFIX}{choice.number}-")
    try:
        _copy_version(registry, source, tmp / str(version), registry.root.resolve(), set())
        if script is not None and data is not None:
            (tmp / TRANSFORMER_DIR).mkdir()
            _write_file(tmp / TRANSFORMER_DIR / PurePosixPath(script).name, data)
        manifest = {"artifact": choice.number, "model": model, "version": version,
                    "script": key, "scriptSha256": digest}
        _write_file(tmp / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        try:
            os.rename(tmp, final)
        except OSError as e:
            # another writer won the race: fine when it wrote the same artifact
            again = existing(registry, model, version).get(choice.number)
            if again is not None and _same(again, key, digest):
                shutil.rmtree(tmp, ignore_errors=True)
                return again
            raise RegistryError(f"cannot create {final}: {e.strerror or e}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(base)
    return ArtifactInfo(choice.number, model, version, key, digest, final)


def unused(registry: Registry, model: str, version: int, in_use: set[int]) -> list[ArtifactInfo]:
    """The artifacts of a model version whose numbers are not in `in_use`, oldest (lowest
    number) first; MODEL-ONLY is no exception."""
    found = existing(registry, model, version)
    return [found[n] for n in sorted(found) if n not in in_use]


def remove(info: ArtifactInfo) -> None:
    """Delete one artifact directory; nothing to do when it is already gone. It is renamed to a
    hidden name first, so a crash never leaves a half-removed artifact under its number."""
    path = info.path
    if path.parent.name != ARTIFACTS_DIR or path.name != str(info.number):
        raise RegistryError(f"{path} is not an artifact directory")
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not (path / MANIFEST).is_file():
        raise RegistryError(f"{path} is not a complete artifact; not removing it")
    doomed = path.parent / f"{_RM_PREFIX}{info.number}-{secrets.token_hex(6)}"
    os.rename(path, doomed)
    shutil.rmtree(doomed)
