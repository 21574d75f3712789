"""The command line: parses flags, calls the core, prints, and maps outcomes to exit codes.

Exit codes follow Terraform: 0 success or no changes, 1 error, 2 changes present (only with
`plan --detailed-exitcode`). Bad flags are input errors too, so they exit 1, not argparse's 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from declserve import __version__, schemas
from declserve.errors import DeclserveError, InputError
from declserve.loader import collect


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
