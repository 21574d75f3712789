"""The command line: flags, dispatch to `commands`, and exit codes.

Exit codes follow Terraform: 0 success or no changes, 1 error, 2 changes present (only with
`plan --detailed-exitcode`). Bad flags are input errors too, so they exit 1, not argparse's 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence

# pydantic looks for plugins by scanning every installed distribution's entry points, a tenth
# of a second on each run; declserve uses none, so the command line skips the scan.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from declserve import __version__, commands  # noqa: E402
from declserve.errors import DeclserveError, InputError  # noqa: E402
from declserve.lock import parse_duration  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(1, f"declserve: error: {message} (see '{self.prog} --help')\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _change_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prune", action="store_true", help="delete servings that have no spec")
    p.add_argument("--delete-topics", action="store_true",
                   help="delete managed topics no serving logs to (their records are lost)")
    p.add_argument("--allow-empty", action="store_true",
                   help="allow --prune to delete every serving of the project")
    p.add_argument("--target", action="append", metavar="NAME",
                   help="only this serving and what it depends on (repeatable)")
    p.add_argument("--no-color", action="store_true", help="never colour the output")


def _apply_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--auto-approve", action="store_true", help="do not ask before applying")
    p.add_argument("--parallelism", type=_positive, default=10, metavar="N",
                   help="changes carried out at once (default 10)")
    p.add_argument("--lock-timeout", type=_duration, default=0.0, metavar="DURATION",
                   help="wait this long (30s, 5m) for another run's lock (default 0s)")


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
    p.set_defaults(func=commands.validate)

    p = sub.add_parser("plan", parents=[common], help="show what apply would change")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the plan as JSON")
    out.add_argument("--markdown", action="store_true", help="print Markdown for a pull request")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 2 when there are changes, 0 when none, 1 on error")
    p.add_argument("--out", metavar="FILE", help="save the plan for `declserve apply FILE`")
    p.add_argument("--lock", action="store_true", help="hold the project lock while planning")
    p.add_argument("--lock-timeout", type=_duration, default=0.0, metavar="DURATION",
                   help="with --lock: wait this long for another run's lock")
    _change_flags(p)
    p.set_defaults(func=commands.plan)

    p = sub.add_parser("apply", parents=[common], help="carry out the plan (or a saved plan)")
    p.add_argument("planfile", nargs="?", metavar="PLANFILE", help="a plan saved by `plan --out`")
    _change_flags(p)
    _apply_flags(p)
    p.set_defaults(func=commands.apply)

    p = sub.add_parser("destroy", parents=[common], help="delete every serving of the project")
    p.add_argument("--delete-topics", action="store_true", help="also delete the managed topics")
    p.add_argument("--target", action="append", metavar="NAME", help="only this serving (repeatable)")
    p.add_argument("--no-color", action="store_true", help="never colour the output")
    _apply_flags(p)
    p.set_defaults(func=commands.destroy, prune=True, allow_empty=True)

    p = sub.add_parser("status", parents=[common], help="state, versions, instances, endpoints")
    p.add_argument("name", nargs="?", help="one serving (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also list each member (replica, pod) with its own address")
    p.set_defaults(func=commands.status)

    p = sub.add_parser("logs", parents=[common], help="show a serving's logs")
    p.add_argument("name", help="the serving")
    p.add_argument("--tail", type=_positive, default=100, metavar="N", help="lines per member")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C")
    p.set_defaults(func=commands.logs)

    p = sub.add_parser("force-unlock", parents=[common], help="remove a lock left by a dead run")
    p.add_argument("lock_id", metavar="ID", help="the lock id, as the lock error shows it")
    p.set_defaults(func=commands.force_unlock)

    p = sub.add_parser("history", parents=[common], help="list the recorded applies")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=commands.history)

    p = sub.add_parser("import", parents=[common], help="adopt a serving started by hand")
    p.add_argument("name", help="the serving: objects made by hand named NAME (or NAME-<n>)")
    p.add_argument("--auto-approve", action="store_true", help="do not ask before adopting")
    p.add_argument("--lock-timeout", type=_duration, default=0.0, metavar="DURATION",
                   help="wait this long for another run's lock (default 0s)")
    p.set_defaults(func=commands.import_)

    p = sub.add_parser("unprotect", parents=[common], help="lift a serving's protection")
    p.add_argument("name", help="the serving")
    p.set_defaults(func=commands.unprotect)

    p = sub.add_parser("schema", help="print the JSON Schema of a kind")
    p.add_argument("kind", nargs="?", help="Serving, Project or Plan (default: all)")
    p.add_argument("--write", metavar="DIR", help="write every schema file into DIR")
    p.set_defaults(func=commands.schema)
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
