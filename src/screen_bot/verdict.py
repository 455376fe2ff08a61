"""The verdict of a pre-screen: eligible, not eligible or unresolved, with its reasons."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field, model_validator

from .answers import shown_outside, today
from .protocol import Protocol
from .rules.calculators import CALCULATORS
from .rules.evaluation import (
    Context,
    Outcome,
    Status,
    Used,
    context,
    estimates_used,
    outcome,
    status_of_each,
)
from .rules.expressions import SCREENING_DATE
from .rules.whole_row import Parts, Row, row_checks
from .rules.windows import Waiting, waiting

VerdictValue = Literal["eligible", "not_eligible", "unresolved"]
OpenKind = Literal["missing", "judgment", "confirm"]


class ProtocolRef(BaseModel):
    id: str
    version: str
    sha256: str

    @classmethod
    def of(cls, protocol: Protocol) -> ProtocolRef:
        return cls(id=protocol.id, version=protocol.version, sha256=protocol.sha256)


def met_on_its_day(open_on: list[str]) -> bool:
    """A reason's ``meets_from_open_on`` is left unwritten when empty (met on its day)."""
    return not open_on


class Reason(BaseModel):
    """A criterion that failed, with the answers that decided it."""

    criterion: str
    kind: Literal["inclusion", "exclusion"]
    label: str
    source: str
    answers: dict[str, Any]
    estimated: list[str] = []
    recoverable: Literal["retest", "wait"] | None = None
    meets_from: date | None = None  # the first day it no longer fails, when a date follows
    meets_from_anchor: str | None = None  # None: the screening date; else the planned date
    window_closed: bool = False  # failed on a time window that only past days would meet
    # the answers still unknown that keep it open from meets_from; empty: it is met from
    # then, and not written (the JSON of such a verdict is as before the field was)
    meets_from_open_on: list[str] = Field(default_factory=list, exclude_if=met_on_its_day)


class OpenItem(BaseModel):
    """What keeps an unresolved verdict open: one variable, and the criteria it decides."""

    criterion: str  # the first criterion it keeps open
    criteria: list[str] = []  # every criterion it keeps open (records before 1.1: none)
    variable: str
    kind: OpenKind
    label: str  # the first criterion's label
    advice: str = ""  # for kind confirm: what to measure

    @model_validator(mode="after")
    def _at_least_its_criterion(self) -> OpenItem:
        if not self.criteria:
            self.criteria = [self.criterion]
        return self


class Estimate(BaseModel):
    """A value the verdict used that was calculated, not measured."""

    name: str
    label: str
    value: float  # rounded to one decimal for display; decisions used the unrounded value
    unit: str
    calculator: str
    formula: str
    inputs: dict[str, Any]


class Unusual(BaseModel):
    """An answer outside the protocol's plausibility limits: valid, but worth a second look."""

    variable: str
    value: float
    message: str


class Verdict(BaseModel):
    referral: str | None = None
    verdict: VerdictValue
    reasons: list[Reason] = []
    open_items: list[OpenItem] = []
    estimated: list[str] = []  # derived values that were calculated (e.g. crcl), not measured
    estimates: list[Estimate] = []
    warnings: list[Unusual] = []
    protocol: ProtocolRef
    screened_on: date


def decide(found: list[Outcome]) -> VerdictValue:
    """A definite failure outranks open items; eligible only when every rule is met."""
    return decide_statuses([o.status for o in found])


def decide_statuses(statuses: Sequence[str]) -> VerdictValue:
    if "failed" in statuses:
        return "not_eligible"
    if statuses.count("met") == len(statuses):
        return "eligible"
    return "unresolved"


RANK = {"eligible": 0, "unresolved": 1, "not_eligible": 2}


def ranked(verdicts: list[Verdict]) -> list[Verdict]:
    """Best first: eligible, then unresolved by number of open items, then not eligible
    (a stable sort: equals keep their order)."""
    return sorted(verdicts, key=lambda v: rank(v.verdict, v.open_items))


def rank(verdict: VerdictValue, open_items: list[Any]) -> tuple[int, int]:
    """Where a verdict stands in :func:`ranked`'s order (lower is better)."""
    return RANK[verdict], len(open_items)


def build(
    protocol: Protocol,
    answers: Mapping[str, Any],
    *,
    referral: str | None = None,
    screened_on: date | None = None,
) -> Verdict:
    return Verdict(**fields_of(protocol, answers, referral=referral, screened_on=screened_on))


def fields_of(
    protocol: Protocol,
    answers: Mapping[str, Any],
    *,
    referral: str | None = None,
    screened_on: date | None = None,
) -> dict[str, Any]:
    """The verdict's fields as plain data, in the model's order (see :func:`verdict_json`)."""
    screened_on = screened_on or today()
    ctx = context(protocol, answers, screened_on)
    found = status_of_each(protocol, ctx)
    # details only for what did not pass: reasons, open items
    details = [outcome(protocol, cid, ctx) for cid, status in found.items() if status != "met"]
    return assembled_fields(
        protocol, ctx, found, details, referral=referral, screened_on=screened_on
    )


def verdict_json(fields: dict[str, Any]) -> bytes:
    """``Verdict(**fields).model_dump_json()`` as UTF-8, faster: orjson writes the same
    compact JSON for these plain values (a test holds it to pydantic's); what it cannot
    write (an integer past 64 bits, a set) goes through the model."""
    try:
        return orjson.dumps(fields)
    except orjson.JSONEncodeError:
        return Verdict(**fields).model_dump_json().encode()


def assembled_fields(
    protocol: Protocol,
    ctx: Context,
    found: Mapping[str, Status],
    details: list[Outcome],
    *,
    referral: str | None,
    screened_on: date,
    waits: Callable[[str], Waiting | None] | None = None,
) -> dict[str, Any]:
    """The verdict's fields from every criterion's status and the outcomes of those not met
    (``Verdict(**fields)`` is the model); ``waits`` gives a failed criterion's "met from"
    when it was found elsewhere (the SQL engine), else it is computed here."""
    value = decide_statuses(tuple(found.values()))
    used = estimates_used(protocol, ctx, found) if ctx.estimated else []
    wait_of = waits or (lambda criterion: waiting(protocol, criterion, ctx))
    reasons, items = _details(protocol, value, details, lambda o: wait_of(o.criterion))
    return _fields(
        protocol,
        value,
        reasons,
        items,
        used,
        [_estimate(protocol, name, ctx.env[name], *_made(ctx.estimated[name])) for name in used],
        _warnings(protocol, ctx),
        referral,
        screened_on,
    )


def row_fields(
    protocol: Protocol,
    answers: Mapping[str, Any],
    *,
    referral: str | None = None,
    screened_on: date | None = None,
) -> dict[str, Any]:
    """:func:`fields_of`, faster: a protocol's whole-row checks (``rules/whole_row.py``)
    give the statuses, the estimates used, the unusual answers and the outcomes of the
    criteria not met; a context is made only to find when a failed time window is met.
    Tests hold both equal."""
    screened_on = screened_on or today()
    checks = row_checks(protocol)
    parts = None if checks is None else checks(answers, screened_on)
    if checks is None or parts is None:
        return fields_of(protocol, answers, referral=referral, screened_on=screened_on)
    return parts_fields(protocol, checks, parts, referral, screened_on)


def parts_fields(
    protocol: Protocol, checks: Row, parts: Parts, referral: str | None, screened_on: date
) -> dict[str, Any]:
    """:func:`row_fields` from the parts the whole-row ``checks`` gave."""
    _, used, unusual_answers, _, _, made, details = parts
    value = decide(details)  # (details: an outcome for each criterion not met, and only those)
    reasons: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    if details:  # the outcomes of the criteria not met
        reasons, items = _details(
            protocol, value, details, lambda o: checks.waiting(protocol, o, parts, screened_on)
        )
    warnings = []
    for question, answer in unusual_answers:
        if (warning := _warning(question, answer)) is not None:
            warnings.append(warning)
    return _fields(
        protocol,
        value,
        reasons,
        items,
        used,
        [_estimate(protocol, name, *made[name]) for name in used],
        warnings,
        referral,
        screened_on,
    )


def _details(
    protocol: Protocol,
    value: VerdictValue,
    details: list[Outcome],
    wait_of: Callable[[Outcome], Waiting | None],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The reasons and open items from the outcomes of the criteria not met."""
    failed = [o for o in details if o.status == "failed"]
    reasons = [_reason(protocol, o, wait_of(o)) for o in failed]
    return reasons, _open_items(protocol, details) if value == "unresolved" else []


def _fields(
    protocol: Protocol,
    value: VerdictValue,
    reasons: list[dict[str, Any]],
    items: list[dict[str, Any]],
    used: list[str],
    estimates: list[dict[str, Any]],
    warnings: list[dict[str, Any]],
    referral: str | None,
    screened_on: date,
) -> dict[str, Any]:
    return {
        "referral": referral,
        "verdict": value,
        "reasons": reasons,
        "open_items": items,
        "estimated": used,
        "estimates": estimates,
        "warnings": warnings,
        "protocol": dict(protocol.reference),  # (a copy: a caller may change its fields)
        "screened_on": screened_on,
    }


def open_items(protocol: Protocol, found: list[Outcome]) -> list[OpenItem]:
    """One item per variable and kind, naming every criterion it keeps open."""
    return [OpenItem(**item) for item in _open_items(protocol, found)]


def _open_items(protocol: Protocol, found: list[Outcome]) -> list[dict[str, Any]]:
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for o in found:
        if o.status not in ("unknown", "confirm"):
            continue
        criterion = protocol.criteria[o.criterion]
        for variable in o.open_variables:
            kind: OpenKind = (
                "confirm"
                if o.status == "confirm"
                else "judgment"
                if criterion.judged(variable)
                else "missing"
            )
            item = items.get((variable, kind))
            if item is None:
                items[(variable, kind)] = {
                    "criterion": o.criterion,
                    "criteria": [o.criterion],
                    "variable": variable,
                    "kind": kind,
                    "label": criterion.label,
                    "advice": (criterion.confirm_estimate or "") if kind == "confirm" else "",
                }
            elif o.criterion not in item["criteria"]:
                item["criteria"].append(o.criterion)
    return list(items.values())


def _reason(protocol: Protocol, outcome: Outcome, wait: Waiting | None) -> dict[str, Any]:
    criterion = protocol.criteria[outcome.criterion]
    anchor = None if wait is None or wait.anchor == SCREENING_DATE else wait.anchor
    recoverable = criterion.recoverable
    if recoverable == "wait" and wait is not None and wait.meets_from is None:
        recoverable = None  # a time-based rule that no day ahead meets: waiting cannot help
    return {
        "criterion": criterion.id,
        "kind": criterion.kind,
        "label": criterion.label,
        "source": criterion.source,
        "answers": outcome.values,
        "estimated": list(outcome.estimated),
        "recoverable": recoverable,
        "meets_from": wait.meets_from if wait else None,
        "meets_from_anchor": anchor,
        "window_closed": wait is not None and wait.closed,
        **({"meets_from_open_on": list(wait.open_on)} if wait and wait.open_on else {}),
    }


def estimates_in(protocol: Protocol, ctx: Context, names: Iterable[str]) -> list[Estimate]:
    """The derived values ``names`` calculated in ``ctx``, as a verdict lists its estimates
    (one that no status rests on too, for text that shows its value)."""
    return [
        Estimate(**_estimate(protocol, name, ctx.env[name], *_made(ctx.estimated[name])))
        for name in names
    ]


def _made(used: Used) -> tuple[str, dict[str, Any]]:
    return used.calculator, used.inputs


def _estimate(
    protocol: Protocol, name: str, value: float, calculator: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    derived = protocol.derived[name]
    return {
        "name": name,
        "label": derived.label,
        "value": float(round(value, 1)),
        "unit": derived.unit,
        "calculator": calculator,
        "formula": CALCULATORS[calculator].description,
        "inputs": inputs,
    }


def _warnings(protocol: Protocol, ctx: Context) -> list[dict[str, Any]]:
    found = []
    get = ctx.env.get
    for question in protocol.limited_questions:
        value = get(question.variable)
        if value is None or isinstance(value, bool):
            continue  # unknown, or not asked (ctx.env holds only asked questions)
        if (warning := _warning(question, value)) is not None:
            found.append(warning)
    return found


def _warning(question: Any, value: float) -> dict[str, Any] | None:
    """The warning about an answer outside its plausibility limits; None inside them."""
    if message := unusual(question, value):
        return {"variable": question.variable, "value": float(value), "message": message}
    return None


def unusual(question: Any, value: float) -> str:
    """Why a valid answer is unusual (outside the plausibility limits), or ''. The value
    is shown with the digits that keep it off its limit (79.99999, not 80, below 80)."""
    low, high = question.confirm_below, question.confirm_above
    if (low is None or value >= low) and (high is None or value <= high):
        return ""
    unit = f" {question.unit}" if question.unit else ""
    side = f"below {low:g}" if low is not None and value < low else f"above {high:g}"
    hint = f" — {question.confirm_hint}" if question.confirm_hint else ""
    lowest, highest = -math.inf if low is None else low, math.inf if high is None else high
    shown = shown_outside(value, lowest, highest)
    return f"{shown}{unit} is unusual for {question.variable} ({side}{unit}){hint}"
