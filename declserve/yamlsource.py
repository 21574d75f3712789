"""YAML text to plain data, keeping where every key and value stood.

Safe loading only: the node tree is composed with PyYAML's safe parser and turned into dicts,
lists and scalars here, so that duplicate keys, non-string keys, unknown tags and recursive
anchors are refused with their line and column, and each path in the data keeps its position for
later error messages. Plain scalars are read as YAML 1.2 (core schema), as editors and the JSON
Schema see them: `yes`, `on`, `2024-01-01` and `1_000` are strings and `010` is ten, not the
YAML 1.1 booleans, dates and octals PyYAML would make of them. The `<<` merge key is kept.
This module knows nothing of specs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from declserve.errors import Problem

Path_ = tuple[str | int, ...]

_STD_TAGS = {
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:merge",
}
# libyaml's parser when PyYAML has it: composing is most of the time spent loading specs.
_PARSER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Aliases can make a small file expand enormously; specs are never this large or this deep.
MAX_NODES = 200_000
MAX_DEPTH = 100

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$"
)


class _Core12Loader(_PARSER):  # type: ignore[valid-type,misc]
    """The safe parser with the YAML 1.2 core schema's implicit types (plus the merge key)."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


for _tag, _regexp, _first in (
    ("null", _NULL, ["~", "n", "N", ""]),
    ("bool", _BOOL, list("tTfF")),
    ("int", _INT, list("-+0123456789")),
    ("float", _FLOAT, list("-+.0123456789")),
    ("merge", re.compile(r"^(?:<<)$"), ["<"]),
):
    _Core12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", _regexp, _first)


@dataclass
class Document:
    """One YAML document: its data and the position (line, column; 1-based) of every path."""

    file: Path
    index: int
    data: Any
    line: int
    column: int
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """The closest known position of `path`: the key itself, or its nearest ancestor."""
        for cut in range(len(path), -1, -1):
            sub = path[:cut]
            if key and sub in self.keys:
                return self.keys[sub]
            if sub in self.values:
                return self.values[sub]
        return (self.line, self.column)

    def problem(self, path: Path_, message: str, *, key: bool = False) -> Problem:
        line, column = self.position(path, key=key)
        return Problem(str(self.file), line, column, format_path(path), message)


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _mark(node: Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Walker:
    def __init__(self, doc: Document, problems: list[Problem]) -> None:
        self.doc = doc
        self.problems = problems
        self.constructor = yaml.SafeLoader("")  # its SafeConstructor flattens merge keys
        self.count = 0

    def fail(self, node: Node, path: Path_, message: str) -> None:
        line, column = _mark(node)
        self.problems.append(Problem(str(self.doc.file), line, column, format_path(path), message))

    def walk(self, node: Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge(node)
        self.doc.values[path] = _mark(node)
        if node.tag not in _STD_TAGS:
            self.fail(node, path, f"the YAML tag {node.tag} is not allowed (safe YAML only)")
            return None
        if isinstance(node, ScalarNode):
            try:
                return scalar_value(node)
            except ValueError as exc:
                self.fail(node, path, f"cannot read this value: {exc}")
                return None
        if isinstance(node, SequenceNode):
            return [self.walk(child, path + (i,)) for i, child in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        try:
            self.constructor.flatten_mapping(node)
        except yaml.YAMLError as exc:
            self.fail(node, path, f"cannot merge this mapping: {getattr(exc, 'problem', exc)}")
            return {}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag not in _STD_TAGS:
                self.fail(key_node, path, "a key must be a plain string")
                continue
            try:
                key = scalar_value(key_node)
            except ValueError as exc:
                self.fail(key_node, path, f"cannot read this key: {exc}")
                continue
            if not isinstance(key, str):
                self.fail(key_node, path, f"the key {key_node.value!r} must be a string (quote it)")
                continue
            if key in out:
                first = self.doc.keys[path + (key,)][0]
                self.fail(key_node, path + (key,), f"duplicate key {key!r} (first at line {first})")
                continue
            self.doc.keys[path + (key,)] = _mark(key_node)
            out[key] = self.walk(value_node, path + (key,))
        return out


class _TooLarge(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


def scalar_value(node: ScalarNode) -> Any:
    """A scalar as YAML 1.2's core schema reads it; ValueError when its tag does not fit."""
    kind = node.tag.rsplit(":", 1)[-1]
    text = node.value
    if kind == "str":
        return text
    if kind == "null" and _NULL.match(text):
        return None
    if kind == "bool" and _BOOL.match(text):
        return text.lower() == "true"
    if kind == "int" and _INT.match(text):
        base = 8 if text.startswith("0o") else 16 if text.startswith("0x") else 10
        return int(text[2:] if base != 10 else text, base)
    if kind == "float" and _FLOAT.match(text):
        lowered = text.lower()
        if lowered.endswith(".nan"):
            return math.nan
        if lowered.endswith(".inf"):
            return -math.inf if text.startswith("-") else math.inf
        return float(text)
    if kind == "merge":
        return text
    raise ValueError(f"{text!r} is not a YAML {kind}")


def _recursion(node: Node) -> tuple[tuple[int, int], Path_, str] | None:
    """Where the node graph loops back on itself (an alias inside its own anchor) or nests too
    deeply, found before anything walks it: PyYAML composes such an alias into a cycle of nodes.

    Nodes already seen whole are skipped, so shared aliases cost one visit, not an expansion.
    """
    done: set[int] = set()
    open_: set[int] = set()

    def visit(n: Node, at: tuple[int, int], p: Path_, depth: int) -> Any:
        if id(n) in done or isinstance(n, ScalarNode):
            return None
        if id(n) in open_:
            line, column = _mark(n)
            return (
                at,
                p,
                "a recursive YAML anchor: this alias refers to the anchor at "
                f"line {line}, column {column}, which contains it",
            )
        if depth > MAX_DEPTH:
            return (at, p, f"the document nests more than {MAX_DEPTH} levels deep")
        open_.add(id(n))
        if isinstance(n, SequenceNode):
            children = [(child, _mark(n), p + (i,)) for i, child in enumerate(n.value)]
        else:  # a mapping: an alias used as a value is reported at its key
            children = [(v, _mark(k), p + (str(k.value),)) for k, v in n.value]
        for child, child_at, child_path in children:
            found = visit(child, child_at, child_path, depth + 1)
            if found is not None:
                return found
        open_.discard(id(n))
        done.add(id(n))
        return None

    found: tuple[tuple[int, int], Path_, str] | None = visit(node, _mark(node), (), 0)
    return found


def _decode(path: Path, raw: bytes, problems: list[Problem]) -> str | None:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        problems.append(
            Problem(
                str(path), line, column, "", f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x})"
            )
        )
        return None
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        problems.append(Problem(str(path), line, 1, "", "the file holds a NUL character"))
        return None
    return text


def _syntax_problem(path: Path, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    detail = getattr(exc, "problem", None) or str(exc)
    if "\\t" in detail or "\t" in detail or "tab character" in detail:
        detail = "a tab character is not allowed for indentation; use spaces"
    return Problem(str(path), line, column, "", f"YAML syntax error: {detail}")


def read_documents(path: Path, problems: list[Problem]) -> list[Document]:
    """Every non-empty document of a YAML file; problems found are appended to `problems`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(str(path), 1, 1, "", f"cannot read the file: {exc.strerror}"))
        return []
    text = _decode(path, raw, problems)
    if text is None:
        return []
    docs: list[Document] = []
    try:
        for index, node in enumerate(yaml.compose_all(text, Loader=_Core12Loader)):
            if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
                continue  # an empty document between separators, as kubectl allows
            line, column = _mark(node)
            doc = Document(path, index, None, line, column)
            loop = _recursion(node)
            if loop is not None:
                (line, column), at, message = loop
                problems.append(Problem(str(path), line, column, format_path(at), message))
                continue
            try:
                doc.data = _Walker(doc, problems).walk(node, ())
            except _TooLarge as big:
                line, column = _mark(big.node)
                problems.append(
                    Problem(str(path), line, column, "", "the document expands to too many values")
                )
                continue
            docs.append(doc)
    except yaml.YAMLError as exc:
        problems.append(_syntax_problem(path, exc))
        return []
    if not docs and not any(p.file == str(path) for p in problems):
        problems.append(Problem(str(path), 1, 1, "", "the file holds no YAML document"))
    return docs
