"""The code passes its own tools: ruff (style, imports, upgrades, bugbear; line length 100) and
mypy --strict on the package, as configured in pyproject.toml, whose settings are pinned here so
that weakening them is a visible change."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]


def test_the_tools_are_configured_as_agreed() -> None:
    assert CONFIG["ruff"]["line-length"] == 100
    assert {"E", "F", "W", "I", "UP", "B"} <= set(CONFIG["ruff"]["lint"]["select"])
    assert CONFIG["mypy"]["strict"] is True


def test_ruff_finds_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1000:]


def test_mypy_strict_finds_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "declserve"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1000:]
    assert "Success: no issues found" in run.stdout
