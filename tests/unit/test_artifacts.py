"""KServe artifacts: numbering, sharing, layout, atomic and idempotent writes, clean-up, escapes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from declserve import artifacts
from declserve.artifacts import MODEL_ONLY, ArtifactChoice, ArtifactInfo
from declserve.registry import Registry, RegistryError

SCRIPT = "scripts/t.py"


def _version(root: Path, model: str, version: int) -> Path:
    path = root / "Models" / model / str(version)
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"\x08\x01pb-" + str(version).encode())
    (path / "variables" / "variables.index").write_bytes(b"index")
    return path


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    root = tmp_path / "reg"
    _version(root, "mnist", 1)
    (root / "scripts").mkdir()
    (root / SCRIPT).write_text("def preprocess(x):\n    return x\n")
    return Registry(root)


def _artifacts(registry: Registry, version: int = 1) -> Path:
    return registry.root / "Models" / "mnist" / str(version) / "Artifacts"


def _make(registry: Registry, script: str | None, live: int | None = None,
          version: int = 1) -> ArtifactInfo:
    choice = artifacts.choose(registry, "mnist", version, script, live)
    return artifacts.write(registry, "mnist", version, choice, script)


def _hidden(registry: Registry) -> list[str]:
    return sorted(p.name for p in _artifacts(registry).iterdir() if p.name.startswith("."))


def test_model_only_is_chosen_new_then_written_then_reused(registry: Registry) -> None:
    choice = artifacts.choose(registry, "mnist", 1, None, None)
    assert choice == ArtifactChoice(MODEL_ONLY, new=True)
    assert choice.label() == "MODEL-ONLY"
    assert not _artifacts(registry).exists()  # choosing never writes

    info = artifacts.write(registry, "mnist", 1, choice, None)
    assert (info.number, info.script, info.script_sha256) == (0, None, None)
    assert info.path == (_artifacts(registry) / "0").resolve()
    assert artifacts.choose(registry, "mnist", 1, None, None) == ArtifactChoice(0, new=False)
    assert set(artifacts.existing(registry, "mnist", 1)) == {0}


def test_two_servings_without_transformer_share_model_only(registry: Registry) -> None:
    first = _make(registry, None)
    second_choice = artifacts.choose(registry, "mnist", 1, None, live_number=None)
    assert second_choice == ArtifactChoice(0, new=False)
    assert artifacts.write(registry, "mnist", 1, second_choice, None) == first
    assert [p.name for p in _artifacts(registry).iterdir()] == ["0"]


def test_transformer_numbering(registry: Registry) -> None:
    _make(registry, None)
    one = artifacts.choose(registry, "mnist", 1, SCRIPT, None)
    assert one == ArtifactChoice(1, new=True) and one.label() == "1"
    artifacts.write(registry, "mnist", 1, one, SCRIPT)

    # unchanged serving keeps its artifact
    assert artifacts.choose(registry, "mnist", 1, SCRIPT, 1) == ArtifactChoice(1, new=False)
    # the same script given another way is the same script
    assert artifacts.choose(registry, "mnist", 1, "./" + SCRIPT, 1) == ArtifactChoice(1, False)

    # a changed script gets the next number
    (registry.root / SCRIPT).write_text("def preprocess(x):\n    return 2 * x\n")
    two = artifacts.choose(registry, "mnist", 1, SCRIPT, 1)
    assert two == ArtifactChoice(2, new=True)
    artifacts.write(registry, "mnist", 1, two, SCRIPT)
    assert artifacts.choose(registry, "mnist", 1, SCRIPT, 2) == ArtifactChoice(2, new=False)

    # another serving with a transformer, even the same script, gets its own number
    assert artifacts.choose(registry, "mnist", 1, SCRIPT, None) == ArtifactChoice(3, new=True)
    # and a live MODEL-ONLY serving that gains a transformer does too
    assert artifacts.choose(registry, "mnist", 1, SCRIPT, 0) == ArtifactChoice(3, new=True)


def test_another_script_path_with_the_same_bytes_is_not_the_live_one(registry: Registry) -> None:
    _make(registry, SCRIPT)
    (registry.root / "scripts" / "u.py").write_bytes((registry.root / SCRIPT).read_bytes())
    assert artifacts.choose(registry, "mnist", 1, "scripts/u.py", 1) == ArtifactChoice(2, True)


def test_a_live_number_that_does_not_exist_gets_the_next_one(registry: Registry) -> None:
    assert artifacts.choose(registry, "mnist", 1, SCRIPT, 7) == ArtifactChoice(1, new=True)


def test_a_new_model_version_starts_its_own_numbering(registry: Registry) -> None:
    _make(registry, SCRIPT)
    (registry.root / SCRIPT).write_text("changed = True\n")
    _make(registry, SCRIPT, live=1)
    assert set(artifacts.existing(registry, "mnist", 1)) == {1, 2}

    _version(registry.root, "mnist", 2)
    # the serving moves to version 2: its live artifact 2 belongs to version 1
    choice = artifacts.choose(registry, "mnist", 2, SCRIPT, 2)
    assert choice == ArtifactChoice(1, new=True)
    info = artifacts.write(registry, "mnist", 2, choice, SCRIPT)
    assert (info.number, info.version) == (1, 2)
    assert (info.path / "2" / "saved_model.pb").read_bytes() == b"\x08\x01pb-2"
    assert set(artifacts.existing(registry, "mnist", 1)) == {1, 2}


def _hard_links_work(tmp_path: Path) -> bool:
    (tmp_path / "probe").write_bytes(b"x")
    try:
        os.link(tmp_path / "probe", tmp_path / "probe-link")
    except OSError:
        return False
    return True


def test_layout_of_an_artifact_with_transformer(tmp_path: Path, registry: Registry) -> None:
    info = _make(registry, SCRIPT)
    version_dir = registry.root / "Models" / "mnist" / "1"
    pb = info.path / "1" / "saved_model.pb"
    assert pb.read_bytes() == b"\x08\x01pb-1"
    assert (info.path / "1" / "variables" / "variables.index").read_bytes() == b"index"
    assert (info.path / "transformer" / "t.py").read_text() == (registry.root / SCRIPT).read_text()
    assert sorted(p.name for p in info.path.iterdir()) == ["1", "ARTIFACT.json", "transformer"]
    # the version's own Artifacts/ is not copied into the artifact
    assert sorted(p.name for p in (info.path / "1").iterdir()) == ["saved_model.pb", "variables"]
    assert not any(p.is_symlink() for p in info.path.rglob("*"))
    if _hard_links_work(tmp_path):
        assert pb.stat().st_ino == (version_dir / "saved_model.pb").stat().st_ino
    # the script is copied, not linked: editing it in place must not change the artifact
    assert (info.path / "transformer" / "t.py").stat().st_ino != (
        registry.root / SCRIPT
    ).stat().st_ino

    manifest = json.loads((info.path / "ARTIFACT.json").read_text())
    assert manifest == {
        "artifact": 1,
        "model": "mnist",
        "version": 1,
        "script": SCRIPT,
        "scriptSha256": artifacts.script_digest(registry, SCRIPT),
    }
    assert len(manifest["scriptSha256"]) == 64


def test_layout_of_model_only(registry: Registry) -> None:
    info = _make(registry, None)
    assert sorted(p.name for p in info.path.iterdir()) == ["1", "ARTIFACT.json"]
    manifest = json.loads((info.path / "ARTIFACT.json").read_text())
    assert manifest == {"artifact": 0, "model": "mnist", "version": 1,
                        "script": None, "scriptSha256": None}


def test_files_are_copied_when_hard_links_fail(
    monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    info = _make(registry, None)
    pb = info.path / "1" / "saved_model.pb"
    assert pb.read_bytes() == b"\x08\x01pb-1"
    assert pb.stat().st_ino != (registry.root / "Models/mnist/1/saved_model.pb").stat().st_ino


def test_symlinks_in_the_version_become_real_files(registry: Registry) -> None:
    (registry.root / "shared").mkdir()
    (registry.root / "shared" / "vocab.txt").write_text("a b c")
    os.symlink(registry.root / "shared", registry.root / "Models/mnist/1/assets")
    info = _make(registry, None)
    assets = info.path / "1" / "assets"
    assert not assets.is_symlink() and (assets / "vocab.txt").read_text() == "a b c"


def test_a_version_symlink_leaving_the_root_is_refused(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", registry.root / "Models/mnist/1/assets.txt")
    with pytest.raises(RegistryError, match="outside the registry root"):
        _make(registry, None)
    assert _hidden(registry) == [] and not (_artifacts(registry) / "0").exists()


def test_a_successful_write_leaves_no_temporary_directory(registry: Registry) -> None:
    _make(registry, None)
    _make(registry, SCRIPT)
    assert sorted(p.name for p in _artifacts(registry).iterdir()) == ["0", "1"]


def test_a_failed_write_leaves_neither_the_artifact_nor_a_temporary_directory(
    monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    def crash(src: object, dst: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _make(registry, SCRIPT)
    assert list(_artifacts(registry).iterdir()) == []
    monkeypatch.undo()
    assert artifacts.choose(registry, "mnist", 1, SCRIPT, None) == ArtifactChoice(1, new=True)


def test_the_final_name_appears_only_with_the_manifest(
    monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    seen: list[tuple[str, bool]] = []
    rename = os.rename

    def watching(src: str | Path, dst: str | Path) -> None:
        src = Path(src)
        seen.append((src.name, (src / "ARTIFACT.json").is_file()))
        assert not Path(dst).exists()
        rename(src, dst)

    monkeypatch.setattr(os, "rename", watching)
    _make(registry, SCRIPT)
    assert len(seen) == 1
    name, complete = seen[0]
    assert name.startswith(".tmp-1-") and complete


def test_write_is_idempotent(registry: Registry) -> None:
    choice = artifacts.choose(registry, "mnist", 1, SCRIPT, None)
    first = artifacts.write(registry, "mnist", 1, choice, SCRIPT)
    before = (first.path / "ARTIFACT.json").stat()
    again = artifacts.write(registry, "mnist", 1, choice, SCRIPT)
    assert again == first
    after = (first.path / "ARTIFACT.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in _artifacts(registry).iterdir()) == ["1"]


def test_conflicting_content_is_refused_and_left_alone(registry: Registry) -> None:
    choice = artifacts.choose(registry, "mnist", 1, SCRIPT, None)
    info = artifacts.write(registry, "mnist", 1, choice, SCRIPT)
    (registry.root / SCRIPT).write_text("something else\n")
    with pytest.raises(RegistryError, match="exists with other content"):
        artifacts.write(registry, "mnist", 1, choice, SCRIPT)
    assert (info.path / "transformer" / "t.py").read_text() == "def preprocess(x):\n    return x\n"


def test_a_junk_directory_under_the_number_is_refused(registry: Registry) -> None:
    (_artifacts(registry) / "1" / "half").mkdir(parents=True)
    with pytest.raises(RegistryError, match="not a complete artifact"):
        artifacts.write(registry, "mnist", 1, ArtifactChoice(1, new=True), SCRIPT)
    assert [p.name for p in (_artifacts(registry) / "1").iterdir()] == ["half"]


def test_a_planned_existing_artifact_that_is_gone_is_refused(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="planned as existing"):
        artifacts.write(registry, "mnist", 1, ArtifactChoice(0, new=False), None)


def test_script_and_number_must_agree(registry: Registry) -> None:
    with pytest.raises(ValueError, match="MODEL-ONLY"):
        artifacts.write(registry, "mnist", 1, ArtifactChoice(0, new=True), SCRIPT)
    with pytest.raises(ValueError, match="MODEL-ONLY"):
        artifacts.write(registry, "mnist", 1, ArtifactChoice(1, new=True), None)


def test_writing_for_a_broken_version_is_refused(registry: Registry) -> None:
    (registry.root / "Models/mnist/3").mkdir()
    with pytest.raises(RegistryError, match="version 3 lacks saved_model.pb"):
        artifacts.write(registry, "mnist", 3, ArtifactChoice(0, new=True), None)


def test_unused_and_remove(registry: Registry) -> None:
    _make(registry, None)
    _make(registry, SCRIPT)
    _make(registry, SCRIPT)  # live None: a second transformer serving gets 2
    assert [i.number for i in artifacts.unused(registry, "mnist", 1, {1})] == [0, 2]
    assert [i.number for i in artifacts.unused(registry, "mnist", 1, {0, 1, 2})] == []
    assert [i.number for i in artifacts.unused(registry, "mnist", 1, set())] == [0, 1, 2]

    for info in artifacts.unused(registry, "mnist", 1, {1}):
        artifacts.remove(info)
    assert set(artifacts.existing(registry, "mnist", 1)) == {1}
    assert sorted(p.name for p in _artifacts(registry).iterdir()) == ["1"]
    # the version's files survive the removal of their hard links
    assert (registry.root / "Models/mnist/1/saved_model.pb").read_bytes() == b"\x08\x01pb-1"
    assert registry.valid_versions("mnist") == [1]


def test_remove_of_a_gone_artifact_does_nothing(registry: Registry) -> None:
    info = _make(registry, None)
    artifacts.remove(info)
    artifacts.remove(info)
    assert not info.path.exists()


def test_remove_refuses_what_is_not_an_artifact(registry: Registry) -> None:
    version_dir = (registry.root / "Models/mnist/1").resolve()
    with pytest.raises(RegistryError, match="not an artifact directory"):
        artifacts.remove(ArtifactInfo(1, "mnist", 1, None, None, version_dir))
    junk = _artifacts(registry) / "4"
    junk.mkdir(parents=True)
    with pytest.raises(RegistryError, match="not a complete artifact"):
        artifacts.remove(ArtifactInfo(4, "mnist", 1, SCRIPT, "0" * 64, junk))
    assert junk.is_dir() and (version_dir / "saved_model.pb").is_file()


@pytest.mark.parametrize("script", ["../t.py", "scripts/../../t.py", "/etc/passwd"])
def test_script_paths_that_escape_are_refused(registry: Registry, script: str) -> None:
    with pytest.raises(RegistryError, match="must"):
        artifacts.script_digest(registry, script)
    with pytest.raises(RegistryError, match="must"):
        artifacts.choose(registry, "mnist", 1, script, None)
    with pytest.raises(RegistryError, match="must"):
        artifacts.write(registry, "mnist", 1, ArtifactChoice(1, new=True), script)
    assert not _artifacts(registry).exists()


def test_a_script_symlink_leaving_the_root_is_refused(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "evil.py").write_text("x")
    os.symlink(tmp_path / "evil.py", registry.root / "scripts" / "evil.py")
    with pytest.raises(RegistryError, match="outside the registry root"):
        artifacts.script_digest(registry, "scripts/evil.py")


def test_a_missing_script_is_refused(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="not a file"):
        artifacts.choose(registry, "mnist", 1, "scripts/none.py", None)


def test_script_digest_is_the_sha256_of_the_bytes(registry: Registry) -> None:
    import hashlib

    expected = hashlib.sha256((registry.root / SCRIPT).read_bytes()).hexdigest()
    assert artifacts.script_digest(registry, SCRIPT) == expected


def test_an_artifacts_symlink_leaving_the_root_is_refused(
    tmp_path: Path, registry: Registry
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, _artifacts(registry))
    with pytest.raises(RegistryError, match="outside the registry root"):
        artifacts.existing(registry, "mnist", 1)
    with pytest.raises(RegistryError, match="outside the registry root"):
        artifacts.choose(registry, "mnist", 1, None, None)
    with pytest.raises(RegistryError, match="outside the registry root"):
        artifacts.write(registry, "mnist", 1, ArtifactChoice(0, new=True), None)
    assert list(outside.iterdir()) == []


def test_an_artifact_symlink_leaving_the_root_is_refused(
    tmp_path: Path, registry: Registry
) -> None:
    info = _make(registry, None)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, _artifacts(registry) / "5")
    with pytest.raises(RegistryError, match="outside the registry root"):
        artifacts.existing(registry, "mnist", 1)
    assert info.path.is_dir()


def test_temporary_and_junk_entries_are_ignored(registry: Registry) -> None:
    real = _make(registry, SCRIPT)
    base = _artifacts(registry)
    (base / ".tmp-2-0a1b2c").mkdir()
    (base / ".rm-3-0a1b2c").mkdir()
    (base / "notes").mkdir()
    (base / "007").mkdir()
    (base / "4").mkdir()  # no ARTIFACT.json: half-built by hand
    (base / "5").mkdir()
    (base / "5" / "ARTIFACT.json").write_text("{not json")
    (base / "6").write_text("a file")
    (base / "8").mkdir()  # a manifest for another number
    (base / "8" / "ARTIFACT.json").write_text((real.path / "ARTIFACT.json").read_text())
    assert artifacts.existing(registry, "mnist", 1) == {1: real}
    # a number taken by junk is never handed out again: the rename onto it would fail
    assert artifacts.choose(registry, "mnist", 1, SCRIPT, None) == ArtifactChoice(9, new=True)
    assert artifacts.choose(registry, "mnist", 1, SCRIPT, 1) == ArtifactChoice(1, new=False)


def test_relative_path(registry: Registry) -> None:
    assert artifacts.relative_path(registry, "mnist", 1, 0) == "Models/mnist/1/Artifacts/0"
    assert artifacts.relative_path(registry, "mnist", 12, 3) == "Models/mnist/12/Artifacts/3"
    info = _make(registry, None)
    assert info.path == (registry.root / artifacts.relative_path(registry, "mnist", 1, 0)).resolve()
    with pytest.raises(RegistryError, match="not a plain directory name"):
        artifacts.relative_path(registry, "../mnist", 1, 0)


def test_existing_of_a_version_without_artifacts_is_empty(registry: Registry) -> None:
    assert artifacts.existing(registry, "mnist", 1) == {}
    with pytest.raises(RegistryError, match="not in the registry"):
        artifacts.existing(registry, "resnet", 1)


def test_a_crash_during_remove_leaves_nothing_under_the_number(
    monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    info = _make(registry, SCRIPT)

    def crash(path: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", crash)
    with pytest.raises(KeyboardInterrupt):
        artifacts.remove(info)
    assert not info.path.exists()
    assert [p.name.startswith(".rm-1-") for p in _artifacts(registry).iterdir()] == [True]
    assert artifacts.existing(registry, "mnist", 1) == {}


def test_a_writer_that_loses_the_race_to_the_same_artifact_returns_it(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two servings of one model version applied in parallel both write MODEL-ONLY: the one
    whose first look found nothing must take the other's complete artifact, not fail."""
    real = artifacts.existing
    calls = []

    def stale_first(reg: Registry, model: str, version: int) -> dict[int, ArtifactInfo]:
        calls.append(1)
        if len(calls) == 1:  # the competitor completes between our look and our check
            monkeypatch.setattr(artifacts, "existing", real)
            artifacts.write(reg, model, version, ArtifactChoice(MODEL_ONLY, True), None)
            monkeypatch.setattr(artifacts, "existing", stale_first)
            return {}
        return real(reg, model, version)

    monkeypatch.setattr(artifacts, "existing", stale_first)
    info = artifacts.write(registry, "mnist", 1, ArtifactChoice(MODEL_ONLY, True), None)
    assert info.number == MODEL_ONLY and (info.path / "ARTIFACT.json").is_file()
    assert len(calls) >= 2
    assert sorted(p.name for p in info.path.parent.iterdir()) == ["0"]  # no temp dir left
