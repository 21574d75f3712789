"""The registry: version listing, broken versions, `latest`, and paths trying to leave the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from declserve.registry import Registry, RegistryError


def _version(
    root: Path, model: str, version: str, *, pb: bool = True, variables: bool = True
) -> Path:
    path = root / "Models" / model / version
    path.mkdir(parents=True)
    if pb:
        (path / "saved_model.pb").write_bytes(b"\x08\x01")
    if variables:
        (path / "variables").mkdir()
    return path


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    root = tmp_path / "reg"
    for v in ("1", "2", "10"):
        _version(root, "mnist", v)
    _version(root, "mnist", "11", variables=False)
    _version(root, "mnist", "12", pb=False)
    (root / "Models" / "mnist" / "notes").mkdir()
    (root / "Models" / "mnist" / "007").mkdir()  # not a canonical number: ignored like TF Serving
    return Registry(root)


def test_versions_are_numeric_directories_sorted_numerically(registry: Registry) -> None:
    assert [c.version for c in registry.versions("mnist")] == [1, 2, 10, 11, 12]
    assert registry.valid_versions("mnist") == [1, 2, 10]


def test_broken_versions_say_exactly_what_they_lack(registry: Registry) -> None:
    assert registry.check_version("mnist", 11).missing == ("the variables/ directory",)
    assert registry.check_version("mnist", 12).missing == ("saved_model.pb",)
    with pytest.raises(RegistryError, match="version 11 lacks the variables/ directory"):
        registry.resolve("mnist", 11)


def test_empty_saved_model_is_broken(tmp_path: Path) -> None:
    path = _version(tmp_path, "m", "1")
    (path / "saved_model.pb").write_bytes(b"")
    assert Registry(tmp_path).check_version("m", 1).missing == ("a non-empty saved_model.pb",)


def test_latest_is_the_highest_valid_version(registry: Registry) -> None:
    assert registry.resolve("mnist", "latest") == 10


def test_latest_without_valid_version_is_an_error(tmp_path: Path) -> None:
    _version(tmp_path, "m", "1", pb=False)
    with pytest.raises(RegistryError, match="no valid version for 'latest'"):
        Registry(tmp_path).resolve("m", "latest")


def test_missing_version_names_the_valid_ones(registry: Registry) -> None:
    with pytest.raises(RegistryError, match=r"has no version 3 \(valid versions: 1, 2, 10\)"):
        registry.resolve("mnist", 3)


def test_unknown_model_names_the_known_ones(registry: Registry) -> None:
    with pytest.raises(
        RegistryError, match=r"model 'resnet' is not in the registry \(models: mnist\)"
    ):
        registry.model_dir("resnet")


@pytest.mark.parametrize("name", ["..", "../x", "/etc", ".hidden", "a/b", ""])
def test_model_names_that_are_not_plain_directories_are_refused(
    registry: Registry, name: str
) -> None:
    with pytest.raises(RegistryError, match="not a plain directory name"):
        registry.model_dir(name)


def test_model_symlink_pointing_outside_is_refused(tmp_path: Path, registry: Registry) -> None:
    outside = tmp_path / "outside"
    _version(outside, "evil", "1")
    os.symlink(outside / "Models" / "evil", registry.root / "Models" / "evil")
    with pytest.raises(RegistryError, match="outside the registry root"):
        registry.model_dir("evil")


def test_version_symlink_pointing_outside_is_refused(tmp_path: Path, registry: Registry) -> None:
    outside = _version(tmp_path / "elsewhere", "x", "1")
    os.symlink(outside, registry.root / "Models" / "mnist" / "20")
    with pytest.raises(RegistryError, match="outside the registry root"):
        registry.resolve("mnist", 20)


def test_saved_model_symlink_pointing_outside_is_refused(
    tmp_path: Path, registry: Registry
) -> None:
    secret = tmp_path / "secret.pb"
    secret.write_bytes(b"x")
    path = _version(registry.root, "other", "1", pb=False)
    os.symlink(secret, path / "saved_model.pb")
    with pytest.raises(RegistryError, match="outside the registry root"):
        registry.resolve("other", 1)


def test_symlink_inside_the_root_is_allowed(registry: Registry) -> None:
    os.symlink(registry.root / "Models" / "mnist" / "2", registry.root / "Models" / "mnist" / "30")
    assert registry.resolve("mnist", 30) == 30


@pytest.mark.parametrize("relative", ["/etc/passwd.py", "../x.py", "Resources/../../x.py"])
def test_relative_paths_cannot_escape(registry: Registry, relative: str) -> None:
    with pytest.raises(RegistryError):
        registry.resolve_relative(relative, "transformer script")


def test_relative_symlink_escape_is_refused(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "evil.py").write_text("x")
    (registry.root / "Resources").mkdir()
    os.symlink(tmp_path / "evil.py", registry.root / "Resources" / "t.py")
    with pytest.raises(RegistryError, match="outside the registry root"):
        registry.resolve_relative("Resources/t.py", "transformer script")


def test_root_without_models_directory(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="has no Models/ directory"):
        Registry(tmp_path).check_root()
