"""Plain-text wording of questions and verdicts, shared by every adapter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from .engine import BaseEngine
from .protocol.schema import Question
from .session import Session
from .verdict import Estimate, Reason, Verdict
from .words import OPEN_KIND, RECOVERY, VERDICT_HEADLINE, VERDICT_NAME, plural


def format_value(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) if value else "none of these"
    return str(value)


def input_hint(question: Question) -> str:
    if question.type == "yes_no":
        return "yes / no / ?"
    if question.type == "choice" and question.multiple:
        return f"any of {', '.join(question.choices or [])}, separated by commas; none; ?"
    if question.type == "choice":
        return " / ".join([*(question.choices or []), "?"])
    if question.type in ("date", "date_or_none"):
        forms = "in 3 weeks" if question.future else "3 months ago"
        never = "; none if never" if question.type == "date_or_none" else ""
        return f"date, day first: 14.08.2026, 2026-08-14, 14 Aug 2026 or {forms}{never}; ?"
    if question.type == "text":
        return "free text for your own notes (never a name); ? to skip"
    unit = f" {question.unit}" if question.unit else ""
    extra = "".join(f", or in {alt.unit}" for alt in question.also_accepts)
    if question.uln_ratio:
        extra += ", or value/ULN"
    kind = "whole number" if question.type == "int" else "number"
    return f"{kind} {question.min:g}–{question.max:g}{unit}{extra}; ? if unknown"


def criteria_ids(engine: BaseEngine[Any], session: Session, limit: int = 3) -> str:
    """The criteria the current question decides (of an ``all`` screening: of the
    protocols still in the running)."""
    ids = engine.criteria_asking(session)
    return ", ".join(ids[:limit]) + ("…" if len(ids) > limit else "")


def question_text(engine: BaseEngine[Any], session: Session) -> str:
    question = engine.question(session)
    if question is None:
        return ""
    position, total = engine.progress(session)
    lines = [f"[{position}/{total}] {criteria_ids(engine, session)} · {question.text}"]
    if question.help:
        lines.append(question.help)
    lines.append(f"({question.variable}: {input_hint(question)})")
    return "\n".join(lines)


def reason_text(reason: Reason) -> str:
    answers = ", ".join(
        f"{name}{' (estimated)' if name in reason.estimated else ''} = {format_value(value)}"
        for name, value in reason.answers.items()
    )
    line = f"{reason.criterion} {reason.label}: {answers}\n   “{reason.source}”"
    if reason.recoverable:
        line += f"\n   {RECOVERY[reason.recoverable]}"
    if reason.meets_from and reason.meets_from_anchor:
        line += f" (met when {reason.meets_from_anchor} is on or after {reason.meets_from})"
    elif reason.meets_from:
        line += f" (met from {reason.meets_from.isoformat()})"
    elif reason.window_closed:
        line += "\n   the time window has passed: waiting will not make it pass"
    return line


def estimate_text(estimate: Estimate) -> str:
    inputs = ", ".join(f"{k} {format_value(v)}" for k, v in estimate.inputs.items())
    return (
        f"{estimate.name} ({estimate.label}) {estimate.value:.1f} {estimate.unit} by "
        f"{estimate.formula.split(':')[0]} from {inputs}"
    )


def verdict_text(verdict: Verdict) -> str:
    lines = [VERDICT_HEADLINE[verdict.verdict]]
    if verdict.referral:
        lines.append(f"Referral: {verdict.referral}")
    if verdict.reasons:
        lines.append("Reasons:")
        lines += [f"• {reason_text(r)}" for r in verdict.reasons]
    if verdict.open_items:
        lines.append("Open items:")
        lines += [
            f"• {item.variable} ({OPEN_KIND[item.kind]}"
            + (f": {item.advice}" if item.advice else "")
            + f") for {', '.join(item.criteria)} {item.label}"
            for item in verdict.open_items
        ]
    lines += [f"Estimated: {estimate_text(e)}" for e in verdict.estimates]
    lines += [f"⚠ {w.message}" for w in verdict.warnings]
    lines.append(
        f"verdict: {verdict.verdict} · protocol {verdict.protocol.id} version "
        f"{verdict.protocol.version} ({verdict.protocol.sha256[:12]}) · screened "
        f"{verdict.screened_on.isoformat()}"
    )
    return "\n".join(lines)


def verdicts_text(verdicts: Sequence[Verdict]) -> str:
    """One verdict as :func:`verdict_text`; several (an ``all`` screening) as a ranked
    summary, then each protocol's verdict in full."""
    if len(verdicts) == 1:
        return verdict_text(verdicts[0])
    lines = [f"Screened against {len(verdicts)} protocols, best first:"]
    for number, verdict in enumerate(verdicts, start=1):
        line = f"{number}. {verdict.protocol.id}: {VERDICT_NAME[verdict.verdict]}"
        if verdict.verdict == "unresolved":
            line += f" ({plural(len(verdict.open_items), 'open item')})"
        elif verdict.reasons:
            line += f" ({', '.join(r.criterion for r in verdict.reasons)})"
        lines.append(line)
    for number, verdict in enumerate(verdicts, start=1):
        lines += ["", f"── {number}. {verdict.protocol.id} ──", verdict_text(verdict)]
    return "\n".join(lines)
