"""Every project under tests/invalid/ is rejected with the right file, line, column and field.

Each case directory holds a project with one mistake and an EXPECT file: the start of the
error line `validate` must print after `declserve: error: ` (paths relative to the case
directory).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from declserve.cli import main

CORPUS = Path(__file__).resolve().parent.parent / "invalid"
CASES = sorted(p for p in CORPUS.iterdir() if (p / "EXPECT").is_file())


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_invalid_project_is_rejected_at_the_right_place(
    case: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = "declserve: error: " + (case / "EXPECT").read_text().strip()
    monkeypatch.chdir(case)
    assert main(["validate", "-C", "."]) == 1
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert any(line.startswith(expected) for line in lines), f"wanted {expected!r}, got {lines}"
    assert lines and all(line.startswith("declserve: error: ") for line in lines), lines
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize("case", CASES[:5], ids=[c.name for c in CASES[:5]])
def test_json_problems_carry_file_line_column_field(
    case: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = (case / "EXPECT").read_text().strip()
    monkeypatch.chdir(case)
    assert main(["validate", "-C", ".", "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)
    assert problems and all(
        set(p) == {"file", "line", "column", "field", "message"} for p in problems
    )
    rendered = [
        f"{p['file']}:{p['line']}:{p['column']}: "
        + (f"{p['field']}: " if p["field"] else "")
        + p["message"]
        for p in problems
    ]
    assert any(r.startswith(expected) for r in rendered), rendered


def test_the_installed_command_exits_1_on_an_invalid_project() -> None:
    case = CORPUS / "duplicate-key"
    run = subprocess.run(
        [sys.executable, "-m", "declserve.cli", "validate", "-C", str(case)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "spec.instances: duplicate key 'instances'" in run.stderr
    assert run.stderr.startswith("declserve: error: ") and "/s.yaml:10:3: " in run.stderr
