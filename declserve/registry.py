"""The model registry: `Models/<model>/<version>/{saved_model.pb,variables/}` under one root.

It lists the valid versions of a model, says exactly what a broken version directory lacks,
resolves `latest`, and guarantees that no path it hands out leaves the registry root (`..`,
absolute names and symlinks pointing outside are refused). It reads the file system only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from declserve.errors import DeclserveError

MODELS_DIR = "Models"
_VERSION_DIR = re.compile(r"^[1-9][0-9]{0,9}$")


class RegistryError(DeclserveError):
    """The registry cannot answer: a missing model or version, a broken layout, an escape."""


@dataclass(frozen=True)
class VersionCheck:
    version: int
    path: Path
    missing: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.missing


class Registry:
    """A read-only view of one registry root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # one command's view: every serving of a model version checks the same directories
        self._checked: dict[tuple[str, int], VersionCheck] = {}
        self._root_real: Path | None = None

    def _real_root(self) -> Path:
        if self._root_real is None:
            self._root_real = self.root.resolve()
        return self._root_real

    def _inside(self, path: Path, what: str) -> Path:
        """`path` with symlinks resolved, or an error when it leaves the registry root."""
        real = path.resolve()
        root = self._real_root()
        if real != root and root not in real.parents:
            raise RegistryError(f"{what} resolves to {real}, outside the registry root {root}")
        return real

    def resolve_relative(self, relative: str, what: str) -> Path:
        """A user-given path relative to the root, refused when absolute or escaping."""
        if os.path.isabs(relative):
            raise RegistryError(f"{what} {relative!r} must be relative to the registry root")
        if ".." in Path(relative).parts:
            raise RegistryError(f"{what} {relative!r} must not contain '..'")
        return self._inside(self.root / relative, f"{what} {relative!r}")

    def check_root(self) -> None:
        if not self.root.is_dir():
            raise RegistryError(f"registry root {self.root} is not a directory")
        if not (self.root / MODELS_DIR).is_dir():
            raise RegistryError(f"registry root {self.root} has no {MODELS_DIR}/ directory")

    def model_dir(self, model: str) -> Path:
        """The directory of a model, checked to stay inside the root."""
        if not model or "/" in model or "\\" in model or model in (".", "..") or model[0] == ".":
            raise RegistryError(f"model name {model!r} is not a plain directory name")
        self.check_root()
        path = self.root / MODELS_DIR / model
        if not path.is_dir():
            known = ", ".join(self.models()) or "none"
            raise RegistryError(f"model {model!r} is not in the registry (models: {known})")
        self._inside(path, f"model {model!r}")
        return path

    def models(self) -> list[str]:
        base = self.root / MODELS_DIR
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))

    def check_version(self, model: str, version: int) -> VersionCheck:
        """What the version directory holds and, if anything, what it lacks."""
        found = self._checked.get((model, version))
        if found is None:
            found = self._checked[(model, version)] = self._check_version(model, version)
        return found

    def _check_version(self, model: str, version: int) -> VersionCheck:
        path = self.model_dir(model) / str(version)
        if not path.is_dir():
            return VersionCheck(version, path, ("the version directory",))
        real = self._inside(path, f"model {model!r} version {version}")
        missing = []
        pb = real / "saved_model.pb"
        if not pb.is_file():
            missing.append("saved_model.pb")
        else:
            self._inside(pb, f"model {model!r} version {version} saved_model.pb")
            if pb.stat().st_size == 0:
                missing.append("a non-empty saved_model.pb")
        variables = real / "variables"
        if not variables.is_dir():
            missing.append("the variables/ directory")
        else:
            self._inside(variables, f"model {model!r} version {version} variables/")
        return VersionCheck(version, real, tuple(missing))

    def versions(self, model: str) -> list[VersionCheck]:
        """Every numeric version directory of a model, valid or not, lowest first."""
        base = self.model_dir(model)
        found = sorted(int(p.name) for p in base.iterdir() if _VERSION_DIR.match(p.name))
        return [self.check_version(model, v) for v in found]

    def valid_versions(self, model: str) -> list[int]:
        return [c.version for c in self.versions(model) if c.valid]

    def resolve(self, model: str, version: int | str) -> int:
        """A concrete, valid version: `latest` becomes the highest valid one."""
        if version == "latest":
            valid = self.valid_versions(model)
            if not valid:
                raise RegistryError(f"model {model!r} has no valid version for 'latest'")
            return valid[-1]
        assert isinstance(version, int)
        check = self.check_version(model, version)
        if not check.valid:
            if check.missing == ("the version directory",):
                known = ", ".join(str(v) for v in self.valid_versions(model)) or "none"
                raise RegistryError(
                    f"model {model!r} has no version {version} (valid versions: {known})"
                )
            raise RegistryError(
                f"model {model!r} version {version} lacks {' and '.join(check.missing)}"
            )
        return version

    def version_path(self, model: str, version: int) -> Path:
        """The real directory of a valid version, for mounting."""
        self.resolve(model, version)
        return self._inside(self.model_dir(model) / str(version), f"model {model!r}")
