"""The plan as a JSON document: `plan --json` prints it; its schema is `schema/plan.schema.json`.

The shape follows Terraform's `resource_changes` closely enough that tools written for it feel
at home: an address, `actions` (`["delete", "create"]` for a replace), and each changed field
with `before` and `after`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from declserve import __version__
from declserve.plan import Action, Plan

TERRAFORM_ACTIONS = {
    Action.CREATE: ["create"],
    Action.UPDATE: ["update"],
    Action.START: ["update"],
    Action.STOP: ["update"],
    Action.REPAIR: ["update"],
    Action.REPLACE: ["delete", "create"],
    Action.DELETE: ["delete"],
}


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldChangeDoc(_Doc):
    path: str
    before: Any = Field(description="null when the field is absent before")
    after: Any = Field(description="null when the field is absent after")
    changed_by: str = Field(
        default="", description="who changed the live value and when, where the backend knows"
    )


class StepDoc(_Doc):
    """One step apply carries out, in order; `text` is how the plan shows it."""

    op: str
    target: str
    detail: str
    text: str


class ResourceChangeDoc(_Doc):
    address: str
    kind: str = Field(description="the provider's kind: serving, topic, ...")
    name: str
    action: Action
    actions: list[Literal["create", "update", "delete"]]
    symbol: Literal["+", "~", "-/+", "-"]
    reason: str
    depends_on: list[str]
    changes: list[FieldChangeDoc]
    steps: list[StepDoc]


class SummaryDoc(_Doc):
    add: int = Field(ge=0)
    change: int = Field(ge=0)
    destroy: int = Field(ge=0)


class PlanDoc(_Doc):
    """The plan of one project against its backend's live state."""

    format_version: Literal["2"] = "2"
    declserve_version: str
    project: str
    backend: str
    changes_present: bool
    summary: SummaryDoc
    resource_changes: list[ResourceChangeDoc]
    pinned_versions: dict[str, int]
    warnings: list[str]
    live_fingerprint: str


def to_doc(plan: Plan) -> PlanDoc:
    s = plan.summary
    return PlanDoc(
        declserve_version=__version__,
        project=plan.project,
        backend=plan.backend,
        changes_present=not s.empty,
        summary=SummaryDoc(add=s.add, change=s.change, destroy=s.destroy),
        resource_changes=[
            ResourceChangeDoc(
                address=c.address,
                kind=c.kind,
                name=c.name,
                action=c.action,
                actions=TERRAFORM_ACTIONS[c.action],  # type: ignore[arg-type]
                symbol=c.symbol,  # type: ignore[arg-type]
                reason=c.reason,
                depends_on=list(c.depends_on),
                changes=[
                    FieldChangeDoc(path=f.path, before=f.before, after=f.after, changed_by=f.by)
                    for f in c.changes
                ],
                steps=[
                    StepDoc(op=s.op, target=s.target, detail=s.detail, text=s.text())
                    for s in c.steps
                ],
            )
            for c in plan.changes
        ],
        pinned_versions=plan.pinned_versions,
        warnings=list(plan.warnings),
        live_fingerprint=plan.live_fingerprint,
    )


def to_json(plan: Plan) -> str:
    return to_doc(plan).model_dump_json(indent=2)
