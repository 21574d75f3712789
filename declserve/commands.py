"""One function per CLI command: load, act through the workflow, print, return an exit code.

Flags are parsed in `cli`; everything here receives the parsed namespace. Output that a user
reads goes to stdout, problems to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from declserve import render
from declserve.apply import Outcome, Status, execute_plan
from declserve.errors import DeclserveError, InputError
from declserve.loader import collect
from declserve.lock import LockHeld, LockInfo, project_lock
from declserve.plan import Plan
from declserve.provider import ManifestWriter
from declserve.workflow import Workspace


class StalePlan(DeclserveError):
    """A saved plan whose live state changed since it was made."""


def _colour(args: argparse.Namespace) -> bool:
    return (
        sys.stdout.isatty()
        and not getattr(args, "no_color", False)
        and "NO_COLOR" not in os.environ
    )


def _targets(args: argparse.Namespace) -> frozenset[str] | None:
    return frozenset(args.target) if getattr(args, "target", None) else None


def _guards(args: argparse.Namespace) -> frozenset[str]:
    """The flags given that let a plan delete what has no spec."""
    flags = {"--prune": "prune", "--delete-topics": "delete_topics"}
    return frozenset(flag for flag, attr in flags.items() if getattr(args, attr, False))


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


def _manifest_writer(ws: Workspace) -> ManifestWriter:
    if not isinstance(ws.backend, ManifestWriter):
        kind = ws.project.project.spec.backend.type
        raise DeclserveError(
            f"--manifests: the {kind} backend does not apply manifests, so it has none to write"
        )
    return ws.backend


def _write_manifests(
    ws: Workspace, writer: ManifestWriter, directory: Path, targets: frozenset[str] | None
) -> None:
    """One YAML file per object apply would write, for every serving in the specs (or the
    targeted ones): the same input for another tool's diff, changed or not."""
    import yaml

    names = sorted(n for n in ws.desired if targets is None or n in targets)
    count = 0
    try:
        directory.mkdir(exist_ok=True)
        for name in names:
            for key, doc in sorted(writer.manifests(ws.desired[name]).items()):
                path = directory / f"{name}.{key.lower()}.yaml"
                path.write_text(yaml.safe_dump(doc, sort_keys=False))
                count += 1
    except OSError as exc:
        raise DeclserveError(f"cannot write the manifests to {directory}: {exc.strerror}") from exc
    print(f"Wrote {count} manifests of {len(names)} servings to {directory}", file=sys.stderr)


def plan(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))
    writer = _manifest_writer(ws) if getattr(args, "manifests", None) else None

    def make() -> Plan:
        return ws.plan(
            ws.observe(), guards=_guards(args), targets=_targets(args), allow_empty=args.allow_empty
        )

    if args.lock:
        with project_lock(ws.backend, "plan", args.lock_timeout):
            result = make()
    else:
        result = make()
    _print_plan(result, args)
    if args.out:  # cli checked its directory before planning
        from declserve import savedplan
        from declserve.errors import shell_command

        options = {
            "prune": args.prune,
            "delete_topics": args.delete_topics,
            "targets": sorted(args.target or []),
        }
        try:
            savedplan.write(Path(args.out), result, ws.desired, options)
        except OSError as exc:
            raise DeclserveError(f"cannot save the plan to {args.out}: {exc.strerror}") from exc
        again = shell_command("apply", args.directory, args.out)
        print(f"Saved the plan to {args.out}; apply exactly it with: {again}", file=sys.stderr)
    if writer is not None:
        _write_manifests(ws, writer, Path(args.manifests), _targets(args))
    return 2 if args.detailed_exitcode and not result.summary.empty else 0


def _confirm(prompt: str) -> bool:
    print(prompt, end=" ", flush=True)
    try:
        answer = input()
    except EOFError:
        print()
        return False
    return answer.strip() == "yes"


class _Interrupts:
    """Terraform's Ctrl-C: the first stops gracefully, the second at once."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._previous: object = None

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            print(
                "\nTwo interrupts received: exiting at once. Changes in progress may be left "
                "half done, and the project lock may be left behind; `declserve force-unlock "
                "ID` clears it.",
                file=sys.stderr,
                flush=True,
            )
            os._exit(130)
        self.stop.set()
        print(
            "\nInterrupt received: no new step will start; waiting for the running steps to "
            "finish (press Ctrl-C again to exit at once).",
            file=sys.stderr,
            flush=True,
        )


def _execute(
    ws: Workspace, result: Plan, args: argparse.Namespace, interrupts: _Interrupts
) -> list[Outcome]:
    tty = sys.stdout.isatty()
    lock = threading.Lock()  # events come from worker threads; one whole line at a time

    def event(address: str, message: str) -> None:
        stamp = time.strftime("%H:%M:%S ") if tty else ""
        with lock:
            sys.stdout.write(f"{stamp}{address}: {message}\n")
            sys.stdout.flush()

    return execute_plan(
        result, ws.runner(), parallelism=args.parallelism, event=event, stop=interrupts.stop
    )


def _finish(outcomes: list[Outcome], interrupted: bool) -> int:
    failed = any(o.status is not Status.DONE for o in outcomes)
    out = sys.stderr if failed or interrupted else sys.stdout
    print(render.render_outcomes(outcomes, interrupted=interrupted), end="", file=out)
    if interrupted:
        return 130
    return 1 if failed else 0


def _run(
    ws: Workspace, result: Plan, args: argparse.Namespace, operation: str, lock: LockInfo
) -> int:
    with _Interrupts() as interrupts:
        outcomes = _execute(ws, result, args, interrupts)
    interrupted = interrupts.stop.is_set()
    ws.record(result, outcomes, operation, lock, interrupted=interrupted, keep=args.keep)
    return _finish(outcomes, interrupted)


def _apply_saved(ws: Workspace, args: argparse.Namespace) -> int:
    from declserve import savedplan

    path = Path(args.planfile)
    saved, desired, _options = savedplan.read(path)
    if saved.project != ws.project.name:
        raise InputError.one(
            f"the plan is for project {saved.project!r}, not {ws.project.name!r}", file=str(path)
        )
    if saved.backend != ws.backend.identity():
        raise InputError.one(
            f"the plan is for backend {saved.backend}, not {ws.backend.identity()}", file=str(path)
        )
    ws.desired = desired
    with project_lock(ws.backend, "apply", args.lock_timeout) as lock:
        live = ws.observe()
        if live.fingerprint() != saved.live_fingerprint:
            raise StalePlan(
                f"{path}: the plan is stale: the live state changed since it was "
                "made; run plan again"
            )
        print(render.render_text(saved, _colour(args)), end="")
        if saved.summary.empty:
            return 0
        return _run(ws, saved, args, "apply " + path.name, lock)


def apply(args: argparse.Namespace, *, destroy: bool = False) -> int:
    ws = Workspace.open(Path(args.directory))
    if getattr(args, "planfile", None):
        return _apply_saved(ws, args)
    if destroy:
        ws.desired = {}
    operation = "destroy" if destroy else "apply"
    with project_lock(ws.backend, operation, args.lock_timeout) as lock:
        live = ws.observe()
        result = ws.plan(
            live,
            guards=_guards(args),
            targets=_targets(args),
            allow_empty=args.allow_empty,
            destroy=destroy,
        )
        print(render.render_text(result, _colour(args)), end="")
        if result.summary.empty:
            ws.record(result, [], operation, lock, keep=args.keep)
            return 0
        question = "destroy these servings" if destroy else "perform these actions"
        if not args.auto_approve and not _confirm(
            f"\nDo you want to {question}? Only 'yes' will be accepted:"
        ):
            print("Cancelled; nothing was changed.", file=sys.stderr)
            return 1
        return _run(ws, result, args, operation, lock)


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
            "shows",
            field="ID",
        )
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
        when = e["time"][:19].replace("T", " ")
        print(
            f"{when}  {e['outcome']:<11}  {e['operation']:<10}  {e['user']}@{e['host']}  "
            f"commit {e.get('commit') or '-'}  +{s['add']} ~{s['change']} -{s['destroy']}"
        )
    return 0


def import_(args: argparse.Namespace) -> int:
    from declserve import importer
    from declserve.spec import DNS1123_LABEL

    if not re.match(DNS1123_LABEL, args.name):
        raise InputError.one(
            f"{args.name!r} is not a DNS-1123 label, so it cannot name a serving", field="NAME"
        )
    ws = Workspace.open(Path(args.directory))
    if args.name in ws.desired:
        raise importer.ImportRefused(
            f"serving {args.name!r} already has a spec ({ws.desired[args.name].source})"
        )
    with project_lock(ws.backend, "import", args.lock_timeout) as lock:
        if f"{ws.backend.kind}.{args.name}" in ws.observe().resources:
            raise importer.ImportRefused(
                f"serving {args.name!r} is already managed by this project"
            )
        found = ws.backend.find_adoption(args.name)
        if found is None:
            raise importer.ImportRefused(
                f"nothing named {args.name} made by hand was found on {ws.backend.identity()}"
            )
        path = importer.spec_path(ws.project, args.name)
        if path.exists():
            raise importer.ImportRefused(f"{path} exists already")
        desired = importer.desired_of(found.document, ws.project, path)
        print(
            f"Adopting {args.name!r} (model {desired.spec.model.name} version {desired.version}, "
            f"{desired.spec.instances} instance(s)); declserve will:"
        )
        for line in found.preview:
            print(f"  - {line}")
        print(f"  - write {path}")
        if not getattr(args, "auto_approve", False) and not _confirm(
            "\nDo you want to adopt it? Only 'yes' will be accepted:"
        ):
            print("Cancelled; nothing was changed.", file=sys.stderr)
            return 1
        result = importer.adoption_plan(ws.project.name, ws.backend.identity(), desired)
        with _Interrupts():
            found.adopt(desired, importer.context(args.name))
        importer.write_spec(path, found.document, importer.schema_ref(path, ws.project))
        ws.record(result, [importer.done(result)], "import", lock, keep=args.keep)
    print(f"Wrote {path}; the serving is managed now.")
    return 0


def unprotect(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))
    if ws.backend.unprotect(args.name):
        print(
            f"Serving {args.name!r} is no longer protected; --prune or destroy may now delete it."
        )
    else:
        print(f"Serving {args.name!r} was not protected.")
    return 0


def status(args: argparse.Namespace) -> int:
    from declserve.status import print_status, project_status

    ws = Workspace.open(Path(args.directory))
    uses = {
        w.resource.name: w.resource.depends_on
        for w in ws.wanted().values()
        if w.resource.kind == ws.backend.kind
    }
    rows = project_status(ws.desired, ws.observe_for_status(), ws.backend.kind, uses, args.name)
    if args.name and not rows:
        raise InputError.one(f"there is no serving named {args.name!r}", field="NAME")
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_status(rows, verbose=getattr(args, "verbose", False))
    return 0


def logs(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))
    known = args.name in ws.desired or f"{ws.backend.kind}.{args.name}" in ws.observe().resources
    if not known:
        raise InputError.one(f"there is no serving named {args.name!r}", field="NAME")
    follow = getattr(args, "follow", False)
    try:
        for member, line in ws.backend.logs(args.name, args.tail, follow):
            print(f"{member} | {line}", flush=follow)
    except KeyboardInterrupt:
        if not follow:
            raise
    return 0


__all__ = ["LockHeld"]
