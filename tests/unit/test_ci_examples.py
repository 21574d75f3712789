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
# (plan and apply on merge, nightly drift) for each backend's example project
GITHUB_PAIRS = {
    "docker": ("github/declserve.yml", "github/drift.yml"),
    "kubernetes": ("github/declserve-kubernetes.yml", "github/drift-kubernetes.yml"),
}
GITHUB_FILES = tuple(name for pair in GITHUB_PAIRS.values() for name in pair)
GITLAB_FILE = "gitlab/.gitlab-ci.yml"
# The files hold 26 declserve command lines today; fewer than this means the finder lost some.
MIN_COMMANDS = 26

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
    mains = {f"examples/ci/{main}" for main, _ in GITHUB_PAIRS.values()}
    applies = [c for c in commands() if c.argv[:1] == ("apply",)]
    assert {c.file for c in applies} >= {*mains, f"examples/ci/{GITLAB_FILE}"}
    for c in applies:
        args, _ = parse(c.argv)
        assert args is not None and args.planfile, f"apply of a fresh plan, not a saved one: {c}"
        assert args.lock_timeout > 0, f"apply without --lock-timeout: {c}"
    saves = [c for c in commands() if c.argv[:1] == ("plan",) and "--out" in c.argv]
    assert {c.file for c in saves} >= {*mains, f"examples/ci/{GITLAB_FILE}"}
    for c in saves:
        assert "--markdown" in c.argv, f"the saved plan is not the one shown in the review: {c}"


def test_detailed_exit_codes_survive_set_e() -> None:
    """`bash -e` ends a script on exit 2 unless the command is part of `||`."""
    detailed = [c for c in commands() if "--detailed-exitcode" in c.argv]
    files = {c.file for c in detailed}
    drifts = {f"examples/ci/{drift}" for _, drift in GITHUB_PAIRS.values()}
    assert {*drifts, f"examples/ci/{GITLAB_FILE}"} <= files
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
    apply_groups = set()
    for main_name, drift_name in GITHUB_PAIRS.values():
        main = load(CI / main_name)
        triggers = github_triggers(main)
        assert "pull_request" in triggers and "push" in triggers, main_name
        apply_job = next(
            j
            for j in main["jobs"].values()
            if any("declserve apply" in s.get("run", "") for s in j["steps"])
        )
        assert apply_job["concurrency"]["cancel-in-progress"] is False, main_name
        apply_groups.add(apply_job["concurrency"]["group"])
        uses = [s.get("uses", "") for j in main["jobs"].values() for s in j["steps"]]
        assert any(u.startswith("actions/upload-artifact@") for u in uses), main_name
        assert any(u.startswith("actions/download-artifact@") for u in uses), main_name
        assert "schedule" in github_triggers(load(CI / drift_name)), drift_name
    assert len(apply_groups) == len(GITHUB_PAIRS), f"projects share an apply group: {apply_groups}"


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
    assert {"declserve-apply", "declserve-kubernetes-apply"} <= set(apply_jobs), apply_jobs
    for name in apply_jobs:
        assert jobs[name].get("resource_group"), f"{name} has no resource_group"
    groups = {jobs[k]["resource_group"] for k in apply_jobs}
    assert len(groups) == len(apply_jobs), f"projects share a resource group: {groups}"
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


# ---- the kubeconfig is never printed --------------------------------------------------------

# What names the kubeconfig in a shell line: a variable ($KUBECONFIG, $KUBECONFIG_B64,
# $DECLSERVE_KUBECONFIG, $kubeconfig), an expression (${{ secrets.DECLSERVE_KUBECONFIG_B64 }}) or
# the file the GitHub recipes write.
_KUBECONFIG_REF = re.compile(
    r"\$\{\{[^}]*kubeconfig[^}]*\}\}|\$\{?\w*kubeconfig\w*|declserve-kubeconfig", re.I
)
_XTRACE = re.compile(r"\bset\s+(-\w*x|-o\s+xtrace)|\b(ba|z|da)?sh\s+-\w*x\b|\bset\s+-o\s+verbose")
_RAW_VIEW = re.compile(r"\bconfig\s+view\b.*--(raw|flatten)\b|--(raw|flatten)\b.*\bconfig\s+view\b")
_ENV_DUMPS = {
    ("env",),
    ("printenv",),
    ("set",),
    ("export", "-p"),
    ("declare", "-p"),
    ("declare", "-x"),
}
# Commands that never print their arguments or what they read.
_QUIET = {"rm", "test", "[", "[[", "chmod", "export", "umask", "mkdir", "unset", "case"} | {
    "declserve"
}
_SEPARATORS = {";", ";;", "&&", "||", "&", "(", ")", "then", "do", "else", "elif"}
# Where a redirected output is shown to whoever reads the run: the log, the summary, outputs.
_SHOWN = re.compile(r"^(/dev/(stdout|stderr|tty)|\$\{?GITHUB_(STEP_SUMMARY|OUTPUT)\}?)$")
_STDERR_REDIRECT = re.compile(r"(?<!\S)2>(&1|>?\s*\S+)")


def heredoc_bodies(text: str) -> list[str]:
    """The lines of the here-documents in a shell script (what logical_lines leaves out)."""
    out: list[str] = []
    end: str | None = None
    for raw in text.splitlines():
        if end is not None:
            if raw.strip() == end:
                end = None
            else:
                out.append(raw)
            continue
        match = _HEREDOC.search(raw)
        if match:
            end = match.group("word")
    return out


def _pipelines(line: str) -> list[list[list[str]]]:
    """The pipelines of one shell line, each a list of commands (token lists), redirections kept."""
    text = _EXPRESSION.sub(
        lambda m: "$EXPRESSION_KUBECONFIG" if "kubeconfig" in m.group().lower() else PLACEHOLDER,
        line,
    )
    text = re.sub(r"(?<!\S)1>", ">", _STDERR_REDIRECT.sub(" ", text))
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    pipelines: list[list[list[str]]] = [[[]]]
    for token in lexer:
        if token in _SEPARATORS:
            pipelines.append([[]])
        elif token == "|":
            pipelines[-1].append([])
        else:
            pipelines[-1][-1].append(token)
    return [[c for c in p if c] for p in pipelines if any(p)]


def _to_a_file(command: list[str]) -> bool:
    """The command's standard output goes to a file nobody is shown."""
    for i, token in enumerate(command[:-1]):
        if token in (">", ">>", "&>", "&>>"):
            return not _SHOWN.match(command[i + 1])
    return False


def kubeconfig_leaks(text: str) -> list[str]:
    """The lines of a shell script that would show the kubeconfig (or a secret holding it) in the
    run's log or summary, or turn on tracing, which shows every command with its values."""
    found: list[str] = []
    for line in logical_lines(text):
        if _XTRACE.search(line):
            found.append(f"tracing shows every command with its values: {line}")
            continue
        if _RAW_VIEW.search(line):
            found.append(f"prints the credentials: {line}")
            continue
        try:
            pipelines = _pipelines(line)
        except ValueError:
            if _KUBECONFIG_REF.search(line):
                found.append(f"cannot tell whether this prints the kubeconfig: {line}")
            continue
        for pipeline in pipelines:
            carries = False  # kubeconfig material flows through this pipeline's output
            for command in pipeline:
                words = [t for t in command if t not in _KEYWORDS and not _ASSIGNMENT.fullmatch(t)]
                if not words:
                    continue
                if tuple(words) in _ENV_DUMPS:
                    found.append(f"dumps the environment: {line}")
                if words[0] not in _QUIET and any(_KUBECONFIG_REF.search(t) for t in words):
                    carries = True
            if carries and not _to_a_file(pipeline[-1]) and "::add-mask::" not in line:
                found.append(f"prints the kubeconfig or its secret: {line}")
    for line in heredoc_bodies(text):
        if "kubeconfig" in line.lower():
            found.append(f"a here-document script handles the kubeconfig: {line.strip()}")
    return found


def _recipe_texts() -> Iterator[tuple[str, str]]:
    """Every piece of a recipe that runs: shell scripts, and the `with:` inputs of GitHub steps
    (github-script's JavaScript among them)."""
    for path in ci_files():
        for where, text in scripts(path):
            yield f"{_rel(path)} ({where})", text
        if path.parent.name == "github":
            for job_id, job in load(path)["jobs"].items():
                for index, step in enumerate(job.get("steps", [])):
                    for key, value in (step.get("with") or {}).items():
                        yield f"{_rel(path)} (jobs.{job_id}.steps[{index}].with.{key})", str(value)


def test_no_recipe_prints_the_kubeconfig() -> None:
    leaks = []
    for where, text in _recipe_texts():
        leaks += [f"{where}: {leak}" for leak in kubeconfig_leaks(text)]
        if "with." in where and "kubeconfig" in text.lower():
            leaks.append(f"{where}: an action's input handles the kubeconfig")
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize(
    "line",
    [
        'cat "$KUBECONFIG"',
        "cat $RUNNER_TEMP/declserve-kubeconfig",
        'echo "$KUBECONFIG_B64"',
        "echo ${{ secrets.DECLSERVE_KUBECONFIG_B64 }}",
        "printf '%s\\n' \"$DECLSERVE_KUBECONFIG\" >&2",
        'base64 -d <<< "$KUBECONFIG_B64"',
        'echo "$KUBECONFIG_B64" | base64 -d',
        'head -n 5 "$KUBECONFIG" 2>/dev/null || true',
        'cat "$KUBECONFIG" >> "$GITHUB_STEP_SUMMARY"',
        'if true; then tee /dev/stderr < "$KUBECONFIG"; fi',
        "kubectl config view --raw",
        "set -x",
        "set -eux",
        "set -o xtrace",
        "bash -x deploy.sh",
        "env",
        "printenv | sort",
        "python3 - <<'PY'\nprint(open(__import__('os').environ['KUBECONFIG']).read())\nPY",
    ],
)
def test_the_leak_finder_finds_lines_that_print_the_kubeconfig(line: str) -> None:
    assert kubeconfig_leaks(line), line


@pytest.mark.parametrize(
    "line",
    [
        'base64 -d <<< "$KUBECONFIG_B64" > "$kubeconfig"',
        'echo "KUBECONFIG=$kubeconfig" >> "$GITHUB_ENV"',
        'export KUBECONFIG="$DECLSERVE_KUBECONFIG"',
        'rm -f "$RUNNER_TEMP/declserve-kubeconfig"',
        'if [ -z "$KUBECONFIG_B64" ]; then echo "the secret is not set"; exit 1; fi',
        "sed -nE 's/^ *token: *(.+)$/::add-mask::\\1/p' \"$kubeconfig\"",
        'declserve plan -C "$DECLSERVE_PROJECT" --detailed-exitcode || code=$?',
        'echo "DECLSERVE_KUBECONFIG is not available" >&2',
        "kubectl config view --minify",
    ],
)
def test_the_leak_finder_lets_the_safe_lines_pass(line: str) -> None:
    assert not kubeconfig_leaks(line), kubeconfig_leaks(line)


def test_github_kubernetes_jobs_write_a_private_kubeconfig_and_remove_it() -> None:
    secret = re.compile(r"\$\{\{\s*secrets\.\w*KUBECONFIG\w*\s*\}\}")
    for name in GITHUB_PAIRS["kubernetes"]:
        doc = load(CI / name)
        assert not secret.search(yaml.safe_dump(doc.get("env", {}))), f"{name}: workflow env"
        for job_id, job in doc["jobs"].items():
            where = f"{name} job {job_id}"
            assert not secret.search(yaml.safe_dump(job.get("env", {}))), f"{where}: job env"
            steps = job["steps"]
            writers = [
                i for i, s in enumerate(steps) if secret.search(yaml.safe_dump(s.get("env", {})))
            ]
            assert len(writers) == 1, f"{where}: the secret goes to {len(writers)} steps, not one"
            for step in steps:
                assert not secret.search(step.get("run", "")), f"{where}: secret in a script"
            run = steps[writers[0]]["run"]
            lines = logical_lines(run)
            writes = [i for i, ln in enumerate(lines) if re.search(r">\s*\"?\$kubeconfig", ln)]
            assert writes and "umask 077" in lines[: writes[0]], f"{where}: no umask 077 first"
            assert '"$RUNNER_TEMP/declserve-kubeconfig"' in run, f"{where}: not under $RUNNER_TEMP"
            assert "KUBECONFIG=" in run and "$GITHUB_ENV" in run, f"{where}: not exported"
            last = steps[-1]
            assert last.get("if") == "always()", f"{where}: the last step does not always run"
            assert last["run"].strip() == 'rm -f "$RUNNER_TEMP/declserve-kubeconfig"', where
            for step in steps:
                if step.get("uses", "").startswith("actions/upload-artifact@"):
                    assert "kubeconfig" not in str(step.get("with")).lower(), where


def test_gitlab_kubernetes_jobs_take_the_kubeconfig_from_a_file_variable() -> None:
    doc = load(CI / GITLAB_FILE)
    template = doc[".declserve-kubernetes"]
    before = list(_flatten(template["before_script"]))
    assert 'export KUBECONFIG="$DECLSERVE_KUBECONFIG"' in before
    check = next(t for t in before if "DECLSERVE_KUBECONFIG" in t and "exit 1" in t)
    assert '[ ! -f "$DECLSERVE_KUBECONFIG" ]' in check  # no fallback to a runner's ~/.kube/config
    assert any('rm -f "$DECLSERVE_KUBECONFIG"' in t for t in _flatten(template["after_script"]))
    jobs = {k: v for k, v in doc.items() if k.startswith("declserve-kubernetes-")}
    assert len(jobs) == 4, list(jobs)
    for name, job in jobs.items():
        assert job["extends"] == ".declserve-kubernetes", name
        for rule in job["rules"]:
            assert all("examples/servings" not in c for c in rule.get("changes", [])), name
        assert "kubeconfig" not in str(job.get("artifacts", {})).lower(), name
