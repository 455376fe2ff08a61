"""Plain-text wording of questions and verdicts, shared by every adapter.

The layout of a verdict or check text, which :func:`layout` reads back (a messenger splits
there): sections are separated by a blank line (under ``all``, one per protocol), and a
block's lines after its first start with :data:`INDENT` (a reason's quote and outlook), a
line break inside a shown value or quote included.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from .engine import BaseEngine
from .protocol.schema import Checklist, Question
from .session import Session

if TYPE_CHECKING:
    from .quick_check import Judged, Reading
from .verdict import Estimate, OpenItem, Reason, Verdict
from .words import (
    INDENT,
    NO_RECOVERY,
    OPEN_KIND,
    RECOVERY,
    VERDICT_HEADLINE,
    VERDICT_NAME,
    meets_from_text,
    open_from_text,
    plural,
)


def format_value(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) if value else "none of these"
    return str(value)


def _number(value: float) -> str:
    """A number as typed, up to 4 decimals; a longer one (a ratio, a unit converted) to as
    few decimals as keep it off every number of two decimals, so a reason never shows a
    value on the met side of the threshold it failed (2.0048 × ULN is "2.005", not "2")."""
    text = repr(value)
    whole, _, decimals = text.partition(".")
    if "e" not in text and len(decimals) <= 4:
        return whole if decimals == "0" else text
    for places in range(3, 10):
        shown = round(value, places)
        if round(shown, 2) != shown:
            return f"{shown:.{places}f}".rstrip("0")
    return text  # within 5e-10 of two decimals: shown whole, as it decided


def _rounded(value: Any) -> str:
    """A calculated value as the Estimated line shows it: to one decimal (the dictionary)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return format_value(value)
    return f"{value:.1f}"


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


def question_text(engine: BaseEngine[Any], session: Session, details: bool = False) -> str:
    """The current step in words: progress, the question (or the checklist) and one help
    line; with ``details`` also the criteria it decides and the variable names."""
    question = engine.question(session)
    if question is None:
        return ""
    position, total = engine.progress(session)
    checklist = engine.checklist(session)
    if checklist is not None:
        return checklist_text(engine, session, checklist, details)
    if not details:
        return f"[{position}/{total}] {question.text}\n{question.help or input_hint(question)}"
    lines = [f"[{position}/{total}] {criteria_ids(engine, session)} · {question.text}"]
    if question.help:
        lines.append(question.help)
    lines.append(f"({question.variable}: {input_hint(question)})")
    return "\n".join(lines)


def checklist_text(
    engine: BaseEngine[Any], session: Session, checklist: Checklist, details: bool = False
) -> str:
    """A checklist step: its title, the items numbered with their ticks, one help line."""
    position, total = engine.progress(session)
    lines = [f"[{position}/{total}] {checklist.text}"]
    for number, (variable, value) in enumerate(engine.item_values(session).items(), start=1):
        line = f"{TICK[value]} {number}. {engine.protocol.questions[variable].text}"
        if details:
            ids = ", ".join(engine.protocol.criteria_reading.get(variable, []))
            line += f" ({variable} · {ids})"
        lines.append(line)
    lines.append(checklist.help or CHECKLIST_HINT[checklist.mode])
    return "\n".join(lines)


TICK: dict[bool | None, str] = {True: "☑", False: "☐", None: "❓"}
CHECKLIST_HINT = {
    "none_apply": "Numbers of those that apply (2 5), 0 if none; 3? marks one unknown, "
    "? all unknown.",
    "all_hold": "Numbers of those that do NOT hold (2 5), 0 if all hold; 3? marks one "
    "unknown, ? all unknown.",
}

# the last line of a verdict, which names the protocol and version it was screened against
_TRACE = re.compile(
    r"verdict: \w+ · protocol (?P<protocol>\S+) version (?P<version>.+) \([0-9a-f]*\)"
    r" · screened \S+"
)
_HEADING = re.compile(r"── (?P<name>.+) ──")


def _block(text: str) -> str:
    """``text`` kept one block: a line break inside it (a quote of several lines) indented."""
    return text.replace("\n", "\n" + INDENT)


def _heading(name: str) -> str:
    return f"── {name} ──"


def layout(text: str) -> list[list[str]]:
    """The sections of a text as rendered here, and in each its blocks (a line with the
    :data:`INDENT`-ed lines after it); joined back, they give ``text``."""
    sections = []
    for section in text.split("\n\n"):
        blocks: list[str] = []
        for line in section.split("\n"):
            if blocks and line.startswith(INDENT):
                blocks[-1] += "\n" + line
            else:
                blocks.append(line)
        sections.append(blocks)
    return sections


def section_title(blocks: Sequence[str]) -> str | None:
    """The protocol and version a section is about ("blina-dli 1.1 verdict"), from its
    verdict's last line, else from its heading; None for a section without either."""
    for block in blocks:
        if found := _TRACE.fullmatch(block):
            return f"{found['protocol']} {found['version']} verdict"
    heading = _HEADING.fullmatch(blocks[0]) if blocks else None
    return heading["name"] if heading else None


def values_text(values: Mapping[str, Any], estimated: Collection[str] = ()) -> str:
    """The values a rule read, ``creatinine_x_uln = 1.2, crcl (estimated) = 41.0``: an
    estimate marked as one and rounded to one decimal (the dictionary)."""
    return ", ".join(
        f"{name} (estimated) = {_rounded(value)}"
        if name in estimated
        else f"{name} = {format_value(value)}"
        for name, value in values.items()
    )


def reason_text(reason: Reason) -> str:
    answers = values_text(reason.answers, reason.estimated)
    line = _block(f"{reason.criterion} {reason.label}: {answers}")
    line += f"\n{INDENT}“{_block(reason.source)}”"
    line += f"\n{INDENT}{RECOVERY[reason.recoverable] if reason.recoverable else NO_RECOVERY}"
    if reason.meets_from and reason.meets_from_open_on:
        when = open_from_text(
            reason.meets_from, reason.meets_from_anchor, reason.meets_from_open_on
        )
        line += f" ({when})"
    elif reason.meets_from:
        line += f" (met {meets_from_text(reason.meets_from, reason.meets_from_anchor)})"
    elif reason.window_closed:
        line += f"\n{INDENT}the time window has passed: waiting will not make it pass"
    return line


def open_item_text(item: OpenItem) -> str:
    """``crcl_ml_min (missing data) for I8d CrCl ≥ 50``; an item keeping several criteria
    open names only their ids (its label is the first one's and would read as the last's)."""
    advice = f": {item.advice}" if item.advice else ""
    several = len(item.criteria) > 1
    named = ", ".join(item.criteria) if several else f"{item.criterion} {item.label}"
    return f"{item.variable} ({OPEN_KIND[item.kind]}{advice}) for {named}"


def estimate_text(estimate: Estimate) -> str:
    inputs = ", ".join(f"{k} {format_value(v)}" for k, v in estimate.inputs.items())
    return (
        f"{estimate.name} ({estimate.label}) {estimate.value:.1f} {estimate.unit} (rounded to "
        f"0.1; the unrounded value decides) by {estimate.formula.split(':')[0]} from {inputs}"
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
        lines += [_block(f"• {open_item_text(item)}") for item in verdict.open_items]
    lines += [_block(f"Estimated: {estimate_text(e)}") for e in verdict.estimates]
    lines += [_block(f"⚠ {w.message}") for w in verdict.warnings]
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
        lines += ["", _heading(f"{number}. {verdict.protocol.id}"), verdict_text(verdict)]
    return "\n".join(lines)


def _with_unit(value: Any, unit: str) -> str:
    """A value read, with its unit when it is a number ("unknown" has none)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return f"{format_value(value)} {unit}" if unit and number else format_value(value)


def check_text(reading: Reading, judged: Sequence[Judged]) -> str:
    """A quick check in words: what was read, what was not (and why), then per protocol
    what already fails and what is still unknown; a check with nothing missing gets the
    verdict in full."""
    lines = []
    if reading.given:
        # each value with its unit: "creatinine 1.9" copied from a lab sheet in mg/dL is read
        # as 1.9 × ULN, and the line is where a coordinator can see it
        read = " · ".join(f"{g.variable} {_with_unit(g.value, g.unit)}" for g in reading.given)
        lines.append(f"Read: {read}")
    else:
        lines.append("Nothing could be read as a value.")
    if reading.referral:
        lines.append(f"Referral: {reading.referral}")
    if reading.unread:
        lines.append("Not used:")
        lines += [_block(f"• '{u.part}' — {u.why}") for u in reading.unread]
    for found in judged:
        verdict = found.verdict
        lines += ["", _heading(f"{verdict.protocol.id} {verdict.protocol.version}")]
        missing = [i for i in found.open_items if i.kind == "missing"]
        if not missing:
            lines.append(verdict_text(verdict))
            continue
        if verdict.reasons:
            lines.append(f"{VERDICT_HEADLINE['not_eligible']}: already failing")
            lines += [f"• {reason_text(r)}" for r in verdict.reasons]
        else:
            lines.append("Nothing fails so far.")
        lines.append(f"Still unknown ({len(missing)}): " + ", ".join(i.variable for i in missing))
        judgment = [i.variable for i in found.open_items if i.kind == "judgment"]
        if judgment:
            lines.append(f"The investigator's judgment ({len(judgment)}): {', '.join(judgment)}")
        confirm = [i for i in found.open_items if i.kind == "confirm"]
        lines += [_block(f"• {open_item_text(i)}") for i in confirm]
        lines += [_block(f"Estimated: {estimate_text(e)}") for e in verdict.estimates]
        lines += [_block(f"⚠ {w.message}") for w in verdict.warnings]
    return "\n".join(lines)
