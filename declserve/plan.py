"""The plan: a pure diff of desired resources against the live state, as a list of changes.

`make_plan` never talks to a server and never imports a provider. Each provider has already
turned the desired specs into essences and read the live objects into the same shape; here
the two are compared field by field (`before → after`), and the provider's planner, handed in
by kind, says what kind of change that is and which steps carry it out (pure). A resource
that its provider reports Degraded becomes a repair. Live resources without a spec are
deleted only when the user passed their provider's guard (`--prune`, `--delete-topics`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from declserve.errors import Conflict, DeclserveError
from declserve.live import Health, LiveResource, LiveState, flatten

ABSENT = None


class EmptyPlanRefused(DeclserveError):
    """A plan that would delete every resource of a kind, without --allow-empty."""


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    START = "start"
    STOP = "stop"
    REPAIR = "repair"


SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.START: "~",
    Action.STOP: "~",
    Action.REPAIR: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
}


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any
    by: str = ""  # who changed the live value, when the backend knows ("kubectl at …")


@dataclass(frozen=True)
class Step:
    """One thing apply does, as the plan shows it; the provider that planned it executes it."""

    op: str
    target: str = ""
    detail: str = ""

    def text(self) -> str:
        words = " ".join(w for w in (self.op, self.target) if w)
        return f"{words} ({self.detail})" if self.detail else words


@dataclass(frozen=True)
class DesiredResource:
    """A resource as its provider would hold it: its essence, made from the spec (pure)."""

    kind: str
    name: str
    essence: dict[str, Any]
    depends_on: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.kind}.{self.name}"


@dataclass(frozen=True)
class Shape:
    """What a planner makes of a difference: the action, why, and the steps that do it."""

    action: Action
    steps: tuple[Step, ...]
    reason: str = ""


class Planner(Protocol):
    """The pure half of a provider that the plan engine consults, one per kind."""

    kind: str
    delete_guard: str  # the option that lets a plan delete resources without a spec
    guard_everything: bool  # refuse deleting every resource of the kind without --allow-empty

    def shape(
        self,
        desired: DesiredResource | None,
        live: LiveResource | None,
        changes: Sequence[FieldChange],
    ) -> Shape: ...

    def kept_warning(self, live: LiveResource) -> str:
        """Why a live resource without a spec is kept, and how to delete it."""
        ...


@dataclass(frozen=True)
class ResourceChange:
    kind: str
    name: str
    action: Action
    changes: tuple[FieldChange, ...]
    steps: tuple[Step, ...] = ()
    depends_on: tuple[str, ...] = ()
    reason: str = ""

    @property
    def address(self) -> str:
        return f"{self.kind}.{self.name}"

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.action]


@dataclass(frozen=True)
class Summary:
    add: int = 0
    change: int = 0
    destroy: int = 0

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.destroy)


@dataclass(frozen=True)
class Plan:
    project: str
    backend: str
    changes: tuple[ResourceChange, ...]
    live_fingerprint: str
    pinned_versions: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def summary(self) -> Summary:
        add = change = destroy = 0
        for c in self.changes:
            if c.action in (Action.CREATE, Action.REPLACE):
                add += 1
            if c.action in (Action.DELETE, Action.REPLACE):
                destroy += 1
            if c.action in (Action.UPDATE, Action.START, Action.STOP, Action.REPAIR):
                change += 1
        return Summary(add, change, destroy)

    def change_for(self, address: str) -> ResourceChange | None:
        return next((c for c in self.changes if c.address == address), None)


def field_diff(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    """Flat field-by-field difference of two essences, paths sorted.

    The cheap equality check comes first: in a large plan almost every resource is
    unchanged, and comparing two dicts for equality costs a fraction of flattening them.
    """
    if before == after:
        return []
    flat_before, flat_after = flatten(before), flatten(after)
    if flat_before == flat_after:
        return []
    out = []
    for path in sorted(flat_before.keys() | flat_after.keys()):
        old, new = flat_before.get(path, ABSENT), flat_after.get(path, ABSENT)
        if old != new:
            out.extend(_nested_changes(path, old, new))
    return out


_MAX_NESTED = 8  # more element changes than this read better as the whole value


def _nested_changes(path: str, old: Any, new: Any) -> list[FieldChange]:
    """A changed list of values as the elements that changed (`args[2]`, `ports[0].port`).

    deepdiff does the nested comparison; it is reached only for the few values that differ.
    """
    if not (isinstance(old, list) and isinstance(new, list) and old and new):
        return [FieldChange(path, old, new)]
    from deepdiff import DeepDiff  # imported only when a plan has a nested change

    diff = DeepDiff(old, new, ignore_order=False, view="tree")
    items = [i for kind in diff.values() for i in kind]
    if not items or len(items) > _MAX_NESTED:
        return [FieldChange(path, old, new)]
    out = []
    for item in items:
        sub = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                      for p in item.path(output_format="list"))
        before = ABSENT if _missing(item.t1) else item.t1
        after = ABSENT if _missing(item.t2) else item.t2
        out.append(FieldChange(path + sub, before, after))
    return sorted(out, key=lambda f: f.path)


def _missing(value: Any) -> bool:
    return type(value).__name__ == "NotPresent"


def _attributed(change: FieldChange, changed_by: Mapping[str, str]) -> FieldChange:
    """The change, naming who set its live value: the entry for its path or a parent's."""
    path = change.path
    while path:
        if path in changed_by:
            return FieldChange(change.path, change.before, change.after, changed_by[path])
        path = path.rpartition(".")[0]
    return change


def _all_fields(essence: dict[str, Any], *, creating: bool) -> list[FieldChange]:
    flat = sorted(flatten(essence).items())
    if creating:
        return [FieldChange(p, ABSENT, v) for p, v in flat]
    return [FieldChange(p, v, ABSENT) for p, v in flat]


def _change(
    planner: Planner,
    desired: DesiredResource | None,
    live: LiveResource | None,
    changes: list[FieldChange],
    depends_on: tuple[str, ...],
    reason: str = "",
) -> ResourceChange:
    shape = planner.shape(desired, live, changes)
    some = desired or live
    assert some is not None
    why = "; ".join(r for r in (shape.reason, reason) if r)
    return ResourceChange(
        some.kind, some.name, shape.action, tuple(changes), shape.steps, depends_on, why
    )


def _depths(desired: Iterable[DesiredResource]) -> dict[str, int]:
    """How many levels of dependencies each desired resource has, for a readable order."""
    by_address = {d.address: d for d in desired}
    depth: dict[str, int] = {}

    def visit(address: str, seen: frozenset[str]) -> int:
        if address in depth:
            return depth[address]
        d = by_address.get(address)
        if d is None or address in seen:
            return 0
        level = 1 + max((visit(t, seen | {address}) for t in d.depends_on), default=-1)
        depth[address] = level
        return level

    for address in by_address:
        visit(address, frozenset())
    return depth


def make_plan(
    *,
    project: str,
    backend: str,
    desired: list[DesiredResource],
    live: LiveState,
    planners: Mapping[str, Planner],
    allowed_deletions: frozenset[str] = frozenset(),
    destroy: bool = False,
    pinned_versions: dict[str, int] | None = None,
    targets: frozenset[str] | None = None,
    allow_empty: bool = False,
) -> Plan:
    """Diff desired resources against live state; refuses when a foreign object is in the way.

    `targets` are addresses: the plan keeps their changes and those of everything they
    depend on, changed or not themselves.
    """
    if live.blockers:
        names = "; ".join(f"{b.object_name} ({b.reason})" for b in live.blockers)
        raise Conflict(f"objects not managed by this project are in the way: {names}")
    changes: list[ResourceChange] = []
    warnings: list[str] = []
    wanted = {d.address: d for d in desired}
    for d in desired:
        planner = planners[d.kind]
        have = live.get(d.address)
        if have is None:
            changes.append(
                _change(planner, d, None, _all_fields(d.essence, creating=True), d.depends_on)
            )
            continue
        diffs = field_diff(have.essence, d.essence)
        if have.changed_by and diffs:
            diffs = [_attributed(f, have.changed_by) for f in diffs]
        if have.health.state is Health.DEGRADED:
            changes.append(_change(planner, d, have, diffs, d.depends_on, have.health.reason))
        elif diffs:
            changes.append(_change(planner, d, have, diffs, d.depends_on))
        if have.health.state is Health.PROGRESSING:
            warnings.append(f"{d.address} is progressing: {have.health.reason}")
    for kind, planner in sorted(planners.items()):
        extra = [r for r in live.of_kind(kind).values() if r.address not in wanted and r.managed]
        allowed = planner.delete_guard in allowed_deletions
        if (
            allowed
            and planner.guard_everything
            and extra
            and not allow_empty
            and not any(d.kind == kind for d in desired)
        ):
            raise EmptyPlanRefused(
                f"the specs define no {kind}, so this would delete all {len(extra)} {kind}s "
                f"of project {project!r} (an empty or wrong spec directory?); "
                "pass --allow-empty if you mean it"
            )
        for r in sorted(extra, key=lambda r: r.name):
            if allowed and r.protected:
                warnings.append(
                    f"{r.address} is protected and is kept; "
                    f"`declserve unprotect {r.name}` lifts that"
                )
            elif allowed:
                why = "declserve destroy" if destroy else f"no spec for it; {planner.delete_guard}"
                changes.append(
                    _change(planner, None, r, _all_fields(r.essence, creating=False), (), why)
                )
            else:
                warnings.append(planner.kept_warning(r))
    if targets is not None:
        changes = _only_targets(changes, desired, targets)
    depth = _depths(desired)
    used = {t for d in desired for t in d.depends_on}

    def order(c: ResourceChange) -> tuple[int, int, str]:
        # What others depend on first (deepest dependencies first), then the rest by address.
        if c.address in used:
            return (0, depth.get(c.address, 0), c.address)
        return (1, 0, c.address)

    return Plan(
        project=project,
        backend=backend,
        changes=tuple(sorted(changes, key=order)),
        live_fingerprint=live.fingerprint(),
        pinned_versions=dict(pinned_versions or {}),
        warnings=tuple(warnings),
    )


def _only_targets(
    changes: list[ResourceChange], desired: list[DesiredResource], targets: frozenset[str]
) -> list[ResourceChange]:
    """The changes of the targets and of everything they depend on, transitively."""
    graph = {d.address: d.depends_on for d in desired}
    keep: set[str] = set()
    todo = list(targets)
    while todo:
        address = todo.pop()
        if address not in keep:
            keep.add(address)
            todo.extend(graph.get(address, ()))
    return [c for c in changes if c.address in keep]
