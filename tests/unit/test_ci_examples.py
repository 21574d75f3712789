"""The CI recipes in examples/ci/ and .pre-commit-hooks.yaml parse, and every `declserve` command
line in them exists: a real subcommand, flags that subcommand accepts, and arguments the real
parser (`declserve.cli.build_parser()`) takes. A renamed flag breaks this test, not a user's CI.
"""

from __future__ import annotations

import argparse
import io
import re
import shlex
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from declserve.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
GITHUB_FILES = ("github/declserve.yml", "github/drift.yml")
GITLAB_FILE = "gitlab/.gitlab-ci.yml"
# The files hold 13 declserve command lines today; fewer than this means the finder lost some.
MIN_COMMANDS = 12

PLACEHOLDER = "PLACEHOLDER"
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")  # ${{ env.X }}, ${{ secrets.Y }}
_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")  # $VAR, ${VAR}, also inside "..."
_FD_REDIRECT = re.compile(r"(?<!\S)\d+(?=[<>])")  # the 2 of 2> and 2>&1
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<word>[A-Za-z_][A-Za-z0-9_]*)\1")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")
_OPERATOR_CHARS = set("();<>|&")
_KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "time", "{"}
_EXITING_FLAGS = {"-h", "--help", "--version"}


@dataclass(frozen=True)
class Command:
    file: str  # relative to the repository root
    where: str  # the job, step or hook it is in
    line: str  # the shell line as written (continuations joined)
    argv: tuple[str, ...]  # what follows `declserve`, placeholders substituted

    def __str__(self) -> str:
        return f"{self.file} ({self.where}): {self.line}"


# ---- reading the files ----------------------------------------------------------------------


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def ci_files() -> list[Path]:
    found = {p for p in CI.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml")}
    return sorted(found) + [HOOKS]


@cache
def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def github_triggers(doc: dict[Any, Any]) -> Any:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return doc["on"] if "on" in doc else doc.get(True)


def _flatten(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _flatten(item)


def scripts(path: Path) -> Iterator[tuple[str, str]]:
    """(where, shell text) of every shell script in the file, or the hook entries."""
    doc = load(path)
    if path == HOOKS:
        for hook in doc:
            yield f"hook {hook['id']}", hook["entry"]
    elif path.parent.name == "github":
        for job_id, job in doc["jobs"].items():
            for index, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    yield (
                        f"jobs.{job_id}.steps[{index}] {step.get('name', '')}".rstrip(),
                        step["run"],
                    )
    else:  # GitLab: every job and template, and `default:`
        for key, job in doc.items():
            if isinstance(job, dict):
                for section in ("before_script", "script", "after_script"):
                    for text in _flatten(job.get(section)):
                        yield f"{key}.{section}", text


# ---- finding the command lines --------------------------------------------------------------


def logical_lines(text: str) -> list[str]:
    """Shell lines with backslash continuations joined and here-document bodies left out."""
    out: list[str] = []
    pending = ""
    heredoc_end: str | None = None
    for raw in text.splitlines():
        if heredoc_end is not None:
            if raw.strip() == heredoc_end:
                heredoc_end = None
            continue
        stripped = raw.strip()
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        line = (pending + stripped).strip()
        pending = ""
        match = _HEREDOC.search(line)
        if match:
            heredoc_end = match.group("word")
        if line:
            out.append(line)
    if pending.strip():
        out.append(pending.strip())
    return out


def substitute(line: str) -> str:
    return _VARIABLE.sub(PLACEHOLDER, _EXPRESSION.sub(PLACEHOLDER, line))


def shell_tokens(line: str) -> list[str]:
    lexer = shlex.shlex(_FD_REDIRECT.sub("", substitute(line)), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _is_operator(token: str) -> bool:
    return bool(token) and set(token) <= _OPERATOR_CHARS


def declserve_argvs(line: str) -> list[list[str]]:
    """The argument lists of the `declserve` commands on one shell line (command position only:
    `pip install declserve` or `echo "declserve plan"` are not commands)."""
    try:
        tokens = shell_tokens(line)
    except ValueError as exc:
        if re.search(r"\bdeclserve\b", line):
            raise AssertionError(f"cannot split this shell line: {line!r}: {exc}") from exc
        return []
    found: list[list[str]] = []
    at_start = True
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if _is_operator(token):
            at_start = True
        elif at_start and (token in _KEYWORDS or _ASSIGNMENT.fullmatch(token)):
            pass  # `if`, `!`, `VAR=value` before the command
        elif at_start and token == "declserve":
            end = i + 1
            while end < len(tokens) and not _is_operator(tokens[end]):
                end += 1
            found.append(tokens[i + 1 : end])
            i = end
            continue
        else:
            at_start = False
        i += 1
    return found


@cache
def commands() -> tuple[Command, ...]:
    out = []
    for path in ci_files():
        for where, text in scripts(path):
            for line in logical_lines(text):
                for argv in declserve_argvs(line):
                    out.append(Command(_rel(path), where, line, tuple(argv)))
    return tuple(out)


# ---- checking one command line --------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _flag_name(token: str) -> str:
    if token.startswith("--"):
        return token.split("=", 1)[0]
    return token[:2]  # -C, also -Cdir


def parse(argv: list[str] | tuple[str, ...]) -> tuple[argparse.Namespace | None, str | None]:
    """The real parser's namespace, or its refusal (its error() exits with SystemExit(1))."""
    err = io.StringIO()
    try:
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            return build_parser().parse_args(list(argv)), None
    except SystemExit as exc:
        if exc.code in (0, None) and _EXITING_FLAGS & set(argv):
            return None, None
        return None, f"the parser exits {exc.code}: {err.getvalue().strip() or '(no message)'}"


def problems(argv: list[str] | tuple[str, ...]) -> list[str]:
    """What is wrong with `declserve ARGV`; empty when the command exists as written."""
    parser = build_parser()
    subparsers = _subparsers(parser)
    found: list[str] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-"):  # global options (none takes a value)
        if argv[i] not in parser._option_string_actions:
            found.append(f"{argv[i]} is not an option of declserve")
        i += 1
    if i == len(argv):
        if not _EXITING_FLAGS & set(argv):
            found.append("no subcommand")
    elif argv[i] not in subparsers:
        found.append(f"{argv[i]!r} is not a subcommand (known: {', '.join(subparsers)})")
    else:
        name, sub = argv[i], subparsers[argv[i]]
        for token in argv[i + 1 :]:
            if token == "--":
                break
            if token.startswith("-") and token != "-" and not re.fullmatch(r"-\d+(\.\d+)?", token):
                if _flag_name(token) not in sub._option_string_actions:
                    found.append(f"{_flag_name(token)} is not a flag of `declserve {name}`")
    refusal = parse(argv)[1]
    if refusal:
        found.append(refusal)
    return found


# ---- the tests ------------------------------------------------------------------------------


def test_the_ci_files_parse() -> None:
    names = {_rel(p) for p in ci_files()}
    for name in (*GITHUB_FILES, GITLAB_FILE):
        assert f"examples/ci/{name}" in names, f"examples/ci/{name} is missing"
    assert ".pre-commit-hooks.yaml" in names
    for path in ci_files():
        doc = load(path)
        assert doc, f"{_rel(path)} is empty"
    for name in GITHUB_FILES:
        doc = load(CI / name)
        assert github_triggers(doc), f"{name}: no `on:` triggers"
        assert doc["jobs"], f"{name}: no jobs"
        for job_id, job in doc["jobs"].items():
            assert job.get("runs-on") and job.get("steps"), (
                f"{name}: job {job_id} lacks runs-on or steps"
            )
    gitlab = load(CI / GITLAB_FILE)
    jobs = [
        k
        for k, v in gitlab.items()
        if isinstance(v, dict) and "script" in v and not k.startswith(".")
    ]
    assert len(jobs) >= 3, jobs


def test_enough_command_lines_are_found_in_every_file() -> None:
    found = commands()
    assert len(found) >= MIN_COMMANDS, "\n".join(map(str, found))
    per_file = {c.file for c in found}
    for name in (*GITHUB_FILES, GITLAB_FILE):
        assert f"examples/ci/{name}" in per_file, (
            f"no declserve command found in examples/ci/{name}"
        )
    assert ".pre-commit-hooks.yaml" in per_file
    used = {c.argv[0] for c in found if c.argv and not c.argv[0].startswith("-")}
    assert {"validate", "plan", "apply"} <= used, used


@pytest.mark.parametrize(
    "command", commands(), ids=lambda c: f"{Path(c.file).name}:{c.where}:{' '.join(c.argv[:1])}"
)
def test_every_declserve_command_line_exists(command: Command) -> None:
    found = problems(command.argv)
    assert not found, f"{command}\n  " + "\n  ".join(found)


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--no-such-flag"],
        ["aply", "plan.json"],
        ["validate", "--markdown"],  # a flag of another subcommand
        ["plan", "--json", "--markdown"],  # mutually exclusive
        ["apply", "--lock-timeout", "soon", "plan.json"],  # not a duration
        ["--verbose", "plan"],
        [],
    ],
)
def test_the_checker_refuses_commands_that_do_not_exist(argv: list[str]) -> None:
    assert problems(argv), argv


def test_the_finder_reads_shell_as_a_shell_does() -> None:
    text = (
        "code=0\n"
        'declserve plan -C "$DECLSERVE_PROJECT" --markdown --out "${{ env.DIR }}/plan.json" \\\n'
        "  --detailed-exitcode > plan.md 2>&1 || code=$?\n"
        'echo "declserve plan failed"; pip install declserve\n'
        "python3 - <<'PY'\n"
        "declserve apply --bogus\n"
        "PY\n"
        "if ! declserve validate -C x; then exit 1; fi\n"
    )
    argvs = [a for line in logical_lines(text) for a in declserve_argvs(line)]
    assert argvs == [
        [
            "plan",
            "-C",
            PLACEHOLDER,
            "--markdown",
            "--out",
            f"{PLACEHOLDER}/plan.json",
            "--detailed-exitcode",
        ],
        ["validate", "-C", "x"],
    ]


def test_ci_applies_only_saved_plans_with_a_lock_timeout() -> None:
    applies = [c for c in commands() if c.argv[:1] == ("apply",)]
    assert {c.file for c in applies} >= {
        "examples/ci/github/declserve.yml",
        f"examples/ci/{GITLAB_FILE}",
    }
    for c in applies:
        args, _ = parse(c.argv)
        assert args is not None and args.planfile, f"apply of a fresh plan, not a saved one: {c}"
        assert args.lock_timeout > 0, f"apply without --lock-timeout: {c}"
    saves = [c for c in commands() if c.argv[:1] == ("plan",) and "--out" in c.argv]
    assert {c.file for c in saves} >= {
        "examples/ci/github/declserve.yml",
        f"examples/ci/{GITLAB_FILE}",
    }
    for c in saves:
        assert "--markdown" in c.argv, f"the saved plan is not the one shown in the review: {c}"


def test_detailed_exit_codes_survive_set_e() -> None:
    """`bash -e` ends a script on exit 2 unless the command is part of `||`."""
    detailed = [c for c in commands() if "--detailed-exitcode" in c.argv]
    files = {c.file for c in detailed}
    assert {"examples/ci/github/drift.yml", f"examples/ci/{GITLAB_FILE}"} <= files
    for c in detailed:
        after = c.line.split("declserve", 1)[1]
        assert re.search(r"\|\|\s*code=\$\?", after), f"exit 2 would end the script: {c}"


def test_github_workflows_run_one_at_a_time() -> None:
    for name in GITHUB_FILES:
        doc = load(CI / name)
        if "concurrency" in doc:
            continue
        for job_id, job in doc["jobs"].items():
            assert "concurrency" in job, (
                f"{name}: neither the workflow nor job {job_id} has concurrency"
            )
    main = load(CI / "github/declserve.yml")
    triggers = github_triggers(main)
    assert "pull_request" in triggers and "push" in triggers
    apply_job = next(
        j
        for j in main["jobs"].values()
        if any("declserve apply" in s.get("run", "") for s in j["steps"])
    )
    assert apply_job["concurrency"]["cancel-in-progress"] is False
    uses = [s.get("uses", "") for j in main["jobs"].values() for s in j["steps"]]
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    assert any(u.startswith("actions/download-artifact@") for u in uses)
    assert "schedule" in github_triggers(load(CI / "github/drift.yml"))


def test_gitlab_apply_holds_a_resource_group_and_drift_runs_on_schedule() -> None:
    doc = load(CI / GITLAB_FILE)
    jobs = {k: v for k, v in doc.items() if isinstance(v, dict) and "script" in v}

    def runs(job: dict[str, Any], sub: str, flag: str = "") -> bool:
        return any(
            argv[:1] == [sub] and (not flag or flag in argv)
            for text in _flatten(job["script"])
            for line in logical_lines(text)
            for argv in declserve_argvs(line)
        )

    apply_jobs = [k for k, v in jobs.items() if runs(v, "apply")]
    assert apply_jobs
    for name in apply_jobs:
        assert jobs[name].get("resource_group"), f"{name} has no resource_group"
    scheduled = [
        k
        for k, v in jobs.items()
        if any(
            '$CI_PIPELINE_SOURCE == "schedule"' in str(rule.get("if", ""))
            for rule in v.get("rules", [])
        )
    ]
    assert scheduled and all(runs(jobs[k], "plan", "--detailed-exitcode") for k in scheduled), (
        scheduled
    )


def test_pre_commit_hook() -> None:
    hooks = {h["id"]: h for h in load(HOOKS)}
    hook = hooks["declserve-validate"]
    assert hook["entry"] == "declserve validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    assert files.search("servings/mnist.yaml") and files.search("declserve.yml")
    assert not files.search("model.py")


def test_the_commands_in_the_readme_exist() -> None:
    """The README shows command lines too (its CI section among them); they must exist as well."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S)
    consoles = re.findall(r"```console\n(.*?)```", text, re.S)  # only the typed lines
    blocks += [
        "\n".join(line[2:] for line in c.splitlines() if line.startswith("$ ")) for c in consoles
    ]
    argvs = [
        argv for block in blocks for line in logical_lines(block) for argv in declserve_argvs(line)
    ]
    assert len(argvs) >= 3, argvs
    for argv in argvs:
        assert not problems(argv), f"README.md: declserve {' '.join(argv)}: {problems(argv)}"
