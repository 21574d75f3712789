"""The plan engine on hand-made essences with a planner double: actions, fields, repairs, guards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from declserve.errors import Conflict
from declserve.live import Blocker, HealthStatus, LiveResource, LiveState
from declserve.plan import (
    Action,
    DesiredResource,
    EmptyPlanRefused,
    FieldChange,
    Plan,
    Shape,
    Step,
    make_plan,
)

ESSENCE = {"model": {"name": "mnist", "version": 2}, "instances": 2, "state": "running"}


class PlannerDouble:
    """A test double of a provider's planner: a step per changed field, replace on `model.name`."""

    def __init__(self, kind: str, guard: str, everything: bool = True) -> None:
        self.kind = kind
        self.delete_guard = guard
        self.guard_everything = everything

    def shape(
        self,
        desired: DesiredResource | None,
        live: LiveResource | None,
        changes: Sequence[FieldChange],
    ) -> Shape:
        if desired is None:
            return Shape(Action.DELETE, (Step("remove", "all"),))
        if live is None:
            return Shape(Action.CREATE, (Step("make", desired.name),))
        if not changes:
            return Shape(Action.REPAIR, (Step("fix", desired.name),))
        if any(c.path == "model.name" for c in changes):
            return Shape(Action.REPLACE, (), "model.name cannot change in place")
        return Shape(Action.UPDATE, tuple(Step("set", c.path) for c in changes))

    def kept_warning(self, live: LiveResource) -> str:
        return f"{live.address} has no spec; {self.delete_guard} would delete it"


PLANNERS = {
    "serving": PlannerDouble("serving", "--prune"),
    "topic": PlannerDouble("topic", "--delete-topics", everything=False),
}


def want(name: str = "m", deps: tuple[str, ...] = (), **fields: Any) -> DesiredResource:
    return DesiredResource("serving", name, {**ESSENCE, **fields}, deps)


def have(
    name: str = "m", kind: str = "serving", health: HealthStatus | None = None, **fields: Any
) -> LiveResource:
    return LiveResource(
        kind, name, {**ESSENCE, **fields}, health or HealthStatus.ready(), revision=f"rev-{name}"
    )


def plan_of(desired: list[DesiredResource], live: list[LiveResource], **kw: Any) -> Plan:
    state = LiveState({r.address: r for r in live})
    return make_plan(
        project="p", backend="test", desired=desired, live=state, planners=PLANNERS, **kw
    )


def test_no_changes_when_live_matches() -> None:
    plan = plan_of([want()], [have()])
    assert plan.changes == () and plan.summary.empty


def test_create_lists_every_field_and_the_planners_steps() -> None:
    (change,) = plan_of([want()], []).changes
    assert change.action is Action.CREATE and change.symbol == "+"
    assert FieldChange("model.version", None, 2) in change.changes
    assert FieldChange("instances", None, 2) in change.changes
    assert change.steps == (Step("make", "m"),)


def test_version_bump_is_an_update_of_one_field() -> None:
    (change,) = plan_of([want(model={"name": "mnist", "version": 3})], [have()]).changes
    assert change.action is Action.UPDATE
    assert change.changes == (FieldChange("model.version", 2, 3),)
    assert change.steps == (Step("set", "model.version"),)


def test_replace_counts_as_add_and_destroy() -> None:
    plan = plan_of([want(model={"name": "iris", "version": 2})], [have()])
    (change,) = plan.changes
    assert (
        change.action is Action.REPLACE and change.symbol == "-/+" and "model.name" in change.reason
    )
    assert (plan.summary.add, plan.summary.destroy) == (1, 1)


def test_degraded_becomes_a_repair_with_its_reason() -> None:
    sick = have(health=HealthStatus.degraded("m-1 is paused"))
    plan = plan_of([want()], [sick])
    (change,) = plan.changes
    assert change.action is Action.REPAIR and change.symbol == "~"
    assert change.reason == "m-1 is paused" and change.steps == (Step("fix", "m"),)
    assert plan.summary.change == 1 and not plan.summary.empty


def test_progressing_is_a_warning_not_a_change() -> None:
    busy = have(health=HealthStatus.progressing("rolling out"))
    plan = plan_of([want()], [busy])
    assert plan.changes == () and plan.warnings == ("serving.m is progressing: rolling out",)


def test_removed_spec_is_deleted_only_with_its_guard() -> None:
    live = [have("m"), have("k")]
    plan = plan_of([want("k")], live)
    assert plan.changes == () and plan.warnings == (
        "serving.m has no spec; --prune would delete it",
    )
    pruned = plan_of([want("k")], live, allowed_deletions=frozenset({"--prune"}))
    (change,) = pruned.changes
    assert change.action is Action.DELETE and change.name == "m" and pruned.summary.destroy == 1
    assert change.reason == "no spec for it; --prune"
    destroyed = plan_of(
        [], live, allowed_deletions=frozenset({"--prune"}), destroy=True, allow_empty=True
    )
    assert {c.reason for c in destroyed.changes} == {"declserve destroy"}


def test_pruning_everything_needs_allow_empty() -> None:
    with pytest.raises(EmptyPlanRefused, match="delete all 1 servings"):
        plan_of([], [have()], allowed_deletions=frozenset({"--prune"}))
    (change,) = plan_of(
        [], [have()], allowed_deletions=frozenset({"--prune"}), allow_empty=True
    ).changes
    assert change.action is Action.DELETE


def test_protected_resource_survives_its_guard() -> None:
    guarded = LiveResource("serving", "g", dict(ESSENCE), protected=True)
    state = LiveState({guarded.address: guarded})
    plan = make_plan(
        project="p",
        backend="t",
        desired=[],
        live=state,
        planners=PLANNERS,
        allowed_deletions=frozenset({"--prune"}),
        allow_empty=True,
    )
    assert plan.changes == () and any("unprotect g" in w for w in plan.warnings)


def test_a_target_takes_its_dependencies_changes_even_when_it_is_unchanged() -> None:
    topic = DesiredResource("topic", "t", {"partitions": 1})
    a = want("a", deps=("topic.t",))
    b = want("b", model={"name": "mnist", "version": 3})
    plan = plan_of([a, b, topic], [have("a"), have("b")], targets=frozenset({"serving.a"}))
    assert [c.address for c in plan.changes] == ["topic.t"]
    plan = plan_of([a, b, topic], [have("a"), have("b")], targets=frozenset({"serving.b"}))
    assert [c.address for c in plan.changes] == ["serving.b"]


def test_blockers_fail_the_plan_naming_them() -> None:
    state = LiveState(blockers=(Blocker("p-m-0", "serving.m", "not managed by declserve"),))
    with pytest.raises(Conflict, match="p-m-0 \\(not managed by declserve\\)"):
        make_plan(project="p", backend="t", desired=[want()], live=state, planners=PLANNERS)


def test_dependencies_come_first_and_unused_resources_wait_for_their_own_guard() -> None:
    topic = DesiredResource("topic", "t1", {"partitions": 1})
    serving = want("a", deps=("topic.t1",))
    old = LiveResource("topic", "old", {"partitions": 1})
    foreign = LiveResource("topic", "theirs", {"partitions": 9}, managed=False)
    plan = plan_of([serving, topic], [old, foreign])
    assert [c.address for c in plan.changes] == ["topic.t1", "serving.a"]
    assert plan.changes[1].depends_on == ("topic.t1",)
    assert plan.warnings == ("topic.old has no spec; --delete-topics would delete it",)
    plan = plan_of([serving, topic], [old, foreign], allowed_deletions=frozenset({"--prune"}))
    assert plan.change_for("topic.old") is None
    plan = plan_of(
        [serving, topic], [old, foreign], allowed_deletions=frozenset({"--delete-topics"})
    )
    assert plan.change_for("topic.old") is not None and plan.change_for("topic.theirs") is None


def test_fingerprint_follows_what_the_plan_is_made_of() -> None:
    def fp(*live: LiveResource) -> str:
        return LiveState({r.address: r for r in live}).fingerprint()

    base = fp(have())
    assert base == fp(have())
    assert base != fp(have(model={"name": "mnist", "version": 3}))
    assert base != fp(LiveResource("serving", "m", dict(ESSENCE), revision="other"))
    assert base != fp(have(health=HealthStatus.degraded("x")))
    assert fp(have(health=HealthStatus.degraded("x"))) == fp(
        have(health=HealthStatus.degraded("y"))
    )
    assert base == fp(have(), LiveResource("topic", "theirs", {"partitions": 1}, managed=False))
