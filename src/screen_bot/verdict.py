"""The verdict of a pre-screen: eligible, not eligible or unresolved, with its reasons."""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from .protocol import Protocol
from .rules.evaluation import Outcome, evaluate

VerdictValue = Literal["eligible", "not_eligible", "unresolved"]
DAYS_PER = {"month": 365.25 / 12, "year": 365.25}


class ProtocolRef(BaseModel):
    id: str
    version: str
    sha256: str

    @classmethod
    def of(cls, protocol: Protocol) -> ProtocolRef:
        return cls(id=protocol.id, version=protocol.version, sha256=protocol.sha256)


class Reason(BaseModel):
    """A criterion that failed, with the answers that decided it."""

    criterion: str
    kind: Literal["inclusion", "exclusion"]
    label: str
    source: str
    answers: dict[str, Any]
    estimated: list[str] = []
    recoverable: Literal["retest", "wait"] | None = None
    meets_from: date | None = None


class OpenItem(BaseModel):
    """What keeps an unresolved verdict open (a not-eligible verdict needs nothing more)."""

    criterion: str
    variable: str
    kind: Literal["missing", "judgment"]
    label: str


class Verdict(BaseModel):
    referral: str | None = None
    verdict: VerdictValue
    reasons: list[Reason] = []
    open_items: list[OpenItem] = []
    estimated: list[str] = []  # derived values that were calculated (e.g. crcl), not measured
    protocol: ProtocolRef
    screened_on: date


def decide(outcomes: list[Outcome]) -> VerdictValue:
    """A definite failure outranks unknowns; eligible only when every rule is met."""
    if any(o.status == "failed" for o in outcomes):
        return "not_eligible"
    if any(o.status == "unknown" for o in outcomes):
        return "unresolved"
    return "eligible"


def build(
    protocol: Protocol,
    answers: Mapping[str, Any],
    *,
    referral: str | None = None,
    screened_on: date | None = None,
) -> Verdict:
    screened_on = screened_on or datetime.now(UTC).date()
    outcomes = evaluate(protocol, answers)
    value = decide(outcomes)
    reasons = [_reason(protocol, o, screened_on) for o in outcomes if o.status == "failed"]
    open_items = [
        OpenItem(
            criterion=o.criterion,
            variable=variable,
            kind="judgment" if protocol.criteria[o.criterion].judgment else "missing",
            label=protocol.criteria[o.criterion].label,
        )
        for o in outcomes
        if o.status == "unknown" and value == "unresolved"
        for variable in o.open_variables
    ]
    return Verdict(
        referral=referral,
        verdict=value,
        reasons=reasons,
        open_items=open_items,
        estimated=sorted({name for o in outcomes for name in o.estimated}),
        protocol=ProtocolRef.of(protocol),
        screened_on=screened_on,
    )


def _reason(protocol: Protocol, outcome: Outcome, screened_on: date) -> Reason:
    criterion = protocol.criteria[outcome.criterion]
    meets_from = None
    if criterion.recoverable == "wait":
        meets_from = _meets_from(protocol, outcome, screened_on)
    return Reason(
        criterion=criterion.id,
        kind=criterion.kind,
        label=criterion.label,
        source=criterion.source,
        answers=outcome.values,
        estimated=list(outcome.estimated),
        recoverable=criterion.recoverable,
        meets_from=meets_from,
    )


def _meets_from(protocol: Protocol, outcome: Outcome, screened_on: date) -> date | None:
    """For a rule on a value that grows with time, the first day it will be met."""
    criterion = protocol.criteria[outcome.criterion]
    wanted = {
        "inclusion": {ast.GtE: 0.0, ast.Gt: 1.0},
        "exclusion": {ast.Lt: 0.0, ast.LtE: 1.0},  # 'applies when x < c' is met once x ≥ c
    }[criterion.kind]
    for comparison in protocol.rules[criterion.id].comparisons:
        question = protocol.questions.get(comparison.variable)
        value = outcome.values.get(comparison.variable)
        if question is None or question.time_unit is None or value is None:
            continue
        if comparison.op in wanted and value < comparison.constant:
            days = (comparison.constant - value) * DAYS_PER[question.time_unit]
            return screened_on + timedelta(days=math.ceil(days) + wanted[comparison.op])
    return None
