"""YAML text to plain data, keeping where every key and value stood.

Safe loading only: the node tree is composed with PyYAML's SafeLoader and turned into dicts, lists
and scalars here, so that duplicate keys, non-string keys and unknown tags are refused with their
line and column, and each path in the data keeps its position for later error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from declserve.errors import Problem

Path_ = tuple[str | int, ...]

_STD_TAGS = {
    "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:merge",
}
# libyaml's parser when PyYAML has it: composing is most of the time spent loading specs.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Aliases can make a small file expand enormously; specs are never this large.
MAX_NODES = 200_000


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
        self.constructor = yaml.SafeLoader("")  # its SafeConstructor resolves scalars safely
        self.count = 0

    def fail(self, node: Node, path: Path_, message: str) -> None:
        line, column = _mark(node)
        self.problems.append(
            Problem(str(self.doc.file), line, column, format_path(path), message)
        )

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
                return self.constructor.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                self.fail(node, path, f"cannot read this value: {getattr(exc, 'problem', exc)}")
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
            key = self.constructor.construct_object(key_node)
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


def _decode(path: Path, raw: bytes, problems: list[Problem]) -> str | None:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        problems.append(
            Problem(str(path), line, column, "", f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x})")
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
        for index, node in enumerate(yaml.compose_all(text, Loader=_LOADER)):
            if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
                continue  # an empty document between separators, as kubectl allows
            line, column = _mark(node)
            doc = Document(path, index, None, line, column)
            try:
                doc.data = _Walker(doc, problems).walk(node, ())
            except _TooLarge as big:
                l, c = _mark(big.node)
                problems.append(Problem(str(path), l, c, "", "the document expands to too many values"))
                continue
            docs.append(doc)
    except yaml.YAMLError as exc:
        problems.append(_syntax_problem(path, exc))
        return []
    if not docs and not any(p.file == str(path) for p in problems):
        problems.append(Problem(str(path), 1, 1, "", "the file holds no YAML document"))
    return docs
