"""The apply executor: runs a plan's changes in dependency order with bounded parallelism.

It knows nothing of providers: the caller hands it one function that carries out one change
(its steps, each waited for). A failed change stops what depends on it and nothing else; the
outcome of every change is reported, so the user sees what was done and what was not, and a
second apply finishes the job because each change is planned again from what it finds.

Stopping (the first Ctrl-C) is Terraform's graceful stop: no new change starts, the running
ones finish their current step and stop before the next, and the rest are reported as not
started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum

from declserve.errors import DeclserveError
from declserve.plan import Action, Plan, ResourceChange
from declserve.provider import ApplyContext, Interrupted

Event = Callable[[str, str], None]
RunChange = Callable[[ResourceChange, ApplyContext], None]
_TICK = 0.2  # how often the waiting loop looks at the stop flag


class Status(StrEnum):
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "not started"


@dataclass(frozen=True)
class Outcome:
    address: str
    action: Action
    status: Status
    detail: str = ""
    seconds: float = 0.0


def dependencies(plan: Plan) -> dict[str, set[str]]:
    """What each change waits for: what it depends on, and for deletions the reverse."""
    in_plan = {c.address: c for c in plan.changes}
    deps: dict[str, set[str]] = {a: set() for a in in_plan}
    for c in plan.changes:
        for target in c.depends_on:
            if target not in in_plan:
                continue
            if c.action is Action.DELETE and in_plan[target].action is Action.DELETE:
                deps[target].add(c.address)  # remove the user before what it uses
            elif c.action is not Action.DELETE:
                deps[c.address].add(target)
    return deps


def _failure(error: BaseException) -> tuple[Status, str]:
    if isinstance(error, Interrupted):
        return Status.INTERRUPTED, str(error)
    if isinstance(error, DeclserveError):
        return Status.FAILED, str(error)
    return Status.FAILED, f"{type(error).__name__}: {error}"


def execute_plan(
    plan: Plan,
    run: RunChange,
    *,
    parallelism: int,
    event: Event,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """Carry out every change; never raises for a failed change, reports it instead."""
    stop = stop or threading.Event()
    deps = dependencies(plan)
    changes = {c.address: c for c in plan.changes}
    outcomes: dict[str, Outcome] = {}
    running: dict[Future[None], tuple[str, float]] = {}

    def skip(address: str, why: str) -> None:
        outcomes[address] = Outcome(address, changes[address].action, Status.SKIPPED, why)

    def start(pool: ThreadPoolExecutor, address: str) -> None:
        change = changes[address]
        event(address, f"{change.action.value} started")
        ctx = ApplyContext(lambda msg: event(address, msg), stop.is_set)
        running[pool.submit(run, change, ctx)] = (address, time.monotonic())

    def is_running(address: str) -> bool:
        return any(address == a for a, _ in running.values())

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        while len(outcomes) < len(changes):
            for address in changes:
                if address in outcomes or is_running(address):
                    continue
                if stop.is_set():
                    skip(address, "apply was interrupted")
                    continue
                failed = sorted(
                    d
                    for d in deps[address]
                    if d in outcomes and outcomes[d].status is not Status.DONE
                )
                if failed:
                    skip(address, f"{', '.join(failed)} did not complete")
                elif all(d in outcomes for d in deps[address]) and len(running) < parallelism:
                    start(pool, address)
            if not running:
                for address in changes:  # nothing can start: a dependency cycle
                    if address not in outcomes:
                        skip(address, "dependency cycle")
                continue
            done, _ = wait(list(running), timeout=_TICK, return_when=FIRST_COMPLETED)
            for future in done:
                address, began = running.pop(future)
                seconds = time.monotonic() - began
                action = changes[address].action
                error = future.exception()
                if error is None:
                    outcomes[address] = Outcome(address, action, Status.DONE, "", seconds)
                    event(address, f"{action.value} complete after {seconds:.1f}s")
                else:
                    status, detail = _failure(error)
                    outcomes[address] = Outcome(address, action, status, detail, seconds)
                    event(address, f"{status.value}: {detail}")
    return [outcomes[c.address] for c in plan.changes]
