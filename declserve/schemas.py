"""JSON Schemas generated from the pydantic models, one per kind, as checked into `schema/`.

Editors point YAML files at these (`# yaml-language-server: $schema=...`); a test keeps the
checked-in files equal to what this module generates.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from declserve import planfile, spec

KINDS: dict[str, type[BaseModel]] = {**spec.KINDS, "Plan": planfile.PlanDoc}


def file_name(kind: str) -> str:
    return f"{kind.lower()}.schema.json"


def schema_for(kind: str) -> dict[str, Any]:
    model = KINDS[kind]
    body = model.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://declserve.io/schema/v1/{file_name(kind)}",
        **body,
    }


def render(kind: str) -> str:
    return json.dumps(schema_for(kind), indent=2, sort_keys=True) + "\n"


def all_files() -> dict[str, str]:
    """File name in schema/ → its expected text."""
    return {file_name(kind): render(kind) for kind in KINDS}
