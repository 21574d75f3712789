"""The command line: parses flags, calls the core, prints, and maps outcomes to exit codes.

Exit codes follow Terraform: 0 success or no changes, 1 error, 2 changes present (only with
`plan --detailed-exitcode`). Bad flags are input errors too, so they exit 1, not argparse's 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import NoReturn, Sequence

from declserve import __version__, render
from declserve.apply import Status, execute_plan
from declserve.errors import DeclserveError, InputError
from declserve.loader import collect
from declserve.workflow import Workspace


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(1, f"declserve: error: {message} (see '{self.prog} --help')\n")


def _cmd_validate(args: argparse.Namespace) -> int:
    _, problems = collect(Path(args.directory))
    if args.json:
        print(json.dumps([p.to_json() for p in problems], indent=2))
    else:
        for problem in problems:
            print(problem.format(), file=sys.stderr)
        if not problems:
            print(f"{args.directory}: valid")
    return 1 if problems else 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from declserve import schemas

    if args.kind is None:
        for name, text in schemas.all_files().items():
            if args.write:
                (Path(args.write) / name).write_text(text)
            else:
                print(f"# {name}")
                print(text, end="")
        return 0
    if args.kind not in schemas.KINDS:
        known = ", ".join(schemas.KINDS)
        raise InputError.one(f"unknown kind {args.kind!r}; known kinds: {known}")
    print(schemas.render(args.kind), end="")
    return 0


def _colour(args: argparse.Namespace) -> bool:
    import os

    return sys.stdout.isatty() and not args.no_color and "NO_COLOR" not in os.environ


def _cmd_plan(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))
    plan = ws.plan(ws.observe(), prune=args.prune, delete_topics=args.delete_topics)
    if args.json:
        from declserve import planfile

        print(planfile.to_json(plan))
    elif args.markdown:
        print(render.render_markdown(plan), end="")
    else:
        print(render.render_text(plan, _colour(args)), end="")
    return 2 if args.detailed_exitcode and not plan.summary.empty else 0


def _confirm(prompt: str) -> bool:
    print(prompt, end=" ", flush=True)
    try:
        answer = input()
    except EOFError:
        print()
        return False
    return answer.strip() == "yes"


def _cmd_apply(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))
    live = ws.observe()
    plan = ws.plan(live, prune=args.prune, delete_topics=args.delete_topics)
    print(render.render_text(plan, _colour(args)), end="")
    if plan.summary.empty:
        return 0
    if not args.auto_approve and not _confirm(
        "\nDo you want to perform these actions? Only 'yes' will be accepted:"
    ):
        print("Apply cancelled; nothing was changed.", file=sys.stderr)
        return 1
    tty = sys.stdout.isatty()

    def event(address: str, message: str) -> None:
        stamp = time.strftime("%H:%M:%S") if tty else ""
        print(f"{stamp} {address}: {message}".strip(), flush=True)

    outcomes = execute_plan(plan, ws.runner(live), parallelism=args.parallelism, event=event)
    report = render.render_outcomes(outcomes)
    failed = any(o.status is not Status.DONE for o in outcomes)
    print(report, end="", file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _cmd_status(args: argparse.Namespace) -> int:
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
        print(
            f"{row['name']:<20} {row['state']:<8} model {row['model']} v{row['configuredVersion']} "
            f"(served: {served})  instances {row['instancesRunning']}/{wanted}  "
            f"topic {row['topic'] or '-'}"
        )
        for endpoint in row["endpoints"]:
            print(f"{'':<20} {endpoint}")
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    ws = Workspace.open(Path(args.directory))
    if args.name not in ws.desired and args.name not in ws.observe().servings:
        raise InputError.one(f"there is no serving named {args.name!r}", field="NAME")
    for replica, text in ws.backend.logs(args.name, args.tail):
        for line in text.splitlines():
            print(f"{replica} | {line}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="declserve", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"declserve {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common = _Parser(add_help=False)
    common.add_argument("-C", dest="directory", default=".", metavar="DIR",
                        help="project directory holding declserve.yaml (default: .)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", parents=[common], help="check the specs without a backend")
    p.add_argument("--json", action="store_true", help="print the problems as JSON")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("plan", parents=[common], help="show what apply would change")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the plan as JSON")
    out.add_argument("--markdown", action="store_true", help="print Markdown for a pull request")
    p.add_argument("--no-color", action="store_true", help="never colour the output")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 2 when there are changes, 0 when none, 1 on error")
    p.add_argument("--prune", action="store_true", help="delete servings that have no spec")
    p.add_argument("--delete-topics", action="store_true",
                   help="delete managed topics no serving logs to (their records are lost)")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("apply", parents=[common], help="carry out the plan")
    p.add_argument("--auto-approve", action="store_true", help="do not ask before applying")
    p.add_argument("--prune", action="store_true", help="delete servings that have no spec")
    p.add_argument("--delete-topics", action="store_true",
                   help="delete managed topics no serving logs to (their records are lost)")
    p.add_argument("--parallelism", type=_positive, default=10, metavar="N",
                   help="changes carried out at once (default 10)")
    p.add_argument("--no-color", action="store_true", help="never colour the output")
    p.set_defaults(func=_cmd_apply)

    p = sub.add_parser("status", parents=[common], help="state, versions, instances, endpoints")
    p.add_argument("name", nargs="?", help="one serving (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("logs", parents=[common], help="show a serving's logs")
    p.add_argument("name", help="the serving")
    p.add_argument("--tail", type=_positive, default=100, metavar="N", help="lines per replica")
    p.set_defaults(func=_cmd_logs)

    p = sub.add_parser("schema", help="print the JSON Schema of a kind")
    p.add_argument("kind", nargs="?", help="Serving or Project (default: all)")
    p.add_argument("--write", metavar="DIR", help="write every schema file into DIR")
    p.set_defaults(func=_cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as exc:
        for problem in exc.problems:
            print(problem.format(), file=sys.stderr)
        return 1
    except DeclserveError as exc:
        if args.debug:
            raise
        print(f"declserve: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("declserve: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
