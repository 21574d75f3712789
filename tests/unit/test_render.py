"""Plans for people: Terraform symbols, before → after, the summary line, colour only when asked."""

from __future__ import annotations

from declserve.apply import Outcome, Status
from declserve.plan import Action, FieldChange, Plan, ResourceChange, Step
from declserve.render import render_markdown, render_outcomes, render_text

PLAN = Plan(
    "demo",
    "docker:test",
    (
        ResourceChange("topic", "t", Action.CREATE, (FieldChange("partitions", None, 2),)),
        ResourceChange(
            "serving",
            "a",
            Action.UPDATE,
            (FieldChange("model.version", 2, 3), FieldChange("resources.cpu", "1", "500m")),
            (Step("write", "config files"), Step("restart", "demo-a-1", "one at a time")),
        ),
        ResourceChange(
            "serving",
            "r",
            Action.REPAIR,
            (),
            (Step("recreate", "demo-r-0"),),
            reason="demo-r-0 is paused",
        ),
        ResourceChange(
            "serving",
            "b",
            Action.REPLACE,
            (FieldChange("model.name", "x", "y"),),
            reason="model.name cannot change in place",
        ),
        ResourceChange("serving", "c", Action.DELETE, (FieldChange("instances", 1, None),)),
    ),
    "sha256:abc",
    warnings=("serving 'd' runs but has no spec",),
)


def test_text_lists_symbols_fields_and_the_summary() -> None:
    text = render_text(PLAN)
    assert (
        "+ topic.t" in text
        and "~ serving.a" in text
        and "-/+ serving.b" in text
        and "- serving.c" in text
    )
    assert "~ model.version: 2 → 3" in text
    assert '~ resources.cpu: "1" → "500m"' in text
    assert "        1. write config files\n        2. restart demo-a-1 (one at a time)" in text
    assert "# serving.r will be repaired (demo-r-0 is paused)" in text
    assert "must be replaced (model.name cannot change in place)" in text
    assert "Warning: serving 'd' runs but has no spec" in text
    assert text.rstrip().splitlines()[-1] == "Plan: 2 to add, 2 to change, 2 to destroy."
    assert "\x1b[" not in text


def test_colour_only_when_asked() -> None:
    coloured = render_text(PLAN, colour=True)
    assert "\x1b[32m+ topic.t" in coloured and "\x1b[31m- serving.c" in coloured
    assert render_text(PLAN, colour=False).count("\x1b[") == 0


def test_markdown_starts_with_the_summary_and_folds_the_details() -> None:
    md = render_markdown(PLAN)
    first = md.splitlines()[0]
    assert first == "### declserve plan for `demo`: Plan: 2 to add, 2 to change, 2 to destroy."
    assert md.index("<details>") < md.index("```diff") < md.index("</details>")


def test_no_changes() -> None:
    empty = Plan("demo", "docker:test", (), "sha256:abc")
    assert render_text(empty).strip() == "No changes. The live servings match the specs."
    assert "<details>" not in render_markdown(empty)


def test_an_interrupted_apply_says_so_and_what_was_not_done() -> None:
    text = render_outcomes(
        [
            Outcome("serving.a", Action.UPDATE, Status.DONE),
            Outcome("serving.b", Action.UPDATE, Status.INTERRUPTED, "stopped"),
            Outcome("serving.c", Action.CREATE, Status.SKIPPED, "interrupted"),
        ],
        interrupted=True,
    )
    assert text.startswith(
        "Apply interrupted: 1 done, 0 failed, 1 stopped part-way, 1 not started."
    )
    assert "not started create  serving.c" in text
