"""The steps every command shares: load the project, open its backend, read live state, plan.

Plain functions over the core pieces so that the CLI stays a thin layer of flags and printing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from declserve.backends import open_backend
from declserve.backends.base import Backend
from declserve.desired import DesiredServing, resolve_desired
from declserve.live import LiveState
from declserve.loader import LoadedProject, load_project
from declserve.plan import Plan, ResourceChange, make_plan


@dataclass
class Workspace:
    project: LoadedProject
    backend: Backend
    desired: dict[str, DesiredServing]

    @classmethod
    def open(cls, directory: Path) -> "Workspace":
        project = load_project(directory)
        desired = {d.name: d for d in resolve_desired(project)}
        return cls(project, open_backend(project), desired)

    def observe(self) -> LiveState:
        return self.backend.observe(set(self.desired))

    def plan(self, live: LiveState, *, prune: bool = False) -> Plan:
        return make_plan(
            project=self.project.name,
            backend=self.backend.identity(),
            desired=[self.backend.desired_resource(d) for d in self.desired.values()],
            live=live,
            replace_fields=self.backend.replace_fields,
            prune=prune,
            pinned_versions={n: d.version for n, d in self.desired.items()},
        )

    def runner(self, live: LiveState):  # type: ignore[no-untyped-def]
        """The function the executor calls for one change."""

        def run(change: ResourceChange, say) -> None:  # type: ignore[no-untyped-def]
            self.backend.apply_change(
                change, self.desired.get(change.name), live.servings.get(change.name), say
            )

        return run
