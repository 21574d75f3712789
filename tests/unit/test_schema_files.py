"""The JSON Schemas checked into schema/ are exactly what the models generate, and they work."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from declserve import schemas

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_schemas_equal_the_generated_ones() -> None:
    for name, text in schemas.all_files().items():
        path = ROOT / "schema" / name
        assert path.is_file(), f"schema/{name} is missing: run `declserve schema --write schema`"
        assert path.read_text() == text, f"schema/{name} is stale: run `declserve schema --write schema`"


def test_example_specs_validate_against_the_schema_and_point_at_it() -> None:
    files = sorted((ROOT / "examples" / "servings").rglob("*.yaml"))
    files = [f for f in files if "registry" not in f.parts]
    assert len(files) >= 2
    for path in files:
        text = path.read_text()
        assert "# yaml-language-server: $schema=" in text, path
        for doc in yaml.safe_load_all(text):
            kind = doc["kind"]
            schema = json.loads((ROOT / "schema" / schemas.file_name(kind)).read_text())
            jsonschema.validate(doc, schema)
            ref = [l for l in text.splitlines() if "$schema=" in l][0].split("$schema=")[1]
            assert (path.parent / ref).resolve() == (ROOT / "schema" / schemas.file_name(kind))


def test_schema_rejects_unknown_fields() -> None:
    schema = json.loads(schemas.render("Serving"))
    doc = {"apiVersion": "declserve.io/v1", "kind": "Serving", "metadata": {"name": "x"},
           "spec": {"model": {"name": "m", "version": 1}, "replicas": 2}}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    assert any("replicas" in e.message for e in errors)
