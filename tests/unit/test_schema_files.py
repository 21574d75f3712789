"""The JSON Schemas checked into schema/ are exactly what the models generate, and they work."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from declserve import schemas
from declserve.errors import Problem
from declserve.loader import schema_problems
from declserve.spec import KINDS
from declserve.yamlsource import read_documents

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_schemas_equal_the_generated_ones() -> None:
    for name, text in schemas.all_files().items():
        path = ROOT / "schema" / name
        assert path.is_file(), f"schema/{name} is missing: run `declserve schema --write schema`"
        assert path.read_text() == text, (
            f"schema/{name} is stale: run `declserve schema --write schema`"
        )


@pytest.mark.parametrize("example", ["servings", "kubernetes"])
def test_example_specs_validate_against_the_schema_and_point_at_it(example: str) -> None:
    files = sorted((ROOT / "examples" / example).rglob("*.yaml"))
    # the registry holds no specs; rbac.yaml is for kubectl (the loader leaves it out)
    files = [f for f in files if "registry" not in f.parts and f.name != "rbac.yaml"]
    assert len(files) >= 2
    for path in files:
        text = path.read_text()
        assert "# yaml-language-server: $schema=" in text, path
        found: list[Problem] = []
        for read in read_documents(path, found):  # as the loader and editors read YAML (1.2)
            doc = read.data
            kind = doc["kind"]
            schema = json.loads((ROOT / "schema" / schemas.file_name(kind)).read_text())
            jsonschema.validate(doc, schema)
            ref = [ln for ln in text.splitlines() if "$schema=" in ln][0].split("$schema=")[1]
            assert (path.parent / ref).resolve() == (ROOT / "schema" / schemas.file_name(kind))
        assert found == []


def test_schema_rejects_unknown_fields() -> None:
    schema = json.loads(schemas.render("Serving"))
    doc = {
        "apiVersion": "declserve.io/v1",
        "kind": "Serving",
        "metadata": {"name": "x"},
        "spec": {"model": {"name": "m", "version": 1}, "replicas": 2},
    }
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    assert any("replicas" in e.message for e in errors)


# The loader and the published JSON Schema judge the same documents the same way. Each case is
# a Serving (or Project) document with one field set as YAML text; the loader reads it (YAML 1.2,
# as editors do) and both verdicts are taken on exactly the data it read.
SERVING = """apiVersion: declserve.io/v1
kind: Serving
metadata:
  name: m
  labels: {LABELS}
spec:
  {FIELD}
"""
PROJECT = """apiVersion: declserve.io/v1
kind: Project
metadata: {name: p}
spec:
  registry: r
  backend: {BACKEND}
  {FIELD}
"""
SERVING_CASES = [
    "model: {name: mnist, version: 2}",
    "model: {name: mnist, version: '2'}",
    "model: {name: mnist, version: 2.0}",
    "model: {name: mnist, version: 1.5}",
    "model: {name: mnist, version: latest}",
    "model: {name: mnist, version: 0}",
    "model: {name: mnist, version: true}",
    "model: {name: mnist, version: 2147483648}",
    "model: {name: mnist, version: newest}",
    "model: {name: mnist, version: null}",
    "model: {name: mnist, version: 1e400}",
    "model: {name: '../x', version: 1}",
    "protected: true",
    "protected: True",
    "protected: yes",
    "protected: 'true'",
    "protected: 1",
    "protected: on",
    "protected: false",
    "instances: 2",
    "instances: '2'",
    "instances: 2.0",
    "instances: 1001",
    "instances: -1",
    "instances: 010",
    "instances: 0x10",
    "instances: 1_000",
    "instances: two",
    "tool: kserve",
    "tool: KSERVE",
    "tool: 1",
    "state: stopped",
    "state: off",
    "server: tensorflow-serving",
    "server: triton",
    "resources: {cpu: 1}",
    "resources: {cpu: 0.5}",
    "resources: {cpu: 500m}",
    "resources: {cpu: 2 cores}",
    "resources: {cpu: true}",
    "resources: {cpu: '1'}",
    "resources: {cpu: ' 1'}",
    "resources: {cpu: '1.50000'}",
    "resources: {cpu: 500.0m}",
    "resources: {cpu: '1.'}",
    "resources: {cpu: '+1'}",
    "resources: {cpu: 1025}",
    "resources: {memory: '1Gi '}",
    "resources: {memory: 1.5Gi}",
    "resources: {memory: 1e3}",
    "resources: {memory: 7340032.5}",
    "resources: {memory: 1Gi}",
    "resources: {memory: 1073741824}",
    "resources: {memory: 1.5}",
    "resources: {memory: 1Xi}",
    "resources: {memory: true}",
    "resources: {gpus: 17}",
    "resources: {gpus: '1'}",
    "resources: {gpus: 1.0}",
    "batching: {enabled: yes}",
    "batching: {enabled: true, maxBatchSize: '8'}",
    "batching: {enabled: true, maxBatchSize: 8, allowedBatchSizes: [4.0, 8]}",
    "batching: {enabled: true, allowedBatchSizes: ['8']}",
    "batching: {enabled: true, padVariableLengthInputs: no}",
    "inferenceLogging: {mode: everything}",
    "inferenceLogging: {topic: 'bad topic'}",
    "inferenceLogging: {topic: create, mode: predictions}",
    "inferenceLogging: null",
    "transformer: null",
    "replicas: 2",
    "model: {name: mnist}",
    "inference_logging: {topic: create}",
    "batching: {enabled: true, max_batch_size: 8}",
    "model: {name: mnist, version: 1, x: 1}",
]
LABEL_CASES = [
    "{team: vision}",
    "{team: 1}",
    "{team: yes}",
    "{team: no}",
    "{'bad key!': x}",
    "{team: ''}",
    "{team: " + "x" * 64 + "}",
    "[team]",
    "null",
]
BACKEND_CASES = [
    "{type: docker}",
    "{type: podman}",
    "{type: docker, pollSeconds: '2'}",
    "{type: docker, pollSeconds: 2.0}",
    "{type: docker, restartPolicy: no}",
    "{type: docker, restartPolicy: 'no'}",
    "{type: kubernetes, namespace: ML}",
    "{type: kubernetes, readyTimeoutSeconds: yes}",
    "{image: x}",
]
PROJECT_CASES = [
    "kafka: {bootstrapServers: []}",
    "kafka: {bootstrapServers: [127.0.0.1:9092]}",
    "kafka: {bootstrapServers: 127.0.0.1:9092}",
    "kafka: {bootstrapServers: [k:1], partitions: yes}",
    "kafka: {bootstrapServers: [k:1], partitions: '3'}",
    "kafka: {bootstrapServers: [k:1], retentionMs: -1}",
    "kafka: null",
    "registry2: r",
]
# Rules the schema cannot state (across fields, or inside a quantity's spelling): the loader
# alone refuses these, and the schema accepts them. Anything else must get the same verdict.
TOOL_ONLY = {
    "instances: 0",
    "transformer: {script: t.py}",
    "batching: {maxBatchSize: 4}",
    "batching: {enabled: true, maxBatchSize: 8, allowedBatchSizes: [4, 16]}",
    "batching: {enabled: true, allowedBatchSizes: [8, 4]}",
    "inferenceLogging: {topic: none, mode: all}",
    "resources: {cpu: 0.0001}",
    "resources: {cpu: '0'}",
    "resources: {cpu: '2000'}",
    "resources: {memory: 1Ki}",
    "resources: {memory: 0.5Ki}",
    "resources: {cpu: .nan}",
    "resources: {cpu: 0.5m}",
    "kafka: {bootstrapServers: [k:1], topicPattern: x}",
}


def _with_model(field: str) -> str:
    return field if field.startswith("model:") else "model: {name: mnist, version: 1}\n  " + field


def _cases() -> list[tuple[str, str, str]]:
    cases = [
        ("Serving", f, SERVING.replace("{LABELS}", "{}").replace("{FIELD}", _with_model(f)))
        for f in SERVING_CASES + sorted(c for c in TOOL_ONLY if not c.startswith("kafka"))
    ]
    cases += [
        (
            "Serving",
            f"labels: {lab}",
            SERVING.replace("{LABELS}", lab).replace("{FIELD}", _with_model("")),
        )
        for lab in LABEL_CASES
    ]
    cases += [
        ("Project", f"backend: {b}", PROJECT.replace("{BACKEND}", b).replace("{FIELD}", ""))
        for b in BACKEND_CASES
    ]
    cases += [
        ("Project", f, PROJECT.replace("{BACKEND}", "{type: docker}").replace("{FIELD}", f))
        for f in PROJECT_CASES + sorted(c for c in TOOL_ONLY if c.startswith("kafka"))
    ]
    return cases


def _verdicts(kind: str, text: str, tmp_path: Path) -> tuple[bool, bool]:
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    found: list[Problem] = []
    (doc,) = read_documents(path, found)
    assert found == [], found
    _, problems = schema_problems(doc, KINDS[kind])
    schema = json.loads((ROOT / "schema" / schemas.file_name(kind)).read_text())
    return problems == [], jsonschema.Draft202012Validator(schema).is_valid(doc.data)


@pytest.mark.parametrize("kind, case, text", _cases(), ids=[c[1] for c in _cases()])
def test_loader_and_published_schema_agree(kind: str, case: str, text: str, tmp_path: Path) -> None:
    loader_ok, schema_ok = _verdicts(kind, text, tmp_path)
    if case.removeprefix("backend: ") in TOOL_ONLY or case in TOOL_ONLY:
        assert (loader_ok, schema_ok) == (False, True), "a rule only the loader can check"
    else:
        verdict = {True: "accepts", False: "rejects"}
        assert loader_ok == schema_ok, (
            f"the loader {verdict[loader_ok]} {case!r}; the schema {verdict[schema_ok]} it"
        )


def test_the_agreement_corpus_has_both_verdicts(tmp_path: Path) -> None:
    verdicts = [_verdicts(kind, text, tmp_path)[1] for kind, _, text in _cases()]
    assert verdicts.count(True) >= 20 and verdicts.count(False) >= 30
