"""The loader: which files are specs, several documents per file, and every problem at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from declserve.errors import InputError, Problem
from declserve.loader import collect, load_project
from declserve.yamlsource import read_documents

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "tests" / "data" / "registry"

PROJECT = f"""apiVersion: declserve.io/v1
kind: Project
metadata: {{name: p}}
spec:
  registry: {REGISTRY}
  backend: {{type: docker}}
"""


def serving(name: str, version: object = 1, extra: str = "") -> str:
    return (
        f"apiVersion: declserve.io/v1\nkind: Serving\nmetadata: {{name: {name}}}\n"
        f"spec:\n  model: {{name: mnist, version: {version}}}\n{extra}"
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "declserve.yaml").write_text(PROJECT)
    return tmp_path


def test_several_documents_per_file_and_nested_folders(project: Path) -> None:
    (project / "a").mkdir()
    (project / "a" / "two.yaml").write_text(serving("x") + "---\n" + serving("y", "latest"))
    (project / "b.yml").write_text("---\n" + serving("z") + "---\n")  # empty documents are fine
    loaded = load_project(project)
    assert sorted(s.name for s in loaded.servings) == ["x", "y", "z"]


def test_hidden_folders_and_the_registry_are_not_specs(project: Path, tmp_path: Path) -> None:
    (project / ".github").mkdir()
    (project / ".github" / "ci.yaml").write_text("on: push\n")
    registry = project / "registry"
    (registry / "Models" / "m" / "1" / "variables").mkdir(parents=True)
    (registry / "Models" / "m" / "1" / "saved_model.pb").write_bytes(b"\x08")
    (registry / "notes.yaml").write_text("not: a spec\n")
    (project / "declserve.yaml").write_text(PROJECT.replace(str(REGISTRY), "registry"))
    (project / "s.yaml").write_text(serving("x").replace("mnist", "m"))
    assert [s.name for s in load_project(project).servings] == ["x"]


ROLE = """apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: declserve}
rules: []
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: declserve}
"""


def test_other_tools_kubernetes_objects_beside_the_specs_are_left_out(project: Path) -> None:
    (project / "rbac.yaml").write_text(ROLE)
    (project / "s.yaml").write_text(serving("x"))
    loaded, problems = collect(project)
    assert problems == []
    assert loaded is not None and [s.name for s in loaded.servings] == ["x"]


@pytest.mark.parametrize(
    "api_version, kind",
    [("declserve.io/v2", "Role"), ("declsrve.io/v1", "Serving"), ("v1", "Project")],
)
def test_a_declserve_document_with_a_wrong_api_version_or_kind_is_still_an_error(
    project: Path, api_version: str, kind: str
) -> None:
    text = serving("x").replace("declserve.io/v1", api_version).replace("Serving", kind)
    (project / "s.yaml").write_text(text)
    loaded, problems = collect(project)
    assert loaded is None and len(problems) >= 1
    assert all(p.file.endswith("s.yaml") for p in problems), problems


def test_every_problem_is_reported_not_only_the_first(project: Path) -> None:
    (project / "a.yaml").write_text(serving("a", 0) + "  instances: -1\n")
    (project / "b.yaml").write_text(serving("B"))
    (project / "c.yaml").write_text(serving("c", 9))
    _, problems = collect(project)
    where = sorted((Path(p.file).name, p.field) for p in problems)
    assert where == [
        ("a.yaml", "spec.instances"),
        ("a.yaml", "spec.model.version"),
        ("b.yaml", "metadata.name"),
        ("c.yaml", "spec.model.version"),
    ]


def test_load_project_raises_with_all_problems(project: Path) -> None:
    (project / "a.yaml").write_text(serving("a", 0))
    with pytest.raises(InputError) as err:
        load_project(project)
    assert len(err.value.problems) == 1 and "a.yaml:5:" in err.value.problems[0].format()


def test_latest_is_accepted_and_pinned_later(project: Path) -> None:
    (project / "a.yaml").write_text(serving("a", "latest"))
    (loaded,) = load_project(project).servings
    assert loaded.serving.spec.model.version == "latest"


@pytest.mark.parametrize("example", ["servings", "kubernetes", "kserve"])
def test_the_example_projects_are_valid(example: str) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "declserve.cli",
            "validate",
            "-C",
            str(ROOT / "examples" / example),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""


def test_bad_flags_exit_1_with_one_sentence() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "declserve.cli", "apply", "--parallelism", "zero"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "--parallelism" in run.stderr and "'zero'" in run.stderr


def test_an_unreachable_docker_engine_is_one_clear_sentence(tmp_path: Path) -> None:
    (tmp_path / "declserve.yaml").write_text(
        PROJECT.replace(
            "backend: {type: docker}",
            f"backend: {{type: docker, baseUrl: 'unix://{tmp_path}/no.sock'}}",
        )
    )
    (tmp_path / "s.yaml").write_text(serving("a"))
    run = subprocess.run(
        [sys.executable, "-m", "declserve.cli", "plan", "-C", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stderr == (
        "declserve: error: cannot reach the Docker engine at "
        f"unix://{tmp_path}/no.sock: is dockerd running?\n"
    )


def _problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    found: list[Problem] = []
    read_documents(path, found)
    return [p.format().removeprefix(str(path)) for p in found]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("labels: &a {x: *a}\n", ":1:13: labels.x: a recursive YAML anchor"),
        ("a: &a {b: 1, <<: *a}\n", ":1:14: a.<<: a recursive YAML anchor"),
        ("a: &a [1, *a]\n", ":1:4: a[1]: a recursive YAML anchor"),
        ("a: " + "[" * 150 + "]" * 150 + "\n", ": the document nests more than 100 levels deep"),
    ],
)
def test_recursive_anchors_and_deep_nesting_are_one_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    (problem,) = _problems_of(tmp_path, text)
    assert problem.startswith(expected) or expected in problem, problem


def test_shared_aliases_are_not_expanded_to_find_loops(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (problem,) = _problems_of(tmp_path, "\n".join(lines) + "\n")  # 10**9 values if expanded
    assert "the document expands to too many values" in problem


@pytest.mark.parametrize(
    "text, value",
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("True", True),
        ("false", False),
        ("010", 10),
        ("0o17", 15),
        ("0x1F", 31),
        ("1_000", "1_000"),
        ("1:30", "1:30"),
        ("2024-01-01", "2024-01-01"),
        ("1.5", 1.5),
        ("-.inf", float("-inf")),
        ("~", None),
        ("''", ""),
        ("'2'", "2"),
        ("!!str 2", "2"),
        ("!!int '7'", 7),
    ],
)
def test_plain_scalars_are_read_as_yaml_1_2_core(tmp_path: Path, text: str, value: object) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"v: {text}\n")
    found: list[Problem] = []
    (doc,) = read_documents(path, found)
    assert found == [] and doc.data == {"v": value} and type(doc.data["v"]) is type(value)


def test_a_value_that_does_not_fit_its_explicit_tag_is_a_problem(tmp_path: Path) -> None:
    assert _problems_of(tmp_path, "v: !!bool yes\n") == [
        ":1:4: v: cannot read this value: 'yes' is not a YAML bool"
    ]


def test_a_directory_without_a_project_file_is_refused_without_reading_below_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    for n in range(3):
        (tmp_path / "deep" / "er" / f"{n}.yaml").write_text("kind: [unclosed\n")
    (tmp_path / "s.yaml").write_text(serving("x"))
    loaded, problems = collect(tmp_path)
    assert loaded is None
    assert [p.format() for p in problems] == [
        f"{tmp_path}: there is no declserve.yaml in this directory, so it is not a declserve "
        "project (name the project directory with -C DIR)"
    ]


def test_registry_problems_are_reported_beside_schema_errors(project: Path) -> None:
    # the same document has a schema error elsewhere; other documents have their own
    (project / "a.yaml").write_text(serving("a", 9) + "  instances: lots\n")
    (project / "b.yaml").write_text(
        serving("B", extra="  transformer: {script: Resources/no.py}\n").replace("mnist", "nomodel")
    )
    (project / "c.yaml").write_text(serving("c", 0) + "  replicas: 2\n")  # version itself is wrong
    _, problems = collect(project)
    found = sorted((Path(p.file).name, p.field, p.message.split(":")[0][:40]) for p in problems)
    assert [(f, field) for f, field, _ in found] == [
        ("a.yaml", "spec.instances"),
        ("a.yaml", "spec.model.version"),
        ("b.yaml", "metadata.name"),
        ("b.yaml", "spec.model.name"),
        ("b.yaml", "spec.transformer"),
        ("b.yaml", "spec.transformer.script"),
        ("c.yaml", "spec.model.version"),
        ("c.yaml", "spec.replicas"),
    ], found


def test_the_models_are_checked_when_the_project_file_has_other_errors(project: Path) -> None:
    (project / "declserve.yaml").write_text(PROJECT.replace("type: docker", "type: podman"))
    (project / "a.yaml").write_text(serving("a", 9))
    _, problems = collect(project)
    assert sorted((Path(p.file).name, p.field) for p in problems) == [
        ("a.yaml", "spec.model.version"),
        ("declserve.yaml", "spec.backend"),
    ]


def test_rules_across_documents_see_documents_with_schema_errors(project: Path) -> None:
    (project / "a.yaml").write_text(serving("a", extra="  instances: lots\n"))
    (project / "b.yaml").write_text(
        serving("a", extra="  tool: kserve\n  replicas: 2\n  inferenceLogging: {topic: create}\n")
    )
    _, problems = collect(project)
    assert sorted((Path(p.file).name, p.field, p.message.split(";")[0]) for p in problems) == [
        ("a.yaml", "spec.instances", "must be a whole number"),
        ("b.yaml", "metadata.name", "serving 'a' is defined twice"),
        (
            "b.yaml",
            "spec.inferenceLogging",
            "inference logging needs Kafka: add spec.kafka.bootstrapServers to declserve.yaml",
        ),
        ("b.yaml", "spec.replicas", "'replicas' is not a known field"),
        ("b.yaml", "spec.tool", "tool 'kserve' needs the 'kubernetes' backend"),
    ]
