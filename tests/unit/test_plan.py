"""The plan engine on hand-made essences: actions, field changes, replicas, prune, conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from declserve.errors import Conflict
from declserve.live import Blocker, LiveReplica, LiveServing, LiveState, LiveTopic
from declserve.plan import Action, DesiredResource, EmptyPlanRefused, FieldChange, make_plan

REPLICA = {"image": "tfs:1", "running": True, "resources": {"cpu": "1", "memory": "1Gi"}}


def desired(name: str = "m", version: int = 2, instances: int = 2, **replica: Any) -> DesiredResource:
    return DesiredResource(
        "serving", name, {"model": {"name": "mnist", "version": version}},
        {**REPLICA, **replica}, instances,
    )


def replica(name: str, index: int | None, **essence: Any) -> LiveReplica:
    merged = {**REPLICA, **essence}
    return LiveReplica(name, f"id-{name}", index, merged["running"], "running", merged)


def live(name: str = "m", version: int = 2, replicas: tuple[LiveReplica, ...] | None = None) -> LiveServing:
    reps = replicas if replicas is not None else (replica(f"{name}-0", 0), replica(f"{name}-1", 1))
    return LiveServing(name, {"model": {"name": "mnist", "version": version}}, reps)


def plan_of(want: list[DesiredResource], have: dict[str, LiveServing], **kw: Any):  # type: ignore[no-untyped-def]
    return make_plan(project="p", backend="test", desired=want, live=LiveState(servings=have),
                     replace_fields=frozenset({"model.name"}), **kw)


def test_no_changes_when_live_matches() -> None:
    plan = plan_of([desired()], {"m": live()})
    assert plan.changes == () and plan.summary.empty


def test_create_lists_every_field() -> None:
    plan = plan_of([desired()], {})
    (change,) = plan.changes
    assert change.action is Action.CREATE and change.symbol == "+"
    assert FieldChange("model.version", None, 2) in change.changes
    assert FieldChange("instances", None, 2) in change.changes
    assert plan.summary.add == 1


def test_version_bump_is_an_update_of_one_field() -> None:
    (change,) = plan_of([desired(version=3)], {"m": live()}).changes
    assert change.action is Action.UPDATE
    assert change.changes == (FieldChange("model.version", 2, 3),)


def test_change_shared_by_all_replicas_is_shown_once() -> None:
    (change,) = plan_of([desired(image="tfs:2")], {"m": live()}).changes
    assert change.changes == (FieldChange("image", "tfs:1", "tfs:2"),)


def test_change_on_one_replica_names_it() -> None:
    reps = (replica("m-0", 0), replica("m-1", 1, resources={"cpu": "2", "memory": "1Gi"}))
    (change,) = plan_of([desired()], {"m": live(replicas=reps)}).changes
    assert change.changes == (FieldChange("resources.cpu", "2", "1", replica="m-1"),)


def test_one_stopped_replica_is_an_update_not_a_start() -> None:
    reps = (replica("m-0", 0), replica("m-1", 1, running=False))
    (change,) = plan_of([desired()], {"m": live(replicas=reps)}).changes
    assert change.action is Action.UPDATE
    assert change.changes == (FieldChange("running", False, True, replica="m-1"),)


def test_stopping_every_replica_is_a_stop() -> None:
    (change,) = plan_of([desired(running=False)], {"m": live()}).changes
    assert change.action is Action.STOP and change.changes == (FieldChange("running", True, False),)
    (change,) = plan_of([desired()], {"m": live(replicas=(replica("m-0", 0, running=False), replica("m-1", 1, running=False)))}).changes
    assert change.action is Action.START


def test_scale_up_and_down() -> None:
    (up,) = plan_of([desired(instances=3)], {"m": live()}).changes
    assert up.changes == (FieldChange("instances", 2, 3),)
    (down,) = plan_of([desired(instances=1)], {"m": live()}).changes
    assert FieldChange("instances", 2, 1) in down.changes
    assert FieldChange("replica", "m-1", None, replica="m-1") in down.changes


def test_extra_container_without_index_is_the_one_removed() -> None:
    reps = (replica("m-0", 0), replica("intruder", None), replica("m-1", 1))
    (change,) = plan_of([desired()], {"m": live(replicas=reps)}).changes
    assert change.changes == (
        FieldChange("instances", 3, 2),
        FieldChange("replica", "intruder", None, replica="intruder"),
    )


def test_model_name_change_forces_replace() -> None:
    want = DesiredResource("serving", "m", {"model": {"name": "iris", "version": 2}}, dict(REPLICA), 2)
    (change,) = plan_of([want], {"m": live()}).changes
    assert change.action is Action.REPLACE and change.symbol == "-/+"
    assert "model.name" in change.reason
    assert plan_of([want], {"m": live()}).summary.add == 1
    assert plan_of([want], {"m": live()}).summary.destroy == 1


def test_removed_spec_is_deleted_only_with_prune() -> None:
    have = {"m": live(), "k": live("k")}
    plan = plan_of([desired("k")], have)
    assert plan.changes == () and "--prune" in plan.warnings[0]
    pruned = plan_of([desired("k")], have, prune=True)
    (change,) = pruned.changes
    assert change.action is Action.DELETE and change.name == "m" and pruned.summary.destroy == 1


def test_pruning_everything_needs_allow_empty() -> None:
    with pytest.raises(EmptyPlanRefused, match="delete all 1 servings"):
        plan_of([], {"m": live()}, prune=True)
    (change,) = plan_of([], {"m": live()}, prune=True, allow_empty=True).changes
    assert change.action is Action.DELETE


def test_protected_serving_survives_prune() -> None:
    guarded = LiveServing("g", {"model": {"name": "mnist", "version": 2}, "protected": True}, (replica("g-0", 0),))
    plan = plan_of([], {"g": guarded}, prune=True, allow_empty=True)
    assert plan.changes == () and any("unprotect g" in w for w in plan.warnings)


def test_targets_keep_only_named_servings_and_their_dependencies() -> None:
    topic = DesiredResource("topic", "t", {"partitions": 1})
    a = DesiredResource("serving", "a", {"model": {"name": "x", "version": 1}}, dict(REPLICA), 1, ("topic.t",))
    b = DesiredResource("serving", "b", {"model": {"name": "x", "version": 1}}, dict(REPLICA), 1)
    plan = make_plan(project="p", backend="t", desired=[a, b, topic], live=LiveState(),
                     replace_fields=frozenset(), targets=frozenset({"a"}))
    assert [c.address for c in plan.changes] == ["topic.t", "serving.a"]


def test_label_removed_from_spec_shows_up() -> None:
    reps = (replica("m-0", 0, labels={"team": "a"}),)
    (change,) = plan_of([desired(instances=1)], {"m": live(replicas=reps)}).changes
    assert change.changes == (FieldChange("labels.team", "a", None),)


def test_blockers_fail_the_plan_naming_them() -> None:
    state = LiveState(blockers=(Blocker("p-m-0", "m", "not managed by declserve"),))
    with pytest.raises(Conflict, match="p-m-0 \\(not managed by declserve\\)"):
        make_plan(project="p", backend="t", desired=[desired()], live=state, replace_fields=frozenset())


def test_topics_come_first_and_unused_managed_topics_are_kept() -> None:
    topic = DesiredResource("topic", "t1", {"partitions": 1})
    serving = DesiredResource("serving", "a", {"model": {"name": "x", "version": 1}}, dict(REPLICA), 1, ("topic.t1",))
    state = LiveState(topics={"old": LiveTopic("old", {"partitions": 1}, managed=True)})
    plan = make_plan(project="p", backend="t", desired=[serving, topic], live=state, replace_fields=frozenset())
    assert [c.address for c in plan.changes] == ["topic.t1", "serving.a"]
    assert plan.changes[1].depends_on == ("topic.t1",)
    assert any("old" in w for w in plan.warnings)
    plan = make_plan(project="p", backend="t", desired=[serving, topic], live=state,
                     replace_fields=frozenset(), delete_topics=True)
    assert plan.change_for("topic.old") is not None


def test_fingerprint_changes_with_live_state() -> None:
    a = LiveState(servings={"m": live()})
    b = LiveState(servings={"m": live(version=3)})
    assert a.fingerprint() == LiveState(servings={"m": live()}).fingerprint()
    assert a.fingerprint() != b.fingerprint()
