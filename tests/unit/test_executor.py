"""The executor, run against an in-memory recorder (a test double of a backend's apply step)."""

from __future__ import annotations

import threading
import time

from declserve.apply import Status, execute_plan
from declserve.errors import NotReady
from declserve.plan import Action, Plan, ResourceChange
from declserve.provider import ApplyContext


def change(
    name: str, action: Action = Action.CREATE, kind: str = "serving", deps: tuple[str, ...] = ()
) -> ResourceChange:
    return ResourceChange(kind, name, action, (), depends_on=deps)


def plan(*changes: ResourceChange) -> Plan:
    return Plan("p", "t", changes, "sha256:x")


class RecorderDouble:
    """Stands in for a backend's apply_change: records order and overlap, fails on request."""

    def __init__(self, fail: set[str] = frozenset(), delay: float = 0.0) -> None:
        self.fail = fail
        self.delay = delay
        self.order: list[str] = []
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, c: ResourceChange, ctx: ApplyContext) -> None:
        say = ctx.say
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)  # simulated work, not synchronisation
            say("working")
            if c.name in self.fail:
                raise NotReady(f"{c.name} never became ready")
            with self.lock:
                self.order.append(c.address)
        finally:
            with self.lock:
                self.active -= 1


def test_dependencies_run_first_and_deletions_in_reverse() -> None:
    rec = RecorderDouble()
    p = plan(change("a", deps=("topic.t",)), change("t", kind="topic"))
    execute_plan(p, rec, parallelism=4, event=lambda a, m: None)
    assert rec.order == ["topic.t", "serving.a"]
    rec = RecorderDouble()
    p = plan(
        change("t", Action.DELETE, kind="topic"), change("a", Action.DELETE, deps=("topic.t",))
    )
    execute_plan(p, rec, parallelism=4, event=lambda a, m: None)
    assert rec.order == ["serving.a", "topic.t"]


def test_parallelism_is_bounded() -> None:
    rec = RecorderDouble(delay=0.05)
    p = plan(*(change(f"s{i}") for i in range(8)))
    outcomes = execute_plan(p, rec, parallelism=3, event=lambda a, m: None)
    assert all(o.status is Status.DONE for o in outcomes)
    assert 1 < rec.peak <= 3


def test_failure_skips_dependents_only_and_is_reported() -> None:
    rec = RecorderDouble(fail={"t"})
    p = plan(change("t", kind="topic"), change("a", deps=("topic.t",)), change("b"))
    events: list[tuple[str, str]] = []
    outcomes = {
        o.address: o
        for o in execute_plan(p, rec, parallelism=2, event=lambda a, m: events.append((a, m)))
    }
    assert (
        outcomes["topic.t"].status is Status.FAILED
        and "never became ready" in outcomes["topic.t"].detail
    )
    assert (
        outcomes["serving.a"].status is Status.SKIPPED and "topic.t" in outcomes["serving.a"].detail
    )
    assert outcomes["serving.b"].status is Status.DONE
    assert ("serving.b", "working") in events


def test_a_stop_starts_nothing_new_lets_running_changes_finish_their_step() -> None:
    stop = threading.Event()
    began: list[str] = []

    def run(c: ResourceChange, ctx: ApplyContext) -> None:
        began.append(c.address)
        stop.set()  # the user presses Ctrl-C while this change runs its first step
        ctx.checkpoint()  # ... and it stops before its next one

    p = plan(change("a"), change("b"), change("c"))
    outcomes = {
        o.address: o
        for o in execute_plan(p, run, parallelism=1, event=lambda a, m: None, stop=stop)
    }
    assert began == ["serving.a"]
    assert outcomes["serving.a"].status is Status.INTERRUPTED
    assert {outcomes["serving.b"].status, outcomes["serving.c"].status} == {Status.SKIPPED}
    assert "interrupted" in outcomes["serving.b"].detail
