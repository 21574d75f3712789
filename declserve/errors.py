"""The error vocabulary: user-facing problems with a place, and errors raised by backends.

A `Problem` points at a file, line, column and field; `DeclserveError` and its children carry one
sentence for the user. Backend SDK errors are wrapped into these, raised `from` the original, so
the CLI never shows a traceback unless `--debug` is given.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ERROR_PREFIX = "declserve: error: "


def error_lines(text: str) -> str:
    """`text` as the CLI prints an error: every line prefixed, so each stands on its own."""
    return "".join(f"{ERROR_PREFIX}{line}\n" for line in text.splitlines() or [""])


def shell_command(subcommand: str, directory: str, *args: str) -> str:
    """A declserve command line that works when pasted in the current directory: with `-C DIR`
    when the project is elsewhere, every word quoted for a POSIX shell. `args` are paths or
    ids; a path that starts with '-' gets './' so that it is not read as a flag."""

    def word(text: str) -> str:
        return shlex.quote("./" + text if text.startswith("-") else text)

    words = ["declserve", subcommand]
    if Path(directory).resolve() != Path.cwd().resolve():
        words += ["-C", word(directory)]
    return " ".join(words + [word(a) for a in args])


class DeclserveError(Exception):
    """An error with a message fit to show a user as it is."""


class InputError(DeclserveError):
    """Bad input (YAML, spec, plan file, flags); carries the problems found, each with a place."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.format() for p in problems))

    @classmethod
    def one(cls, message: str, file: str = "<command line>", field: str = "") -> InputError:
        return cls([Problem(file, 0, 0, field, message)])


class BackendUnavailable(DeclserveError):
    """The backend (Docker engine, API server, Kafka) cannot be reached."""


class Conflict(DeclserveError):
    """An object in the backend is in the way: unmanaged, or managed by another project."""


class Rejected(DeclserveError):
    """The backend refused a request."""


class NotReady(DeclserveError):
    """A serving did not become ready before its deadline."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, and where."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def format(self) -> str:
        where = display_path(self.file)
        if self.line:
            where += f":{self.line}:{self.column}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["file"] = display_path(self.file)
        return data


def display_path(path: str) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


class NotFound(DeclserveError):
    """An object the backend was asked about does not exist (any more)."""
