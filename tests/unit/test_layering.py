"""the core names no provider and imports none; providers import no command."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "declserve"
SDKS = ("docker", "kubernetes", "confluent_kafka", "aiohttp")
CORE = [
    "spec",
    "loader",
    "yamlsource",
    "registry",
    "desired",
    "live",
    "plan",
    "apply",
    "render",
    "planfile",
    "savedplan",
    "status",
    "lock",
    "errors",
    "schemas",
    "provider",
    "providers",
    "workflow",
    "commands",
    "importer",
]
PROVIDER_PACKAGES = ("backends", "topics")
COMMANDS = ("declserve.cli", "declserve.commands")
# The engine, the live view, the workflow, the commands and status speak of servings and
# resources only: what a backend is made of is its own business.
NEUTRAL = ["plan", "live", "workflow", "commands", "status", "apply", "provider"]
PROVIDER_WORDS = re.compile(
    r"\b(containers?|replicas?|proxy|proxies|docker|kafka|pods?|"
    r"deployments?|kserve)\b",
    re.IGNORECASE,
)


def imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def code_words(module: Path) -> list[str]:
    """Identifiers and string literals of a module, without its docstrings and comments."""
    tree = ast.parse(module.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.append(node.id)
        elif isinstance(node, ast.Attribute):
            out.append(node.attr)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            out.append(node.value)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.append(node.name)
    return out


@pytest.mark.parametrize("name", CORE)
def test_core_modules_import_no_provider_and_no_sdk(name: str) -> None:
    found = imports(PACKAGE / f"{name}.py")
    bad = sorted(
        m
        for m in found
        if m.split(".")[0] in SDKS
        or m.startswith(tuple(f"declserve.{p}" for p in PROVIDER_PACKAGES))
    )
    assert bad == [], f"declserve/{name}.py imports {bad}"


@pytest.mark.parametrize("name", NEUTRAL)
def test_the_neutral_core_names_no_part_of_a_provider(name: str) -> None:
    words = [w for w in code_words(PACKAGE / f"{name}.py") if PROVIDER_WORDS.search(w)]
    assert words == [], f"declserve/{name}.py names {sorted(set(words))}"


def test_providers_import_no_command() -> None:
    offenders = []
    for package in PROVIDER_PACKAGES:
        for module in (PACKAGE / package).rglob("*.py"):
            bad = [m for m in imports(module) if m.startswith(COMMANDS + ("declserve.workflow",))]
            if bad:
                offenders.append(f"{module.relative_to(PACKAGE)}: {bad}")
    assert offenders == []


def test_only_providers_import_the_sdks() -> None:
    offenders = []
    for module in PACKAGE.rglob("*.py"):
        rel = module.relative_to(PACKAGE)
        if rel.parts[0] in (*PROVIDER_PACKAGES, "logproxy"):
            continue
        if any(m.split(".")[0] in SDKS for m in imports(module)):
            offenders.append(str(rel))
    assert offenders == []


def test_every_core_module_exists() -> None:
    assert all((PACKAGE / f"{name}.py").is_file() for name in CORE)
