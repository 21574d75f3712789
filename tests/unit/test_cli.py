"""The command line as a user meets it: help, flags anywhere, output paths, the schema command,
and one `declserve: error:` line for every failure, never a traceback without --debug.

Commands that need a backend run against `WorkspaceDouble`, a stand-in for the workspace
(`commands.Workspace`) that plans nothing and holds an in-memory lock; it is the only double.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from declserve import commands, schemas
from declserve.cli import build_parser, main
from declserve.errors import DeclserveError, InputError, Problem
from declserve.lock import LockHeld, LockInfo
from declserve.plan import Plan

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "tests" / "data" / "registry"
PREFIX = "declserve: error: "


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "declserve.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def unreachable_project(directory: Path) -> Path:
    """A valid project whose Docker engine does not exist: contacting it is an error."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "declserve.yaml").write_text(
        "apiVersion: declserve.io/v1\nkind: Project\nmetadata: {name: p}\n"
        f"spec:\n  registry: {REGISTRY}\n"
        f"  backend: {{type: docker, baseUrl: 'unix://{directory}/no.sock'}}\n"
    )
    (directory / "s.yaml").write_text(
        "apiVersion: declserve.io/v1\nkind: Serving\nmetadata: {name: a}\n"
        "spec:\n  model: {name: mnist, version: 1}\n"
    )
    return directory


class LockDouble:
    def __init__(self, holder: LockInfo | None) -> None:
        self.holder = holder
        self.unlocked: list[str] = []

    def read_lock(self) -> LockInfo | None:
        return self.holder

    def unlock(self, lock_id: str) -> bool:
        self.unlocked.append(lock_id)
        return True


class WorkspaceDouble:
    """Plans nothing; records the directory it was opened on."""

    opened: list[Path] = []
    backend = LockDouble(None)

    def __init__(self) -> None:
        self.desired: dict[str, Any] = {}

    @classmethod
    def open(cls, directory: Path) -> WorkspaceDouble:
        cls.opened.append(directory)
        return cls()

    def observe(self) -> object:
        return object()

    def plan(self, live: object, **options: Any) -> Plan:
        return Plan("p", "docker:test", (), "sha256:0")


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> type[WorkspaceDouble]:
    WorkspaceDouble.opened = []
    WorkspaceDouble.backend = LockDouble(None)
    monkeypatch.setattr(commands, "Workspace", WorkspaceDouble)
    return WorkspaceDouble


# ---- help and flags ---------------------------------------------------------------------------


def test_help_describes_the_tool_not_its_code() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "`declserve plan` shows what would change" in result.stdout
    assert "Exit codes: 0 success or no changes, 1 error, 2 changes present" in result.stdout
    assert "dispatch" not in result.stdout and "`commands`" not in result.stdout


@pytest.mark.parametrize(
    "argv, debug",
    [
        (["plan"], False),
        (["--debug", "plan"], True),
        (["plan", "--debug"], True),
        (["plan", "-C", "x", "--debug"], True),
        (["schema", "--debug"], True),
        (["--debug", "validate", "--json"], True),
    ],
)
def test_debug_is_accepted_before_or_after_the_subcommand(argv: list[str], debug: bool) -> None:
    assert build_parser().parse_args(argv).debug is debug


@pytest.mark.parametrize("flag", ["1h30m", "90s", "1.5m", "45", "0"])
def test_lock_timeout_takes_go_durations(flag: str) -> None:
    seconds = {"1h30m": 5400.0, "90s": 90.0, "1.5m": 90.0, "45": 45.0, "0": 0.0}[flag]
    for command in (["apply"], ["destroy"], ["plan", "--lock"], ["import", "x"]):
        assert build_parser().parse_args([*command, "--lock-timeout", flag]).lock_timeout == seconds


def test_a_bad_duration_is_one_error_line() -> None:
    result = run("apply", "--lock-timeout", "1h30")
    assert result.returncode == 1
    assert result.stderr.startswith(PREFIX) and result.stderr.count("\n") == 1
    assert "'1h30' is not a duration such as 30s, 5m, 1h30m" in result.stderr


# ---- output paths -----------------------------------------------------------------------------


def test_plan_out_into_a_missing_directory_is_refused_before_planning(tmp_path: Path) -> None:
    project = unreachable_project(tmp_path / "p")
    result = run("plan", "-C", str(project), "--out", "missing/plan.json", cwd=tmp_path)
    assert result.returncode == 1
    # the Docker engine is unreachable: had the plan been made first, this would say so
    assert result.stderr == (
        f"{PREFIX}--out: cannot save the plan to 'missing/plan.json': "
        "the directory 'missing' does not exist\n"
    )


def test_plan_out_onto_a_directory_is_refused(tmp_path: Path) -> None:
    project = unreachable_project(tmp_path / "p")
    result = run("plan", "-C", str(project), "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == f"{PREFIX}--out: {str(tmp_path)!r} is a directory, not a file name\n"


class ManifestBackend(LockDouble):
    """A backend that applies whole documents: two per serving (the serving stands for itself)."""

    def manifests(self, desired: Any, /) -> dict[str, dict[str, Any]]:
        return {kind: {"kind": kind, "metadata": {"name": desired, "labels": {"a": "1"}}}
                for kind in ("Deployment", "Service")}


class ManifestWorkspace(WorkspaceDouble):
    backend = ManifestBackend(None)

    def __init__(self) -> None:
        self.desired = {"b": "b", "a": "a"}


@pytest.fixture
def manifest_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "Workspace", ManifestWorkspace)


@pytest.mark.usefixtures("manifest_workspace")
def test_plan_manifests_writes_one_file_per_object_of_every_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "manifests"
    assert main(["plan", "--manifests", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["a.deployment.yaml", "a.service.yaml", "b.deployment.yaml",
                     "b.service.yaml"]
    import yaml

    assert yaml.safe_load((out / "b.service.yaml").read_text()) == {
        "kind": "Service", "metadata": {"name": "b", "labels": {"a": "1"}}}
    assert capsys.readouterr().err == f"Wrote 4 manifests of 2 servings to {out}\n"


@pytest.mark.usefixtures("manifest_workspace")
def test_plan_manifests_with_a_target_writes_that_serving_only(tmp_path: Path) -> None:
    assert main(["plan", "--manifests", str(tmp_path / "m"), "--target", "b"]) == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "b.deployment.yaml", "b.service.yaml"]


def test_plan_manifests_on_a_backend_without_them_is_one_sentence(
    workspace: type[WorkspaceDouble],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from types import SimpleNamespace

    backend = SimpleNamespace(type="docker")
    project = SimpleNamespace(project=SimpleNamespace(spec=SimpleNamespace(backend=backend)))
    monkeypatch.setattr(workspace, "project", project, raising=False)
    assert main(["plan", "--manifests", str(tmp_path / "m")]) == 1
    assert capsys.readouterr().err == (
        f"{PREFIX}--manifests: the docker backend does not apply manifests, so it has none to "
        "write\n")
    assert not (tmp_path / "m").exists()


def test_plan_manifests_into_a_directory_with_files_is_refused_before_planning(
    tmp_path: Path,
) -> None:
    project = unreachable_project(tmp_path / "p")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "old.yaml").write_text("kind: Service\n")
    result = run("plan", "-C", str(project), "--manifests", str(tmp_path / "m"))
    assert result.returncode == 1
    # the Docker engine is unreachable: had the plan been made first, this would say so
    assert result.stderr == (
        f"{PREFIX}--manifests: the directory {str(tmp_path / 'm')!r} is not empty; give a new "
        "or empty one, so that it holds this plan's manifests only\n")


def test_schema_write_into_a_missing_directory_is_one_sentence(tmp_path: Path) -> None:
    result = run("schema", "--write", str(tmp_path / "nope"))
    assert result.returncode == 1
    missing = str(tmp_path / "nope")
    assert result.stderr == f"{PREFIX}--write: the directory {missing!r} does not exist\n"
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("directory", ["my project", "-odd"])
def test_the_saved_plan_hint_is_a_command_that_works_from_here(
    directory: str,
    workspace: type[WorkspaceDouble],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / directory).mkdir()
    (tmp_path / "out dir").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["plan", f"-C{directory}", "--out", "out dir/plan.json"]) == 0
    hint = capsys.readouterr().err.strip().split("apply exactly it with: ", 1)[1]
    words = shlex.split(hint)
    assert words[0] == "declserve"
    args = build_parser().parse_args(words[1:])
    assert args.command == "apply"
    assert Path(args.directory).resolve() == (tmp_path / directory).resolve()
    assert Path(args.planfile).resolve() == (tmp_path / "out dir" / "plan.json").resolve()
    assert (tmp_path / "out dir" / "plan.json").is_file()


def test_the_saved_plan_hint_has_no_dash_c_in_the_project(
    workspace: type[WorkspaceDouble],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "--out", "plan.json"]) == 0
    assert capsys.readouterr().err.endswith("apply exactly it with: declserve apply plan.json\n")


# ---- the schema command -----------------------------------------------------------------------


def test_schema_without_a_kind_is_one_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {kind: schemas.schema_for(kind) for kind in ("Plan", "Project", "Serving")}


@pytest.mark.parametrize("spelled", ["Serving", "serving", "SERVING"])
def test_schema_kinds_are_case_insensitive(
    spelled: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", spelled]) == 0
    assert capsys.readouterr().out == schemas.render("Serving")


def test_schema_of_a_kind_with_write_writes_that_kind_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "project", "--write", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["project.schema.json"]
    assert (tmp_path / "project.schema.json").read_text() == schemas.render("Project")
    assert capsys.readouterr().out == f"Wrote {tmp_path / 'project.schema.json'}\n"


def test_schema_write_without_a_kind_writes_every_file(tmp_path: Path) -> None:
    assert main(["schema", "--write", str(tmp_path)]) == 0
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == schemas.all_files()


def test_an_unknown_kind_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "Topic"]) == 1
    assert capsys.readouterr().err == (
        f"{PREFIX}<command line>: KIND: unknown kind 'Topic'; known kinds: Serving, Project, Plan\n"
    )


# ---- errors -----------------------------------------------------------------------------------


def _raising(exc: BaseException) -> Any:
    def command(args: argparse.Namespace) -> int:
        raise exc

    return command


@pytest.mark.parametrize(
    "exc, lines",
    [
        (
            InputError(
                [
                    Problem("a.yaml", 3, 5, "spec.tool", "must be 'default' or 'kserve'"),
                    Problem("b.yaml", 1, 1, "", "the file holds no YAML document"),
                ]
            ),
            [
                "a.yaml:3:5: spec.tool: must be 'default' or 'kserve'",
                "b.yaml:1:1: the file holds no YAML document",
            ],
        ),
        (
            DeclserveError("cannot reach Kafka at k:1\nis it running?"),
            ["cannot reach Kafka at k:1", "is it running?"],
        ),
        (
            RuntimeError("socket\n  closed"),
            ["internal error: RuntimeError: socket closed (run with --debug for the traceback)"],
        ),
        (KeyError("x"), ["internal error: KeyError: 'x' (run with --debug for the traceback)"]),
        (AssertionError(), ["internal error: AssertionError (run with --debug for the traceback)"]),
    ],
)
def test_every_failure_is_error_lines_and_exit_1(
    exc: BaseException,
    lines: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(commands, "status", _raising(exc))
    assert main(["status"]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [PREFIX + line for line in lines] and out == ""


def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(commands, "status", _raising(RuntimeError("boom")))
    assert main(["status", "--debug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith(f"{PREFIX}internal error: RuntimeError: boom\n")


def test_ctrl_c_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(commands, "status", _raising(KeyboardInterrupt()))
    assert main(["status"]) == 130
    assert capsys.readouterr().err == f"{PREFIX}interrupted\n"


def test_a_missing_project_directory_is_one_error_line(tmp_path: Path) -> None:
    result = run("validate", "-C", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    missing = tmp_path / "nowhere"
    assert result.stderr == f"{PREFIX}{missing}: the project directory does not exist\n"


HOLDER = LockInfo(
    "2b7c-lock", "apply", "ana", "ci-7", 4242, "declserve apply", "2026-01-01T00:00:00+00:00"
)


def test_the_lock_error_names_force_unlock_and_lock_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(commands, "apply", _raising(LockHeld(HOLDER)))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my proj").mkdir()
    assert main(["apply", "-C", "my proj"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"{PREFIX}the project is locked: lock 2b7c-lock held by ana@ci-7 (pid 4242, apply)"
    )
    assert "--lock-timeout" in line
    assert line.endswith("remove the lock with: declserve force-unlock -C 'my proj' 2b7c-lock")


def test_force_unlock_with_a_wrong_id_does_not_reveal_the_right_one(
    workspace: type[WorkspaceDouble], capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.backend = LockDouble(HOLDER)
    assert main(["force-unlock", "guess"]) == 1
    err = capsys.readouterr().err
    assert "2b7c-lock" not in err and workspace.backend.unlocked == []
    assert err == (
        f"{PREFIX}<command line>: ID: 'guess' does not match the id of the lock on "
        "this project (held by ana@ci-7 (pid 4242, apply) since "
        "2026-01-01T00:00:00+00:00: declserve apply); `declserve force-unlock` needs "
        "the id that the lock error shows\n"
    )


def test_force_unlock_with_the_right_id_removes_the_lock(
    workspace: type[WorkspaceDouble], capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.backend = LockDouble(HOLDER)
    assert main(["force-unlock", "2b7c-lock"]) == 0
    assert workspace.backend.unlocked == ["2b7c-lock"]
    assert capsys.readouterr().out.startswith("Removed lock 2b7c-lock held by ana@ci-7")


def test_validate_lists_problems_with_the_error_prefix(tmp_path: Path) -> None:
    project = unreachable_project(tmp_path)
    (project / "t.yaml").write_text("apiVersion: declserve.io/v1\nkind: Serving\n")
    result = run("validate", "-C", str(project))
    assert result.returncode == 1 and result.stdout == ""
    assert (
        result.stderr == f"{PREFIX}{project}/t.yaml:1:1: metadata: is required\n"
        f"{PREFIX}{project}/t.yaml:1:1: spec: is required\n"
    )


def test_the_ci_example_turns_validate_lines_into_annotations(tmp_path: Path) -> None:
    # examples/ci/github/declserve.yml reads `validate`'s stderr with a sed expression; the
    # format changed to carry `declserve: error: `, so the example must follow it
    workflow = (ROOT / "examples" / "ci" / "github" / "declserve.yml").read_text()
    pattern = workflow.split("sed -nE 's/", 1)[1].split("/::error", 1)[0]
    project = unreachable_project(tmp_path)
    (project / "t.yaml").write_text("apiVersion: declserve.io/v1\nkind: Serving\n")
    lines = run("validate", "-C", str(project)).stderr.splitlines()
    assert lines and all(re.match(pattern, line) for line in lines), (pattern, lines)
    assert re.match(pattern, lines[0]).group(1) == f"{project}/t.yaml"  # type: ignore[union-attr]
