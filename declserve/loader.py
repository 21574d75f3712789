"""A project directory to validated specs, or every problem found, each with file:line:col.

The directory holds `declserve.yaml` (kind Project) and any number of `*.yaml`/`*.yml` files
below it, each with one or more `Serving` documents. Schema errors come from `spec`; this module
adds the rules across documents (unique names, `kserve` needs `kubernetes`) and against the
registry (the model and version exist). It never contacts a backend.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from declserve import spec as S
from declserve.errors import InputError, Problem, display_path
from declserve.registry import Registry, RegistryError
from declserve.yamlsource import Document, Path_, read_documents

PROJECT_FILE = "declserve.yaml"
API_GROUP = S.API_VERSION.partition("/")[0]

_PATTERN_HELP = {
    S.DNS1123_LABEL: "must be a DNS-1123 label: lower-case letters, digits and '-', "
    "starting and ending with a letter or digit",
    S.MODEL_NAME: "must be a plain directory name under Models/ (letters, digits, '_', '.', '-')",
    S.KAFKA_TOPIC: "must be 'create', 'none' or a Kafka topic name "
    "(letters, digits, '.', '_', '-')",
    S.LABEL_KEY: "must be a Kubernetes label key",
    S.LABEL_VALUE: "must be a Kubernetes label value (at most 63 letters, digits, '-', '_', '.')",
}


@dataclass(frozen=True)
class LoadedServing:
    serving: S.Serving
    doc: Document

    @property
    def name(self) -> str:
        return self.serving.name

    def problem(self, path: Path_, message: str) -> Problem:
        return self.doc.problem(path, message)


@dataclass(frozen=True)
class LoadedProject:
    directory: Path
    project: S.Project
    project_doc: Document
    servings: tuple[LoadedServing, ...]
    registry: Registry

    @property
    def name(self) -> str:
        return self.project.name


def _walk_real_path(data: Any, loc: tuple[Any, ...]) -> Path_:
    """The part of a pydantic location that exists in the data (union tags are dropped).

    A missing or unknown key can only be the last element of a location; any other element
    that is not in the data names a union member, which the user never wrote.
    """
    real: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
            real.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            real.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and i == len(loc) - 1:
            real.append(part)
    return tuple(real)


def _known_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The YAML field names allowed at a location inside `model`, for "did you mean"."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        found = None
        for name, info in current.model_fields.items():
            if (info.alias or name) == part:
                found = info.annotation
        if found is None:
            continue  # a union tag or a list index
        current = _unwrap(found)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [info.alias or name for name, info in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def _message(err: dict[str, Any], model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        name = str(loc[-1])
        close = difflib.get_close_matches(name, _known_fields(model, loc[:-1]), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{name!r} is not a known field{hint}"
    if kind == "string_pattern_mismatch":
        return _PATTERN_HELP.get(ctx.get("pattern", ""), f"must match {ctx.get('pattern')}")
    if kind == "value_error":
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind in ("int_parsing", "int_type", "int_from_float", "int_parsing_size"):
        return "must be a whole number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind in ("string_type",):
        return "must be a string"
    if kind in ("string_too_long",):
        return f"must be at most {ctx.get('max_length')} characters"
    if kind in ("string_too_short", "too_short"):
        return "must not be empty"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping of fields"
    if kind == "list_type":
        return "must be a list"
    if kind in ("enum", "literal_error"):
        return f"must be {ctx.get('expected')}"
    if kind == "union_tag_invalid":
        return f"type must be {ctx.get('expected_tags')}, not {ctx.get('tag')!r}"
    if kind == "union_tag_not_found":
        return f"type is required ({ctx.get('discriminator')})"
    return str(err["msg"])


def schema_problems(doc: Document, model: type[BaseModel]) -> tuple[Any, list[Problem]]:
    """Validate a document against a kind; one problem per field, at the field's place."""
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        grouped: dict[Path_, tuple[list[str], bool]] = {}
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            rule = (err.get("ctx") or {}).get("error")
            if isinstance(rule, S.RuleError):
                loc = loc + rule.field
            real = _walk_real_path(doc.data, loc)
            message = _message(dict(err), model, loc)
            messages, is_key = grouped.setdefault(real, ([], err["type"] == "extra_forbidden"))
            if message not in messages:
                messages.append(message)
        problems = []
        for real, (messages, is_key) in grouped.items():
            text = messages[0] if len(messages) == 1 else _merge_union(real, messages)
            problems.append(doc.problem(real, text, key=is_key))
        return None, problems


def _merge_union(path: Path_, messages: list[str]) -> str:
    if path[-1:] == ("version",):
        return "must be a positive whole number or 'latest'"
    return "; or ".join(messages)


def _discover(directory: Path, skip: list[Path]) -> list[Path]:
    """The spec files below `directory`; hidden folders and the registry are never entered."""
    files = []
    for root, dirs, names in os.walk(directory):
        here = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and not any(s == here / d or s in (here / d).parents for s in skip)
        )
        for name in sorted(names):
            path = here / name
            if name.startswith(".") or path.suffix not in (".yaml", ".yml"):
                continue
            if path.is_file() and path.relative_to(directory) != Path(PROJECT_FILE):
                files.append(path)
    return sorted(files)


def foreign(data: Any) -> bool:
    """A document of another tool (a Kubernetes Role beside the specs): an API group that is
    not declserve's and a kind declserve does not define. Anything else is checked, so a
    Serving with a mistyped apiVersion is still an error, not silently left out."""
    if not isinstance(data, dict):
        return False
    api, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str) or kind in S.KINDS:
        return False
    group = api.rpartition("/")[0]  # "" for the core group's "v1"
    return group != API_GROUP


def _load_project_file(path: Path, problems: list[Problem]) -> tuple[Document, Any] | None:
    docs = read_documents(path, problems)
    if not docs:
        return None
    if len(docs) > 1:
        problems.append(docs[1].problem((), f"{PROJECT_FILE} must hold one Project document"))
    doc = docs[0]
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "the document must be a mapping of fields"))
        return None
    project, found = schema_problems(doc, S.Project)
    problems.extend(found)
    return doc, project


_NAME: TypeAdapter[str] = TypeAdapter(S.DnsLabel)
_TOOL: TypeAdapter[S.Tool] = TypeAdapter(S.Tool)
_INSTANCES: TypeAdapter[int] = TypeAdapter(Annotated[int, Field(ge=0, strict=True)])


def _valid_part(data: Any, path: Path_, kind: type[BaseModel] | TypeAdapter[Any]) -> Any:
    """The part of a document at `path` as `kind`, or None when it is absent or invalid."""
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    try:
        if isinstance(kind, TypeAdapter):
            return kind.validate_python(data)
        return kind.model_validate(data)
    except ValidationError:
        return None


@dataclass(frozen=True)
class _Parts:
    """What of one serving document the checks across documents and against the registry
    need, where it validated: so a schema error elsewhere in the document does not hide a
    missing model or a duplicate name."""

    doc: Document
    name: str | None
    model: S.ModelRef | None
    transformer: S.Transformer | None
    tool: S.Tool | None
    logging: S.InferenceLogging | None
    endpoint: S.Endpoint | None = None
    instances: int | None = None

    @classmethod
    def of(cls, doc: Document, serving: S.Serving | None) -> _Parts:
        if serving is not None:
            spec = serving.spec
            return cls(
                doc, serving.name, spec.model, spec.transformer, spec.tool,
                spec.inference_logging, spec.endpoint, spec.instances,
            )
        data = doc.data
        return cls(
            doc,
            _valid_part(data, ("metadata", "name"), _NAME),
            _valid_part(data, ("spec", "model"), S.ModelRef),
            _valid_part(data, ("spec", "transformer"), S.Transformer),
            _valid_part(data, ("spec", "tool"), _TOOL),
            _valid_part(data, ("spec", "inferenceLogging"), S.InferenceLogging),
            _valid_part(data, ("spec", "endpoint"), S.Endpoint),
            _valid_part(data, ("spec", "instances"), _INSTANCES),
        )

    def problem(self, path: Path_, message: str) -> Problem:
        return self.doc.problem(path, message)


def _check_registry(parts: _Parts, registry: Registry, problems: list[Problem]) -> None:
    model = parts.model
    if model is not None:
        try:
            registry.model_dir(model.name)
        except RegistryError as exc:
            problems.append(parts.problem(("spec", "model", "name"), str(exc)))
        else:
            try:
                registry.resolve(model.name, model.version)
            except RegistryError as exc:
                problems.append(parts.problem(("spec", "model", "version"), str(exc)))
    transformer = parts.transformer
    if transformer is not None:
        where = ("spec", "transformer", "script")
        try:
            script = registry.resolve_relative(transformer.script, "transformer script")
        except RegistryError as exc:
            problems.append(parts.problem(where, str(exc)))
            return
        if not script.is_file():
            problems.append(parts.problem(where, f"{transformer.script} is not in the registry"))


def _cross_checks(
    servings: list[_Parts], project: S.Project | None, problems: list[Problem]
) -> None:
    seen: dict[str, _Parts] = {}
    ports: dict[int, _Parts] = {}
    for parts in servings:
        port = parts.endpoint.port if parts.endpoint is not None else None
        if port is not None and port in ports:
            other = ports[port]
            line = other.doc.position(("spec", "endpoint", "port"))[0]
            problems.append(parts.problem(
                ("spec", "endpoint", "port"),
                f"port {port} is the address of serving {other.name!r} already "
                f"({display_path(str(other.doc.file))}:{line})"))
        elif port is not None:
            ports[port] = parts
        first = seen.get(parts.name) if parts.name is not None else None
        if first is not None:
            line = first.doc.position(("metadata", "name"))[0]
            problems.append(
                parts.problem(
                    ("metadata", "name"),
                    f"serving {parts.name!r} is defined twice; "
                    f"first in {display_path(str(first.doc.file))}:{line}",
                )
            )
        elif parts.name is not None:
            seen[parts.name] = parts
        if project is None:
            continue
        if parts.logging is not None and parts.logging.enabled and project.spec.kafka is None:
            problems.append(
                parts.problem(
                    ("spec", "inferenceLogging"),
                    "inference logging needs Kafka: "
                    f"add spec.kafka.bootstrapServers to {PROJECT_FILE}",
                )
            )
        backend = project.spec.backend
        if parts.tool is S.Tool.KSERVE and backend.type != "kubernetes":
            problems.append(
                parts.problem(
                    ("spec", "tool"),
                    f"tool 'kserve' needs the 'kubernetes' backend; "
                    f"{PROJECT_FILE} selects {backend.type!r}",
                )
            )
        elif (parts.tool is S.Tool.KSERVE and isinstance(backend, S.KubernetesBackend)
              and backend.models.claim is None):
            problems.append(
                parts.problem(
                    ("spec", "tool"),
                    "tool 'kserve' needs backend.models.claim in "
                    f"{PROJECT_FILE}: KServe mounts models from a PersistentVolumeClaim "
                    "(storageUri pvc://)",
                )
            )
        elif (parts.tool is S.Tool.KSERVE and parts.instances == 0
              and isinstance(backend, S.KubernetesBackend)
              and backend.kserve.deployment_mode != "Knative"):
            problems.append(
                parts.problem(
                    ("spec", "instances"),
                    "0 (scale to zero) needs KServe's Knative mode: set "
                    f"backend.kserve.deploymentMode: Knative in {PROJECT_FILE} (in "
                    f"{backend.kserve.deployment_mode} mode KServe runs one pod anyway)",
                )
            )


def registry_root(directory: Path, project: S.Project) -> Path:
    return _root(directory, project.spec.registry)


def _root(directory: Path, registry: str) -> Path:
    root = Path(registry)
    return root if root.is_absolute() else directory / root


def _open_registry(
    directory: Path, loaded: tuple[Document, S.Project | None] | None, problems: list[Problem]
) -> tuple[Registry | None, Path | None]:
    """The registry the project file names (and its root, which is never crawled for specs),
    even when other fields of that file are wrong, so that its models can still be checked."""
    if loaded is None:
        return None, None
    doc, project = loaded
    spec = doc.data.get("spec") if project is None else None
    named = (
        project.spec.registry
        if project is not None
        else (spec.get("registry") if isinstance(spec, dict) else None)
    )
    if not isinstance(named, str) or not named:
        return None, None  # the schema error says why
    root = _root(directory, named)
    registry = Registry(root)
    try:
        registry.check_root()
    except RegistryError as exc:  # the project file points at a bad root
        problems.append(doc.problem(("spec", "registry"), str(exc)))
        return None, root
    return registry, root


def collect(directory: Path) -> tuple[LoadedProject | None, list[Problem]]:
    """Load and check everything; the project is None when any problem was found.

    A directory without a project file is refused at once: it is not a project, and crawling
    it (a home directory, a whole repository) for YAML files would report only noise.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None, [Problem(str(directory), 0, 0, "", "the project directory does not exist")]
    if not (directory / PROJECT_FILE).is_file():
        return None, [
            Problem(
                str(directory),
                0,
                0,
                "",
                f"there is no {PROJECT_FILE} in this directory, so it is not a declserve project "
                "(name the project directory with -C DIR)",
            )
        ]
    problems: list[Problem] = []
    loaded = _load_project_file(directory / PROJECT_FILE, problems)
    registry, root = _open_registry(directory, loaded, problems)
    skip = [root.resolve()] if root is not None else []
    servings: list[LoadedServing] = []
    parts: list[_Parts] = []
    for path in _discover(directory, skip):
        for doc in read_documents(path, problems):
            if foreign(doc.data):
                continue
            serving, found = _load_serving(doc, problems)
            servings.extend([serving] if serving is not None else [])
            parts.extend([found] if found is not None else [])
    project = loaded[1] if loaded is not None else None
    _cross_checks(parts, project, problems)
    if registry is not None:
        for found in parts:
            _check_registry(found, registry, problems)
    if problems or loaded is None or project is None or registry is None:
        return None, _sorted(problems)
    return LoadedProject(directory, project, loaded[0], tuple(servings), registry), []


def _load_serving(
    doc: Document, problems: list[Problem]
) -> tuple[LoadedServing | None, _Parts | None]:
    if not isinstance(doc.data, dict):
        problems.append(
            doc.problem((), "a document must be a mapping of fields, such as a Serving")
        )
        return None, None
    if doc.data.get("kind") == "Project":
        problems.append(doc.problem(("kind",), f"a Project belongs in {PROJECT_FILE} only"))
        return None, None
    serving, found = schema_problems(doc, S.Serving)
    problems.extend(found)
    loaded = LoadedServing(serving, doc) if serving is not None else None
    return loaded, _Parts.of(doc, serving)


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file, p.line, p.column, p.field))


def load_project(directory: Path) -> LoadedProject:
    """The validated project, or an InputError carrying every problem found."""
    project, problems = collect(directory)
    if project is None:
        raise InputError(problems)
    return project
