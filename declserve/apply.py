"""The apply executor: runs a plan's changes in dependency order with bounded parallelism.

It knows nothing of backends: the caller hands it one function that carries out one change
(and waits until ready). A failed change stops what depends on it and nothing else; the
outcome of every change is reported, so the user sees what was done and what was not, and a
second apply finishes the job because each change converges from whatever it finds.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import Enum
from typing import Callable

from declserve.errors import DeclserveError
from declserve.plan import Action, Plan, ResourceChange

Event = Callable[[str, str], None]
RunChange = Callable[[ResourceChange, Callable[[str], None]], None]


class Status(str, Enum):
    DONE = "done"
    FAILED = "failed"
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


def execute_plan(plan: Plan, run: RunChange, *, parallelism: int, event: Event) -> list[Outcome]:
    """Carry out every change; never raises for a failed change, reports it instead."""
    deps = dependencies(plan)
    changes = {c.address: c for c in plan.changes}
    outcomes: dict[str, Outcome] = {}
    running: dict[Future[None], tuple[str, float]] = {}

    def start(pool: ThreadPoolExecutor, address: str) -> None:
        change = changes[address]
        event(address, f"{change.action.value} started")
        running[pool.submit(run, change, lambda msg: event(address, msg))] = (address, time.monotonic())

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        while len(outcomes) < len(changes):
            for address in changes:
                if address in outcomes or any(address == a for a, _ in running.values()):
                    continue
                if any(outcomes.get(d, None) and outcomes[d].status is not Status.DONE for d in deps[address]):
                    failed = sorted(d for d in deps[address] if d in outcomes)
                    outcomes[address] = Outcome(
                        address, changes[address].action, Status.SKIPPED, f"{', '.join(failed)} failed"
                    )
                    continue
                if all(d in outcomes for d in deps[address]) and len(running) < parallelism:
                    start(pool, address)
            if not running:
                for address in changes:  # nothing can start: a dependency cycle
                    if address not in outcomes:
                        outcomes[address] = Outcome(
                            address, changes[address].action, Status.SKIPPED, "dependency cycle"
                        )
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                address, began = running.pop(future)
                seconds = time.monotonic() - began
                error = future.exception()
                if error is None:
                    outcomes[address] = Outcome(address, changes[address].action, Status.DONE, "", seconds)
                    event(address, f"{changes[address].action.value} complete after {seconds:.1f}s")
                else:
                    detail = str(error) if isinstance(error, DeclserveError) else f"{type(error).__name__}: {error}"
                    outcomes[address] = Outcome(address, changes[address].action, Status.FAILED, detail, seconds)
                    event(address, f"failed: {detail}")
    return [outcomes[c.address] for c in plan.changes]
