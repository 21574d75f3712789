"""One function per CLI command: load, act through the workflow, print, return an exit code.

Flags are parsed in `cli`; everything here receives the parsed namespace. Output that a user
reads goes to stdout, problems to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from declserve import render
from declserve.apply import Outcome, Status, execute_plan
from declserve.errors import DeclserveError, InputError
from declserve.live import LiveState
from declserve.loader import collect
from declserve.lock import LockHeld, project_lock
from declserve.plan import Plan
from declserve.workflow import Workspace


class StalePlan(DeclserveError):
    """A saved plan whose live state changed since it was made."""


def _colour(args: argparse.Namespace) -> bool:
    return sys.stdout.isatty() and not getattr(args, "no_color", False) and "NO_COLOR" not in os.environ


def _targets(args: argparse.Namespace) -> frozenset[str] | None:
    return frozenset(args.target) if getattr(args, "target", None) else None


def validate(args: argparse.Namespace) -> int:
    from declserve.errors import error_lines

    _, problems = collect(Path(args.directory))
    if args.json:
        print(json.dumps([p.to_json() for p in problems], indent=2))
    else:
        # The same `declserve: error: FILE:LINE:COL: FIELD: message` lines as every command.
        sys.stderr.write("".join(error_lines(p.format()) for p in problems))
        if not problems:
            print(f"{args.directory}: valid")
    return 1 if problems else 0


def schema(args: argparse.Namespace) -> int:
    from declserve import schemas

    kinds = list(schemas.KINDS)
    if args.kind is not None:
        chosen = [k for k in kinds if k.lower() == args.kind.lower()]
        if not chosen:
            known = ", ".join(kinds)
            raise InputError.one(f"unknown kind {args.kind!r}; known kinds: {known}", field="KIND")
        kinds = chosen
    if args.write:
        for kind in kinds:
            path = Path(args.write) / schemas.file_name(kind)
            try:
                path.write_text(schemas.render(kind))
            except OSError as exc:
                raise DeclserveError(f"cannot write {path}: {exc.strerror}") from exc
            print(f"Wrote {path}")
    elif args.kind is not None:
        print(schemas.render(kinds[0]), end="")
    else:  # one JSON document, so that `declserve schema | jq .Serving` works
        print(json.dumps({k: schemas.schema_for(k) for k in kinds}, indent=2, sort_keys=True))
    return 0


def _print_plan(plan: Plan, args: argparse.Namespace) -> None:
    if getattr(args, "json", False):
        from declserve import planfile

        print(planfile.to_json(plan))
    elif getattr(args, "markdown", False):
        print(render.render_markdown(plan), end="")
    else:
        print(render.render_text(plan, _colour(args)), end="")


def plan(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))

    def make() -> Plan:
        return ws.plan(ws.observe(), prune=args.prune, delete_topics=args.delete_topics,
                       targets=_targets(args), allow_empty=args.allow_empty)

    if args.lock:
        with project_lock(ws.backend, "plan", args.lock_timeout):
            result = make()
    else:
        result = make()
    _print_plan(result, args)
    if args.out:  # cli checked its directory before planning
        from declserve import savedplan
        from declserve.errors import shell_command

        options = {"prune": args.prune, "delete_topics": args.delete_topics,
                   "targets": sorted(args.target or [])}
        try:
            savedplan.write(Path(args.out), result, ws.desired, options)
        except OSError as exc:
            raise DeclserveError(f"cannot save the plan to {args.out}: {exc.strerror}") from exc
        again = shell_command("apply", args.directory, args.out)
        print(f"Saved the plan to {args.out}; apply exactly it with: {again}", file=sys.stderr)
    return 2 if args.detailed_exitcode and not result.summary.empty else 0


def _confirm(prompt: str) -> bool:
    print(prompt, end=" ", flush=True)
    try:
        answer = input()
    except EOFError:
        print()
        return False
    return answer.strip() == "yes"


def _execute(ws: Workspace, result: Plan, live: LiveState, args: argparse.Namespace) -> list[Outcome]:
    tty = sys.stdout.isatty()
    lock = threading.Lock()  # events come from worker threads; one whole line at a time

    def event(address: str, message: str) -> None:
        stamp = time.strftime("%H:%M:%S ") if tty else ""
        with lock:
            sys.stdout.write(f"{stamp}{address}: {message}\n")
            sys.stdout.flush()

    return execute_plan(result, ws.runner(live), parallelism=args.parallelism, event=event)


def _finish(outcomes: list[Outcome]) -> int:
    failed = any(o.status is not Status.DONE for o in outcomes)
    print(render.render_outcomes(outcomes), end="", file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _apply_saved(ws: Workspace, args: argparse.Namespace) -> int:
    from declserve import savedplan

    path = Path(args.planfile)
    saved, desired, _options = savedplan.read(path)
    if saved.project != ws.project.name:
        raise InputError.one(f"the plan is for project {saved.project!r}, not {ws.project.name!r}", file=str(path))
    if saved.backend != ws.backend.identity():
        raise InputError.one(f"the plan is for backend {saved.backend}, not {ws.backend.identity()}", file=str(path))
    ws.desired = desired
    with project_lock(ws.backend, "apply", args.lock_timeout) as lock:
        live = ws.observe()
        if live.fingerprint() != saved.live_fingerprint:
            raise StalePlan(f"{path}: the plan is stale: the live state changed since it was made; "
                            "run plan again")
        print(render.render_text(saved, _colour(args)), end="")
        if saved.summary.empty:
            return 0
        outcomes = _execute(ws, saved, live, args)
        ws.record(saved, outcomes, "apply " + path.name, lock)
    return _finish(outcomes)


def apply(args: argparse.Namespace, *, destroy: bool = False) -> int:
    ws = Workspace.open(Path(args.directory))
    if getattr(args, "planfile", None):
        return _apply_saved(ws, args)
    if destroy:
        ws.desired = {}
    with project_lock(ws.backend, "destroy" if destroy else "apply", args.lock_timeout) as lock:
        live = ws.observe()
        result = ws.plan(live, prune=args.prune or destroy, delete_topics=args.delete_topics,
                         targets=_targets(args), allow_empty=args.allow_empty or destroy)
        print(render.render_text(result, _colour(args)), end="")
        if result.summary.empty:
            ws.record(result, [], "destroy" if destroy else "apply", lock)
            return 0
        question = "destroy these servings" if destroy else "perform these actions"
        if not args.auto_approve and not _confirm(f"\nDo you want to {question}? Only 'yes' will be accepted:"):
            print("Cancelled; nothing was changed.", file=sys.stderr)
            return 1
        outcomes = _execute(ws, result, live, args)
        ws.record(result, outcomes, "destroy" if destroy else "apply", lock)
    return _finish(outcomes)


def destroy(args: argparse.Namespace) -> int:
    return apply(args, destroy=True)


def force_unlock(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))
    holder = ws.backend.read_lock()
    if holder is None:
        print("The project is not locked.")
        return 0
    if holder.id != args.lock_id:
        # The holder's id is not repeated: force-unlock is the confirmation that the user has
        # read the lock error, which names the id and who holds the lock.
        raise InputError.one(
            f"{args.lock_id!r} does not match the id of the lock on this project "
            f"({holder.holder()}); `declserve force-unlock` needs the id that the lock error "
            "shows", field="ID")
    ws.backend.unlock(holder.id)
    print(f"Removed {holder.describe()}")
    return 0


def history(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))
    entries = ws.backend.history()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print("No apply has been recorded for this project.")
    for e in entries:
        s = e["summary"]
        commit = (e.get("commit") or "-")[:12]
        print(f"{e['time'][:19].replace('T', ' ')}  {e['outcome']:<9}  {e['operation']:<10}  {e['user']}@{e['host']}  "
              f"commit {commit}  +{s['add']} ~{s['change']} -{s['destroy']}")
    return 0


def import_(args: argparse.Namespace) -> int:
    from declserve import importer
    from declserve.plan import Action, ResourceChange
    from declserve.spec import DNS1123_LABEL
    import re

    if not re.match(DNS1123_LABEL, args.name):
        raise InputError.one(f"{args.name!r} is not a DNS-1123 label, so it cannot name a serving", field="NAME")
    ws = Workspace.open(Path(args.directory))
    if args.name in ws.desired:
        raise importer.ImportRefused(f"serving {args.name!r} already has a spec ({ws.desired[args.name].source})")
    backend = ws.backend
    with project_lock(backend, "import", args.lock_timeout) as lock:
        if args.name in ws.observe().servings:
            raise importer.ImportRefused(f"serving {args.name!r} is already managed by this project")
        found = backend.find_unmanaged(args.name)  # type: ignore[attr-defined]
        if not found:
            raise importer.ImportRefused(
                f"no container named {args.name} or {args.name}-<n> runs {backend.settings.image}")  # type: ignore[attr-defined]
        draft = importer.spec_from_containers(args.name, found, ws.project, None)
        served = backend.served_by(found, draft["spec"]["model"]["name"])  # type: ignore[attr-defined]
        doc = importer.spec_from_containers(args.name, found, ws.project, served)
        path = importer.spec_path(ws.project, args.name)
        if path.exists():
            raise importer.ImportRefused(f"{path} exists already")
        desired = importer.desired_of(doc, ws.project, path)
        print(f"Adopting {', '.join(a['Name'].lstrip('/') for a in found)} as serving {args.name!r} "
              f"(model {desired.spec.model.name} version {desired.version}, {desired.spec.instances} instance(s))")
        change = ResourceChange("serving", args.name, Action.CREATE, ())
        outcomes = [Outcome(change.address, change.action, Status.DONE)]
        backend.apply_change(change, desired, None, lambda m: print(f"{change.address}: {m}", flush=True))
        backend.remove_containers([a["Id"] for a in found])  # type: ignore[attr-defined]
        importer.write_spec(path, doc, "https://declserve.io/schema/v1/serving.schema.json")
        from declserve.plan import Plan

        ws.record(Plan(ws.project.name, backend.identity(), (change,), ""), outcomes, "import", lock)
    print(f"Wrote {path}; the serving is managed now.")
    return 0


def unprotect(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))
    if ws.backend.unprotect(args.name):
        print(f"Serving {args.name!r} is no longer protected; --prune or destroy may now delete it.")
    else:
        print(f"Serving {args.name!r} was not protected.")
    return 0


def status(args: argparse.Namespace) -> int:
    from declserve.status import project_status

    ws = Workspace.open(Path(args.directory))
    rows = project_status(ws.desired, ws.observe(), args.name)
    if args.name and not rows:
        raise InputError.one(f"there is no serving named {args.name!r}", field="NAME")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        served = ",".join(map(str, row["servedVersions"])) or "-"
        wanted = row["instancesDesired"] if row["instancesDesired"] is not None else "-"
        print(f"{row['name']:<20} {row['state']:<8} model {row['model']} v{row['configuredVersion']} "
              f"(served: {served})  instances {row['instancesRunning']}/{wanted}  topic {row['topic'] or '-'}")
        if row["loggingEndpoint"]:
            print(f"{'':<20} {row['loggingEndpoint']}  (logs to topic {row['topic']})")
        for endpoint in row["endpoints"]:
            print(f"{'':<20} {endpoint}")
    return 0


def logs(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))
    if args.name not in ws.desired and args.name not in ws.observe().servings:
        raise InputError.one(f"there is no serving named {args.name!r}", field="NAME")
    for replica, text in ws.backend.logs(args.name, args.tail):
        for line in text.splitlines():
            print(f"{replica} | {line}")
    return 0


__all__ = ["LockHeld"]
