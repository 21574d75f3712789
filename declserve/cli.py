"""The command line: flags, dispatch to `commands`, and how every failure reaches the user.

Exit codes follow Terraform: 0 success or no changes, 1 error, 2 changes present (only with
`plan --detailed-exitcode`), 130 interrupted. Bad flags are input errors too, so they exit 1, not
argparse's 2. Every error line on stderr starts with `declserve: error: `; no failure ends in a
traceback unless `--debug` is given (anywhere on the command line).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

# pydantic looks for plugins by scanning every installed distribution's entry points, a tenth
# of a second on each run; declserve uses none, so the command line skips the scan.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from declserve import __version__, commands  # noqa: E402
from declserve.errors import DeclserveError, InputError, error_lines, shell_command  # noqa: E402
from declserve.lock import LockHeld, parse_duration  # noqa: E402

DESCRIPTION = """\
Keep model servings (TensorFlow Serving, KServe) and their inference-logging Kafka topics in
line with YAML specs: `declserve plan` shows what would change, `declserve apply` carries it out."""
EPILOG = """\
Exit codes: 0 success or no changes, 1 error, 2 changes present (plan --detailed-exitcode).
Run `declserve COMMAND --help` for the flags of a command."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(1, error_lines(f"{message} (see '{self.prog} --help')"))


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
    p.add_argument(
        "--delete-topics",
        action="store_true",
        help="delete managed topics no serving logs to (their records are lost)",
    )
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="allow --prune to delete every serving of the project",
    )
    p.add_argument(
        "--target",
        action="append",
        metavar="NAME",
        help="only this serving and what it depends on (repeatable)",
    )
    p.add_argument("--no-color", action="store_true", help="never colour the output")


def _apply_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--auto-approve", action="store_true", help="do not ask before applying")
    p.add_argument(
        "--parallelism",
        type=_positive,
        default=10,
        metavar="N",
        help="changes carried out at once (default 10)",
    )
    p.add_argument(
        "--lock-timeout",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="wait this long (30s, 5m, 1h30m) for another run's lock (default 0s)",
    )
    _keep_flag(p)


def _keep_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep", type=_positive, default=100, metavar="N",
                   help="history entries the project keeps, oldest dropped first (default 100)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="declserve",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"declserve {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    # --debug is accepted after the subcommand too; SUPPRESS keeps a subcommand from resetting
    # what was given before it.
    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show a traceback on errors"
    )
    common = _Parser(add_help=False, parents=[debug])
    common.add_argument(
        "-C",
        dest="directory",
        default=".",
        metavar="DIR",
        help="project directory holding declserve.yaml (default: .)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", parents=[common], help="check the specs without a backend")
    p.add_argument("--json", action="store_true", help="print the problems as JSON")
    p.set_defaults(func=commands.validate)

    p = sub.add_parser("plan", parents=[common], help="show what apply would change")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the plan as JSON")
    out.add_argument("--markdown", action="store_true", help="print Markdown for a pull request")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when there are changes, 0 when none, 1 on error",
    )
    p.add_argument("--out", metavar="FILE", help="save the plan for `declserve apply FILE`")
    p.add_argument(
        "--manifests",
        metavar="DIR",
        help="also write the objects apply would send for every serving in the specs (changed "
        "or not), one YAML file each, into DIR (new or empty), for another tool's diff",
    )
    p.add_argument("--lock", action="store_true", help="hold the project lock while planning")
    p.add_argument(
        "--lock-timeout",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="with --lock: wait this long for another run's lock",
    )
    _change_flags(p)
    p.set_defaults(func=commands.plan)

    p = sub.add_parser("apply", parents=[common], help="carry out the plan (or a saved plan)")
    p.add_argument("planfile", nargs="?", metavar="PLANFILE", help="a plan saved by `plan --out`")
    _change_flags(p)
    _apply_flags(p)
    p.set_defaults(func=commands.apply)

    p = sub.add_parser("destroy", parents=[common], help="delete every serving of the project")
    p.add_argument("--delete-topics", action="store_true", help="also delete the managed topics")
    p.add_argument(
        "--target", action="append", metavar="NAME", help="only this serving (repeatable)"
    )
    p.add_argument("--no-color", action="store_true", help="never colour the output")
    _apply_flags(p)
    p.set_defaults(func=commands.destroy, prune=True, allow_empty=True)

    p = sub.add_parser("status", parents=[common], help="state, versions, instances, endpoints")
    p.add_argument("name", nargs="?", help="one serving (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also list each member (replica, pod) with its own address",
    )
    p.set_defaults(func=commands.status)

    p = sub.add_parser("logs", parents=[common], help="show a serving's logs")
    p.add_argument("name", help="the serving")
    p.add_argument("--tail", type=_positive, default=100, metavar="N", help="lines per member")
    p.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C"
    )
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
    _keep_flag(p)
    p.add_argument(
        "--lock-timeout",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="wait this long for another run's lock (default 0s)",
    )
    p.set_defaults(func=commands.import_)

    p = sub.add_parser("unprotect", parents=[common], help="lift a serving's protection")
    p.add_argument("name", help="the serving")
    p.set_defaults(func=commands.unprotect)

    p = sub.add_parser("schema", parents=[debug], help="print the JSON Schema of a kind")
    p.add_argument(
        "kind",
        nargs="?",
        metavar="KIND",
        help="Serving, Project or Plan, in any case (default: all, as one JSON object)",
    )
    p.add_argument(
        "--write",
        metavar="DIR",
        help="write the schema file of KIND (default: of every kind) into DIR",
    )
    p.set_defaults(func=commands.schema)
    return parser


class _BadPath(DeclserveError):
    """A path given on the command line that cannot be used."""


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse unusable output paths before anything is read or contacted: a typo in `--out`
    must not cost a plan against the backend, nor `--write` a half-written set of files."""
    out = getattr(args, "out", None)
    if out:
        path, parent = Path(out), Path(out).parent
        if path.is_dir():
            raise _BadPath(f"--out: {out!r} is a directory, not a file name")
        if not parent.is_dir():
            raise _BadPath(
                f"--out: cannot save the plan to {out!r}: "
                f"the directory {str(parent)!r} does not exist"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise _BadPath(
                f"--out: cannot save the plan to {out!r}: "
                f"the directory {str(parent)!r} is not writable"
            )
    manifests = getattr(args, "manifests", None)
    if manifests:
        path = Path(manifests)
        if path.exists() and not path.is_dir():
            raise _BadPath(f"--manifests: {manifests!r} is not a directory")
        if path.is_dir() and any(path.iterdir()):
            raise _BadPath(
                f"--manifests: the directory {manifests!r} is not empty; give a new or empty "
                "one, so that it holds this plan's manifests only"
            )
        if not path.exists() and not path.parent.is_dir():
            raise _BadPath(
                f"--manifests: cannot make {manifests!r}: the directory "
                f"{str(path.parent)!r} does not exist"
            )
    write = getattr(args, "write", None)
    if write and not Path(write).is_dir():
        what = "is not a directory" if Path(write).exists() else "does not exist"
        raise _BadPath(f"--write: the directory {write!r} {what}")


def _report(exc: BaseException, args: argparse.Namespace) -> str:
    """The error lines for a failure: one sentence each, never a traceback."""
    if isinstance(exc, InputError):
        return "".join(error_lines(p.format()) for p in exc.problems)
    if isinstance(exc, LockHeld):
        unlock = shell_command("force-unlock", getattr(args, "directory", "."), exc.holder.id)
        return error_lines(f"{exc}; {exc.hint(unlock)}")
    if isinstance(exc, DeclserveError):
        return error_lines(str(exc))
    if isinstance(exc, KeyboardInterrupt):
        return error_lines("interrupted")
    hint = "" if args.debug else " (run with --debug for the traceback)"
    message = " ".join(str(exc).split())  # an SDK's message may span lines
    what = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return error_lines(f"internal error: {what}{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_paths(args)
        return int(args.func(args))
    except BrokenPipeError:
        # The reader of stdout went away (`declserve plan | head`): nothing left to tell it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (Exception, KeyboardInterrupt) as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(_report(exc, args))
        return 130 if isinstance(exc, KeyboardInterrupt) else 1


if __name__ == "__main__":
    sys.exit(main())
