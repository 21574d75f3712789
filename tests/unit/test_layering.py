"""The layers stay apart: the core never imports a backend or an SDK; SDKs stay at the edges."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "declserve"
SDKS = ("docker", "kubernetes", "confluent_kafka")
CORE = ["spec", "loader", "yamlsource", "registry", "desired", "live", "plan", "apply", "render",
        "planfile", "savedplan", "status", "lock", "errors", "schemas"]


def imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("name", CORE)
def test_core_modules_import_no_backend_and_no_sdk(name: str) -> None:
    found = imports(PACKAGE / f"{name}.py")
    bad = sorted(m for m in found if m.split(".")[0] in SDKS or m.startswith(("declserve.backends", "declserve.topics", "declserve.workflow", "declserve.commands", "declserve.cli")))
    assert bad == [], f"declserve/{name}.py imports {bad}"


def test_only_backends_and_topics_import_the_sdks() -> None:
    offenders = []
    for module in PACKAGE.rglob("*.py"):
        rel = module.relative_to(PACKAGE)
        if rel.parts[0] in ("backends", "topics", "logproxy"):
            continue
        if any(m.split(".")[0] in SDKS for m in imports(module)):
            offenders.append(str(rel))
    assert offenders == []


def test_every_core_module_exists() -> None:
    assert all((PACKAGE / f"{name}.py").is_file() for name in CORE)
