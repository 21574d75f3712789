"""Plans and apply reports for people: terminal text (Terraform's symbols) and Markdown.

Text lists each changed field `before → after` under its resource and ends with the summary
line; colour only when asked (the CLI asks on a TTY without `--no-color`). Markdown is for a
pull-request comment: the summary first, the details folded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from declserve.apply import Outcome, Status
from declserve.plan import Action, FieldChange, Plan, ResourceChange

_COLOURS = {"+": "32", "~": "33", "-/+": "35", "-": "31", "warn": "33", "bold": "1"}
_HEADINGS = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.START: "will be started",
    Action.STOP: "will be stopped",
    Action.REPLACE: "must be replaced",
    Action.DELETE: "will be destroyed",
    Action.REPAIR: "will be repaired",
}


def _paint(text: str, key: str, colour: bool) -> str:
    return f"\x1b[{_COLOURS[key]}m{text}\x1b[0m" if colour else text


def value(v: Any) -> str:
    if v is None:
        return "(absent)"
    return json.dumps(v, sort_keys=True)


def summary_line(plan: Plan) -> str:
    s = plan.summary
    if s.empty:
        return "No changes. The live servings match the specs."
    return f"Plan: {s.add} to add, {s.change} to change, {s.destroy} to destroy."


def _field_line(change: ResourceChange, f: FieldChange) -> str:
    if change.action is Action.CREATE:
        return f"+ {f.path}: {value(f.after)}"
    if change.action is Action.DELETE:
        return f"- {f.path}: {value(f.before)}"
    mark = "+" if f.before is None else "-" if f.after is None else "~"
    by = f"   (changed by {f.by})" if f.by else ""
    return f"{mark} {f.path}: {value(f.before)} → {value(f.after)}{by}"


def resource_lines(change: ResourceChange, colour: bool = False) -> list[str]:
    heading = f"# {change.address} {_HEADINGS[change.action]}"
    if change.reason:
        heading += f" ({change.reason})"
    lines = [heading, _paint(f"{change.symbol} {change.address}", change.symbol, colour)]
    for f in change.changes:
        line = _field_line(change, f)
        lines.append("    " + _paint(line, line.split(" ", 1)[0], colour))
    if change.steps:
        lines.append("    steps:")
        lines.extend(f"      {i}. {step.text()}" for i, step in enumerate(change.steps, 1))
    return lines


def render_text(plan: Plan, colour: bool = False) -> str:
    out: list[str] = []
    if plan.changes:
        out.append("declserve will perform the following actions:")
        out.append("")
        for change in plan.changes:
            out.extend("  " + line for line in resource_lines(change, colour))
            out.append("")
    for warning in plan.warnings:
        out.append(_paint(f"Warning: {warning}", "warn", colour))
    if plan.warnings:
        out.append("")
    out.append(_paint(summary_line(plan), "bold", colour))
    return "\n".join(out) + "\n"


def render_markdown(plan: Plan) -> str:
    out = [f"### declserve plan for `{plan.project}`: {summary_line(plan)}", ""]
    if plan.changes:
        out.append("| | resource | action |")
        out.append("|---|---|---|")
        for c in plan.changes:
            out.append(f"| `{c.symbol}` | `{c.address}` | {c.action.value} |")
        out += ["", "<details><summary>Details</summary>", "", "```diff"]
        for c in plan.changes:
            out.extend(resource_lines(c))
            out.append("")
        out += ["```", "", "</details>"]
    if plan.warnings:
        out += ["", *(f"> **Warning:** {w}" for w in plan.warnings)]
    out += ["", f"<sub>backend `{plan.backend}` · live state `{plan.live_fingerprint[:19]}`</sub>"]
    return "\n".join(out) + "\n"


def render_outcomes(outcomes: Iterable[Outcome], *, interrupted: bool = False) -> str:
    outcomes = list(outcomes)
    done = sum(o.status is Status.DONE for o in outcomes)
    failed = [o for o in outcomes if o.status is Status.FAILED]
    stopped = [o for o in outcomes if o.status is Status.INTERRUPTED]
    skipped = [o for o in outcomes if o.status is Status.SKIPPED]
    if not failed and not skipped and not stopped and not interrupted:
        return f"Apply complete: {done} change(s) done.\n"
    head = "Apply interrupted" if interrupted else "Apply failed"
    counts = [f"{done} done", f"{len(failed)} failed"]
    if stopped:
        counts.append(f"{len(stopped)} stopped part-way")
    counts.append(f"{len(skipped)} not started")
    lines = [f"{head}: {', '.join(counts)}."]
    for o in outcomes:
        detail = f": {o.detail}" if o.detail else ""
        lines.append(f"  {o.status.value:<11} {o.action.value:<7} {o.address}{detail}")
    lines.append("Run apply again to finish: each change picks up from what it finds.")
    return "\n".join(lines) + "\n"
