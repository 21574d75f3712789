"""The steps of one change to a serving on Docker (pure): what apply does, container by container.

A version bump is a file write that every replica reloads in place (TensorFlow Serving loads
the new version before it unloads the old one); limits change with `docker update`; anything
else a container was started with is a rolling recreate, one replica at a time, the new one
ready before the old one goes. Which replica each step touches comes from the live detail
the backend observed, so the plan names them and apply does exactly that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from declserve.backends.docker.essence import IN_PLACE, desired_essence, is_replica_field
from declserve.backends.docker.settings import DockerSettings
from declserve.desired import SERVING_KIND, DesiredServing
from declserve.live import LiveResource, LiveState, flatten
from declserve.plan import Action, DesiredResource, FieldChange, Shape, Step
from declserve.provider import Wanted

# Step verbs; `DockerBackend.execute` carries out each of them.
WRITE = "write"
CREATE = "create"
RECREATE = "recreate"
LIMITS = "update the limits of"
START = "start"
STOP = "stop"
REMOVE = "remove"
WAIT = "wait until ready:"
PROXY_CREATE = "create the front proxy"
PROXY_RECREATE = "recreate the front proxy"
PROXY_CONFIGURE = "reconfigure the front proxy"
PROXY_REMOVE = "remove the front proxy"
PROXY_START = "start the front proxy"
PROXY_STOP = "stop the front proxy"
PROXY_POINT = "point the front proxy at"
CONFIG_FILES = "config files"
READY_REPLICAS = "the ready replicas"


def kept_and_extra(
    replicas: Sequence[dict[str, Any]], wanted: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Which live replicas fill the wanted slots, and which are extra.

    Replicas with a distinct index inside the wanted range are kept first, so an extra
    container started by hand (no index, or a duplicate one) is the one planned for removal.
    """
    good: dict[int, dict[str, Any]] = {}
    rest: list[dict[str, Any]] = []
    order = sorted(
        replicas, key=lambda r: (r["index"] is None, r["index"] or 0, not r["running"], r["name"])
    )
    for r in order:
        index = r["index"]
        if index is not None and 0 <= index < wanted and index not in good:
            good[index] = r
        else:
            rest.append(r)
    kept = [good[i] for i in sorted(good)]
    while len(kept) < wanted and rest:
        kept.append(rest.pop(0))
    return kept, rest


def slots(
    kept: list[dict[str, Any]], wanted: int
) -> tuple[list[tuple[dict[str, Any], int]], list[int]]:
    """The index each kept replica ends up with (its own where it can), and the free indexes."""
    used = {r["index"] for r in kept if r["index"] is not None and 0 <= r["index"] < wanted}
    free = [i for i in range(wanted) if i not in used]
    placed: list[tuple[dict[str, Any], int]] = []
    seen: set[int] = set()
    for r in kept:
        index = r["index"]
        if index is not None and 0 <= index < wanted and index not in seen:
            seen.add(index)
            placed.append((r, index))
        else:
            placed.append((r, free.pop(0)))
    return placed, free


class DockerPlanner:
    kind = SERVING_KIND
    delete_guard = "--prune"
    guard_everything = True

    def __init__(self, settings: DockerSettings) -> None:
        self.settings = settings

    def desired(self, servings: Sequence[DesiredServing]) -> list[Wanted]:
        return [
            Wanted(DesiredResource(self.kind, d.name, desired_essence(d, self.settings)), d)
            for d in servings
        ]

    def check(self, servings: Sequence[DesiredServing], live: LiveState) -> list[str]:
        return []  # the engine runs whatever a valid spec asks for

    def kept_warning(self, live: LiveResource) -> str:
        verb = "runs" if live.essence.get("state") == "running" else "exists (stopped)"
        return f"serving {live.name!r} {verb} but has no spec; `--prune` would delete it"

    def shape(
        self,
        desired: DesiredResource | None,
        live: LiveResource | None,
        changes: Sequence[FieldChange],
    ) -> Shape:
        if desired is None:
            assert live is not None
            return Shape(Action.DELETE, self._delete_steps(live))
        if live is None:
            return Shape(Action.CREATE, self._create_steps(desired))
        paths = {c.path for c in changes}
        if "model.name" in paths:
            return Shape(
                Action.REPLACE,
                self._delete_steps(live) + self._create_steps(desired),
                "model.name cannot change in place",
            )
        steps = self._update_steps(desired, live, paths)
        if not changes:
            return Shape(Action.REPAIR, steps)
        if paths == {"state"}:
            running = desired.essence["state"] == "running"
            return Shape(Action.START if running else Action.STOP, steps)
        return Shape(Action.UPDATE, steps)

    # ---- whole servings ----------------------------------------------------------------
    def _create_steps(self, desired: DesiredResource) -> tuple[Step, ...]:
        e = desired.essence
        s = self.settings
        files = {"model.version"} | ({"batching.parameters"} if e["batching"]["enabled"] else set())
        steps = [Step(WRITE, CONFIG_FILES, _files_detail(e, files, creating=True))]
        steps += [Step(CREATE, s.container_name(desired.name, i)) for i in range(e["instances"])]
        if e["state"] == "running" and e["instances"]:
            steps.append(_wait(e))
        steps.append(Step(PROXY_CREATE, s.proxy_name(desired.name), _front_detail(e)))
        return tuple(steps)

    def _delete_steps(self, live: LiveResource) -> tuple[Step, ...]:
        proxy = live.detail.get("proxy")
        steps = [Step(PROXY_REMOVE, proxy["name"])] if proxy else []
        steps += [Step(REMOVE, r["name"]) for r in live.detail.get("replicas", ())]
        steps.append(Step(REMOVE, CONFIG_FILES))
        return tuple(steps)

    # ---- changes in place --------------------------------------------------------------
    def _update_steps(
        self, desired: DesiredResource, live: LiveResource, paths: set[str]
    ) -> tuple[Step, ...]:
        e = desired.essence
        s = self.settings
        running = e["state"] == "running"
        want = {k: v for k, v in flatten(e).items() if is_replica_field(k)}
        want["running"] = running
        steps: list[Step] = []
        files = {
            p
            for p in paths
            if not is_replica_field(p)
            and p not in ("instances", "state")
            and not p.startswith(("logging", "frontend"))
        }
        if files:
            steps.append(Step(WRITE, CONFIG_FILES, _files_detail(e, files)))
        kept, extra = kept_and_extra(live.detail.get("replicas", []), e["instances"])
        placed, free = slots(kept, e["instances"])
        touched = False
        # TensorFlow Serving reads its batching parameters file only when it starts.
        restart = (
            "batching parameters are read at start"
            if any(p.startswith("batching.") and p != "batching.enabled" for p in files)
            else ""
        )
        for r, index in placed:
            name = s.container_name(desired.name, index)
            fields = sorted(
                k for k in want.keys() | r["essence"].keys() if want.get(k) != r["essence"].get(k)
            )
            if index != r["index"] or name != r["name"]:
                fields.append("index")
            if r.get("problem") and running:
                steps.append(Step(RECREATE, name, r["problem"]))
                touched = True
            elif restart and running and not set(fields) - IN_PLACE - {"running"}:
                steps.append(Step(RECREATE, name, restart))
                touched = True
            elif not fields:
                continue
            elif set(fields) <= IN_PLACE | {"running"}:
                if set(fields) & IN_PLACE:
                    steps.append(Step(LIMITS, name, ", ".join(sorted(set(fields) & IN_PLACE))))
                if "running" in fields:
                    steps.append(Step(START if running else STOP, name))
                    touched = touched or running
            else:
                steps.append(Step(RECREATE, name, ", ".join(fields)))
                touched = True
        for index in free:
            steps.append(Step(CREATE, s.container_name(desired.name, index)))
            touched = True
        reload = any(p == "model.version" or p.startswith("modelConfig.") for p in files)
        if running and e["instances"] and (touched or reload):
            steps.append(_wait(e))
        steps += [Step(REMOVE, r["name"], "extra replica") for r in extra]
        steps += self._proxy_steps(desired, live, touched)
        return tuple(steps)

    def _proxy_steps(
        self, desired: DesiredResource, live: LiveResource, replicas_changed: bool
    ) -> list[Step]:
        """The front proxy: created with the serving, reconfigured in place where it can be."""
        e = desired.essence
        proxy = live.detail.get("proxy")
        name = self.settings.proxy_name(desired.name)
        running = e["state"] == "running"
        if proxy is None:
            return [Step(PROXY_CREATE, name, _front_detail(e))]
        have = live.essence.get("frontend") or {}
        if e["frontend"] != have:
            changed = sorted(k for k in e["frontend"] if e["frontend"][k] != have.get(k))
            return [Step(PROXY_RECREATE, name, ", ".join(f"frontend.{k}" for k in changed))]
        steps = []
        if e.get("logging") != live.essence.get("logging"):
            # The proxy re-reads its settings file: the address keeps answering meanwhile.
            steps.append(Step(PROXY_CONFIGURE, name, _logging_detail(e)))
        if running and not proxy["running"]:
            steps.append(Step(PROXY_START, name))
        if not running and proxy["running"]:
            steps.append(Step(PROXY_STOP, name))
        if running and (replicas_changed or not proxy["upstreamsCurrent"] or not proxy["running"]):
            steps.append(Step(PROXY_POINT, READY_REPLICAS))
        return steps


def _front_detail(e: dict[str, Any]) -> str:
    port = e["frontend"]["port"]
    where = f"port {port}" if isinstance(port, int) else "a port chosen once and kept"
    return f"{where}; {_logging_detail(e)}"


def _logging_detail(e: dict[str, Any]) -> str:
    logging = e.get("logging")
    if logging is None:
        return "no inference logging"
    return f"logs {logging['mode']} to topic {logging['topic']}"


def _wait(e: dict[str, Any]) -> Step:
    n = e["instances"]
    return Step(
        WAIT, f"{n} replica{'s' if n != 1 else ''}", f"each serving version {e['model']['version']}"
    )


def _files_detail(e: dict[str, Any], paths: set[str], creating: bool = False) -> str:
    parts = []
    if any(p.startswith(("model.", "modelConfig.")) for p in paths):
        reload = "" if creating else "; replicas reload it in place"
        parts.append(f"model config: version {e['model']['version']}{reload}")
    if any(p.startswith("batching.") for p in paths):
        parts.append("batching parameters")
    if "protected" in paths:
        parts.append("protection mark " + ("set" if e.get("protected") else "removed"))
    return "; ".join(parts) or "model config"
