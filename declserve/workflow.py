"""The steps every command shares: load the project, open its providers, read live state, plan.

Plain functions over the core pieces so that the CLI stays a thin layer of flags and printing.
The serving backend the project file names and every other provider the project uses (found
by name in `declserve.providers`) are handled alike: each observes its kind, makes its
desired resources, checks its own rules and executes the changes of its kind.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from declserve import __version__, providers
from declserve.apply import Outcome, Status
from declserve.desired import SERVING_KIND, DesiredServing, resolve_desired
from declserve.errors import BackendUnavailable, DeclserveError, InputError
from declserve.live import LiveState
from declserve.loader import LoadedProject, load_project
from declserve.lock import LockInfo
from declserve.plan import DesiredResource, Plan, ResourceChange, make_plan
from declserve.provider import ApplyContext, Provider, ServingBackend, Wanted


def git_commit(directory: Path) -> str | None:
    """The commit of the spec repository, with `+dirty` when files changed; None outside Git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


HISTORY_KEEP = 100  # entries a project's history keeps unless `--keep` says otherwise


class PlanRefused(DeclserveError):
    """The specs ask for what the live systems cannot do (a missing topic, fewer partitions)."""


@dataclass
class Workspace:
    project: LoadedProject
    backend: ServingBackend
    others: list[Provider]
    desired: dict[str, DesiredServing]
    _wanted: dict[str, Wanted] = field(default_factory=dict)

    @classmethod
    def open(cls, directory: Path) -> Workspace:
        project = load_project(directory)
        desired = {d.name: d for d in resolve_desired(project)}
        return cls(
            project, providers.open_backend(project), providers.open_providers(project), desired
        )

    @property
    def providers(self) -> dict[str, Provider]:
        return {p.kind: p for p in [self.backend, *self.others]}

    def observe(self, *, tolerant: bool = False) -> LiveState:
        """Everything the project's providers have; with `tolerant`, an unreachable provider
        other than the serving backend is recorded as unknown instead of failing."""
        names = frozenset(self.desired)
        live = self.backend.observe(names)
        for p in self.others:
            try:
                live = live.merged(p.observe(names))
            except BackendUnavailable as exc:
                if not tolerant:
                    raise
                live = live.merged(LiveState(unknown={p.kind: str(exc)}))
        return live

    def observe_for_status(self) -> LiveState:
        """What `status` shows: the tolerant observation plus the backend's costlier details."""
        live = self.observe(tolerant=True)
        resources = {
            address: dataclasses.replace(r, observed={**r.observed, **self.backend.details(r)})
            if r.kind == self.backend.kind else r
            for address, r in live.resources.items()
        }
        return dataclasses.replace(live, resources=resources)

    def wanted(self) -> dict[str, Wanted]:
        """Every desired resource by address, with the dependencies other providers declare."""
        servings = list(self.desired.values())
        found: dict[str, Wanted] = {}
        for p in self.providers.values():
            for w in p.desired(servings):
                found[w.resource.address] = w
        extra: dict[str, list[str]] = {}
        for address, w in found.items():
            for user in w.required_by:
                extra.setdefault(user, []).append(address)
        for user, needs in extra.items():
            wanting = found.get(user)
            if wanting is not None:
                r = wanting.resource
                deps = tuple(sorted({*r.depends_on, *needs}))
                found[user] = Wanted(
                    DesiredResource(r.kind, r.name, r.essence, deps),
                    wanting.serving,
                    wanting.required_by,
                )
        self._wanted = found
        return found

    def _check(self, live: LiveState) -> None:
        servings = list(self.desired.values())
        refusals = [msg for p in self.providers.values() for msg in p.check(servings, live)]
        if refusals:
            raise PlanRefused("; ".join(refusals))

    def plan(
        self,
        live: LiveState,
        *,
        guards: frozenset[str] = frozenset(),
        targets: frozenset[str] | None = None,
        allow_empty: bool = False,
        destroy: bool = False,
    ) -> Plan:
        """The plan; `guards` are the flags the user passed that allow deletions (`--prune`)."""
        if targets:
            have = live.of_kind(SERVING_KIND)
            unknown = sorted(t for t in targets if t not in self.desired and t not in have)
            if unknown:
                raise InputError.one(
                    f"no serving named {', '.join(map(repr, unknown))} in the "
                    "specs or on the backend",
                    field="--target",
                )
        self._check(live)
        if destroy:
            guards = guards | {self.backend.delete_guard}
        return make_plan(
            project=self.project.name,
            backend=self.backend.identity(),
            desired=[w.resource for w in self.wanted().values()],
            live=live,
            planners=self.providers,
            allowed_deletions=guards,
            destroy=destroy,
            pinned_versions={n: d.version for n, d in self.desired.items()},
            targets=frozenset(f"{SERVING_KIND}.{t}" for t in targets) if targets else None,
            allow_empty=allow_empty or destroy,
        )

    def record(
        self,
        plan: Plan,
        outcomes: list[Outcome],
        operation: str,
        lock: LockInfo,
        *,
        interrupted: bool = False,
        keep: int = HISTORY_KEEP,
    ) -> dict[str, Any]:
        """Leave a trace of an apply on the backend; returns the entry."""
        failed = any(o.status is not Status.DONE for o in outcomes)
        s = plan.summary
        entry = {
            "id": lock.id,
            # microseconds: entries made within one second must still sort in order
            "time": datetime.now(UTC).isoformat(timespec="microseconds"),
            "user": lock.who,
            "host": lock.host,
            "operation": operation,
            "commit": git_commit(self.project.directory),
            "summary": {"add": s.add, "change": s.change, "destroy": s.destroy},
            "outcome": "interrupted" if interrupted else "failed" if failed else "succeeded",
            "changes": [
                {"address": o.address, "action": o.action.value, "status": o.status.value}
                for o in outcomes
            ],
            "declserve_version": __version__,
        }
        self.backend.record_history(entry, keep)
        return entry

    def runner(self) -> Callable[[ResourceChange, ApplyContext], None]:
        """The function the executor calls for one change: its provider carries out its steps."""
        wanted = self._wanted or self.wanted()
        by_kind = self.providers

        def run(change: ResourceChange, ctx: ApplyContext) -> None:
            by_kind[change.kind].execute(change, wanted.get(change.address), ctx)

        return run
