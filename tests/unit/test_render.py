"""Plans for people: Terraform symbols, before → after, the summary line, colour only when asked."""

from __future__ import annotations

from declserve.plan import Action, FieldChange, Plan, ResourceChange
from declserve.render import render_markdown, render_text

PLAN = Plan("demo", "docker:test", (
    ResourceChange("topic", "t", Action.CREATE, (FieldChange("partitions", None, 2),)),
    ResourceChange("serving", "a", Action.UPDATE, (FieldChange("model.version", 2, 3),
                                                   FieldChange("resources.cpu", "1", "500m", "demo-a-1"))),
    ResourceChange("serving", "b", Action.REPLACE, (FieldChange("model.name", "x", "y"),), (), "model.name cannot change in place"),
    ResourceChange("serving", "c", Action.DELETE, (FieldChange("instances", 1, None),)),
), "sha256:abc", warnings=("serving 'd' runs but has no spec",))


def test_text_lists_symbols_fields_and_the_summary() -> None:
    text = render_text(PLAN)
    assert "+ topic.t" in text and "~ serving.a" in text and "-/+ serving.b" in text and "- serving.c" in text
    assert "~ model.version: 2 → 3" in text
    assert '~ resources.cpu [demo-a-1]: "1" → "500m"' in text
    assert "must be replaced (model.name cannot change in place)" in text
    assert "Warning: serving 'd' runs but has no spec" in text
    assert text.rstrip().splitlines()[-1] == "Plan: 2 to add, 1 to change, 2 to destroy."
    assert "\x1b[" not in text


def test_colour_only_when_asked() -> None:
    coloured = render_text(PLAN, colour=True)
    assert "\x1b[32m+ topic.t" in coloured and "\x1b[31m- serving.c" in coloured
    assert render_text(PLAN, colour=False).count("\x1b[") == 0


def test_markdown_starts_with_the_summary_and_folds_the_details() -> None:
    md = render_markdown(PLAN)
    first = md.splitlines()[0]
    assert first == "### declserve plan for `demo`: Plan: 2 to add, 1 to change, 2 to destroy."
    assert md.index("<details>") < md.index("```diff") < md.index("</details>")


def test_no_changes() -> None:
    empty = Plan("demo", "docker:test", (), "sha256:abc")
    assert render_text(empty).strip() == "No changes. The live servings match the specs."
    assert "<details>" not in render_markdown(empty)
