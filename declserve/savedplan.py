"""Saved plans: `plan --out FILE` writes one, `apply FILE` carries out exactly its actions.

The file holds the resolved desired specs (versions pinned), the changes with their steps, the
fingerprint of the live state the plan was made from, the declserve version, the project and
backend identity, and a checksum over all of it. It holds no path of the machine that planned
(models are named relative to the registry), so a plan made on one runner applies on another.
Applying refuses an edited file, a plan of another project or backend, and a stale plan (the
live state changed since), each with one sentence.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from declserve import __version__
from declserve.desired import DesiredServing, ModelSource
from declserve.errors import InputError
from declserve.plan import Action, FieldChange, Plan, ResourceChange, Step
from declserve.planfile import to_doc
from declserve.spec import Serving

KIND = "declserve-saved-plan"
FORMAT = "2"


def _checksum(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _desired_doc(d: DesiredServing) -> dict[str, Any]:
    return {
        "serving": d.serving.model_dump(mode="json", by_alias=True),
        "version": d.version,
        "source": d.source,
        "topic": d.topic,
        "createsTopic": d.creates_topic,
    }


def write(
    path: Path, plan: Plan, desired: dict[str, DesiredServing], options: dict[str, Any]
) -> None:
    body = {
        "kind": KIND,
        "format_version": FORMAT,
        "declserve_version": __version__,
        "project": plan.project,
        "backend": plan.backend,
        "options": options,
        "desired": {name: _desired_doc(d) for name, d in sorted(desired.items())},
        "plan": json.loads(to_doc(plan).model_dump_json()),
    }
    body["checksum"] = _checksum(body)
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def _refuse(path: Path, message: str) -> InputError:
    return InputError.one(message, file=str(path))


def read(path: Path) -> tuple[Plan, dict[str, DesiredServing], dict[str, Any]]:
    """The plan, its desired servings and options; an InputError for anything not intact."""
    try:
        body = json.loads(path.read_text())
    except OSError as exc:
        raise _refuse(path, f"cannot read the plan file: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(path, "is not a declserve plan file (not JSON)") from exc
    if not isinstance(body, dict) or body.get("kind") != KIND:
        raise _refuse(path, "is not a declserve plan file (made by `declserve plan --out`)")
    stated = body.pop("checksum", None)
    if stated != _checksum(body):
        raise _refuse(
            path, "the plan file was changed after it was made (checksum mismatch); make a new plan"
        )
    if body.get("format_version") != FORMAT:
        raise _refuse(path, f"plan file format {body.get('format_version')!r} is not {FORMAT!r}")
    if body.get("declserve_version") != __version__:
        raise _refuse(
            path,
            f"the plan was made by declserve {body.get('declserve_version')}, "
            f"this is {__version__}; make a new plan",
        )
    try:
        return _parse(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise _refuse(path, f"is not a plan file this declserve can read ({exc})") from exc


def _parse(body: dict[str, Any]) -> tuple[Plan, dict[str, DesiredServing], dict[str, Any]]:
    doc = body["plan"]
    plan = Plan(
        project=doc["project"],
        backend=doc["backend"],
        changes=tuple(
            ResourceChange(
                rc["kind"],
                rc["name"],
                Action(rc["action"]),
                tuple(
                    FieldChange(c["path"], c["before"], c["after"], c.get("changed_by", ""))
                    for c in rc["changes"]
                ),
                tuple(Step(s["op"], s["target"], s["detail"]) for s in rc["steps"]),
                tuple(rc["depends_on"]),
                rc["reason"],
            )
            for rc in doc["resource_changes"]
        ),
        live_fingerprint=doc["live_fingerprint"],
        pinned_versions=doc["pinned_versions"],
        warnings=tuple(doc["warnings"]),
    )
    desired = {}
    for name, d in body["desired"].items():
        serving = Serving.model_validate(d["serving"])
        desired[name] = DesiredServing(
            serving,
            ModelSource(serving.spec.model.name, d["version"]),
            d["source"],
            d["topic"],
            d["createsTopic"],
        )
    return plan, desired, body["options"]
