"""A walk-through of a protocol's criteria: the protocol's words, the questions, what decides."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..protocol import Protocol
from ..protocol.schema import Derived
from ..rules.calculators import CALCULATORS
from ..rules.evaluation import clocks_read
from ..rules.expressions import SCREENING_DATE, Compare, Name, Node, Shift, walk
from ..words import NO_RECOVERY, RECOVERY
from .ids import id_matches
from .thresholds import (
    MAX_COMBINATIONS,
    Threshold,
    cases_text,
    compared,
    scales,
    thresholds,
    values_to_try,
)

RULE_WORDS = {"inclusion": "met when", "exclusion": "excludes when"}
FAILING_WORDS = {"inclusion": "keeps it from being met", "exclusion": "makes it apply"}
FAR_AHEAD = date(3000, 1, 1)  # a day after every date an answer may be


@dataclass(frozen=True)
class Asked:
    """A question the bot asks for a criterion."""

    variable: str
    text: str
    when: str | None = None


@dataclass(frozen=True)
class Step:
    """One criterion: what the protocol says, what the bot asks, what decides."""

    number: int
    total: int
    criterion: str
    kind: str
    label: str
    source: str
    rule: str
    judgment: bool
    recoverable: str | None
    asked: tuple[Asked, ...]
    derived: tuple[str, ...]  # how derived values the rule reads are obtained
    decides: tuple[Threshold, ...]  # thresholds of the numeric names the rule limits alone
    implied_by: tuple[str, ...] = ()  # criteria whose thresholds make this one always met
    windows: tuple[str, ...] = ()  # the time windows the rule counts, in words
    tables: tuple[str, ...] = ()  # lookup tables the rule reads, row by row
    notes: tuple[str, ...] = ()  # the file's notes on this criterion (questions for the sponsor)
    conditional: tuple[str, ...] = ()  # numeric names the rule compares with no single threshold
    # a time-based criterion ("wait") only some failures of which pass later: which, in words
    passes_later_when: str = ""

    @property
    def together(self) -> str:
        """All deciding thresholds of this criterion, e.g. ``creatinine_x_uln ≤ 2 × ULN and …``."""
        return " and ".join(t.text() for t in self.decides)


def walkthrough(protocol: Protocol, criterion: str | None = None) -> list[Step]:
    """The steps, in the dialog file's order; ``criterion`` keeps ids starting with it."""
    found = thresholds(protocol)
    ids = list(protocol.criteria)
    steps = []
    for number, cid in enumerate(ids, start=1):
        if criterion and not id_matches(criterion, cid):
            continue
        c = protocol.criteria[cid]
        expr = protocol.rules[cid]
        variables = {v for name in expr.names for v in protocol.inputs_of(name)}
        names = compared(protocol, expr)
        decides = tuple(found[name] for name in names if name in found and found[name].criteria)
        implied_by = _implied(protocol, cid, decides)
        conditional: tuple[str, ...] = ()
        if not implied_by:  # say only what this rule's own thresholds decide
            decides = tuple(t for t in decides if cid in t.criteria)
            conditional = tuple(
                name for name in names if name in found and cid in found[name].conditional
            )
        steps.append(
            Step(
                number=number,
                total=len(ids),
                criterion=cid,
                kind=c.kind,
                label=c.label,
                source=c.source,
                rule=c.rule,
                judgment=c.judgment is not False,
                recoverable=c.recoverable,
                asked=tuple(
                    Asked(v, protocol.questions[v].text, protocol.questions[v].when)
                    for v in protocol.order
                    if v in variables
                ),
                derived=tuple(
                    _derived_text(d) for d in protocol.spec.derived if d.name in expr.names
                ),
                decides=decides,
                implied_by=implied_by,
                windows=tuple(windows(expr.node, protocol)),
                tables=tuple(
                    _table_text(protocol, name) for name in protocol.tables if name in expr.names
                ),
                notes=tuple(n.text for n in protocol.spec.notes if cid in n.criteria),
                conditional=conditional,
                passes_later_when=_passes_later_when(protocol, cid),
            )
        )
    return steps


def _passes_later_when(protocol: Protocol, cid: str) -> str:
    """For a time-based criterion ("wait", reading the screening date or an anchor) with
    failures no later day ends, the failures a later day may end, in words: "with a later
    planned_infusion_date, only when its time window alone keeps it from being met
    (transplant_date at least 6 months before planned_infusion_date)"; "" when every failure
    may pass later (or none is time-based). Only the first clock read is named, with its
    windows: an anchor, when the rule reads one, as a failure is dated from it (ctl019's
    C-I1b reads the screening date too, but a later screening alone cannot end a failure,
    since the planned date may not lie before it)."""
    criterion = protocol.criteria[cid]
    clocks = clocks_read(protocol, cid)
    if criterion.recoverable != "wait" or not clocks or not _fails_for_good(protocol, cid):
        return ""
    expr = protocol.rules[cid]
    clock = clocks[0]
    later = "screening date" if clock == SCREENING_DATE else clock
    said = "; ".join(windows(expr.node, protocol, clock))
    return (
        f"with a later {later}, only when its time window alone "
        f"{FAILING_WORDS[criterion.kind]}" + (f" ({said})" if said else "")
    )


def _fails_for_good(protocol: Protocol, cid: str) -> bool:
    """Whether some answers fail the criterion whichever clock it reads (the screening date,
    an anchor) moves far ahead: a failure that waiting cannot end (C-I1b of a patient in a
    first relapse with no transplant). True too when there are too many answers to try."""
    expr = protocol.rules[cid]
    clocks = clocks_read(protocol, cid)
    failed = protocol.criteria[cid].kind == "exclusion"  # the value of a failed rule
    found = scales(protocol)
    # a lone clock is moved whatever its answer was: only the others are tried
    names = sorted(expr.names - set(clocks) if len(clocks) == 1 else expr.names)
    domains: list[list[Any]] = []
    for name in names:
        tried = values_to_try(protocol, found, name, expr)
        if tried is None:
            return True
        domains.append(tried)
    if math.prod(len(d) for d in domains) * len(clocks) > MAX_COMBINATIONS:
        return True
    for values in itertools.product(*domains):
        answers = dict(zip(names, values, strict=True))
        if all(expr.evaluate({**answers, clock: FAR_AHEAD}) is failed for clock in clocks):
            return True
    return False


def _derived_text(derived: Derived) -> str:
    estimates = []
    for use in derived.uses:
        when = f" when {use.when}" if use.when else ""
        estimates.append(CALCULATORS[use.calculator].description + when)
    measured = f"{derived.measured} when measured, else " if derived.measured else ""
    return f"{derived.name} ({derived.label}, {derived.unit}): {measured}" + "; else ".join(
        estimates
    )


def _table_text(protocol: Protocol, name: str) -> str:
    table = protocol.table_specs[name]
    unit = f" {table.unit}" if table.unit else ""
    rows = "; ".join(f"{row.when}: {row.value:g}{unit}" for row in table.rows)
    return f"{name} ({table.label}): {rows}"


WINDOW_WORDS = {
    ">=": "at least",
    ">": "more than",
    "<": "less than",
    "<=": "at most",
}
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def windows(tree: Node, protocol: Protocol, clock_read: str | None = None) -> list[str]:
    """``clock op event + window`` comparisons in words: "transplant_date at least 2 months
    before the screening date" (clock: the screening date or an anchor; only ``clock_read``
    when given)."""
    clocks = {clock_read} if clock_read else {SCREENING_DATE, *protocol.spec.anchors}
    found = []
    for node in walk(tree):
        if not isinstance(node, Compare):
            continue
        clock, other, op = node.left, node.right, node.op
        if isinstance(other, Name) and not isinstance(clock, Name):
            clock, other, op = other, clock, FLIP[op]
        if not (isinstance(clock, Name) and clock.name in clocks):
            continue
        if not isinstance(other, Shift | Name):
            continue
        event = other.base if isinstance(other, Shift) else other
        if not isinstance(event, Name) or op not in WINDOW_WORDS:
            continue
        at = "the screening date" if clock.name == SCREENING_DATE else clock.name
        if isinstance(other, Shift):
            count = abs(other.amount)
            amount = f"{count} {other.unit.rstrip('s') if count == 1 else other.unit}"
            side = "before" if other.amount >= 0 else "after"
            found.append(f"{event.name} {WINDOW_WORDS[op]} {amount} {side} {at}")
        else:
            found.append(f"{event.name} {op} {at}")
    return found


def _implied(protocol: Protocol, cid: str, decides: tuple[Threshold, ...]) -> tuple[str, ...]:
    """The other criteria that decide, when within their thresholds this rule is always met."""
    expr = protocol.rules[cid]
    names = [t.name for t in decides]
    if (
        not decides
        or set(names) != expr.names
        or any(cid in t.deciding or not t.samples for t in decides)
    ):
        return ()
    wanted = protocol.criteria[cid].kind == "inclusion"
    for values in itertools.product(*(t.samples for t in decides)):
        if expr.evaluate(dict(zip(names, values, strict=True))) is not wanted:
            return ()
    return tuple(dict.fromkeys(c for t in decides for c in t.deciding))


def step_text(protocol: Protocol, step: Step) -> str:
    lines = [f"{step.criterion} ({step.number}/{step.total}) · {step.kind} · {step.label}"]
    lines.append(f"  Protocol: “{step.source}”")
    lines.append("  The bot asks:")
    for asked in step.asked:
        when = f", only when {asked.when}" if asked.when else ""
        lines.append(f"    · {asked.text} [{asked.variable}{when}]")
    lines += [f"    · {text}" for text in step.derived]
    lines.append(f"  Rule: {RULE_WORDS[step.kind]} {step.rule}")
    lines += [f"  Time window: {w}" for w in step.windows]
    lines += [f"  Table: {t}" for t in step.tables]
    if step.decides:
        lines.append(f"  What decides: {step.together}")
        lines += [f"    · {_origin(protocol, step, t)}" for t in step.decides]
        if step.implied_by:
            lines.append(
                f"    · within these thresholds this criterion is always met: "
                f"{', '.join(step.implied_by)} decide{'s' if len(step.implied_by) == 1 else ''}"
            )
    if step.conditional:
        names = " and ".join(step.conditional)
        decides = f"no single threshold of {names}: the rule's own condition decides"
        if step.decides:
            lines.append(f"    · {decides}")
        else:
            lines.append(f"  What decides: {decides}")
    notes = []
    if step.judgment:
        notes.append("the investigator's judgment")
    if step.passes_later_when:
        notes.append(
            f"{RECOVERY['wait']}, {step.passes_later_when}; any other failure {NO_RECOVERY}"
        )
    else:
        notes.append(
            RECOVERY[step.recoverable] if step.recoverable else NO_RECOVERY
        )  # as a verdict
    lines.append(f"  Note: {'; '.join(notes)}")
    lines += [f"  Question for the sponsor: {n}" for n in step.notes]
    return "\n".join(lines)


def _origin(protocol: Protocol, step: Step, threshold: Threshold) -> str:
    """Which criteria set a threshold, and how this criterion alone compares."""
    prefix = f"{threshold.name}: " if len(step.decides) > 1 else ""
    others = [c for c in threshold.deciding if c != step.criterion]
    named = ", ".join(f"{c} ({protocol.criteria[c].label})" for c in others)
    if step.criterion in threshold.deciding:
        looser = [c for c in threshold.criteria if c not in threshold.deciding]
        return (
            prefix
            + "set by this criterion"
            + (f" and by {named}" if named else "")
            + "".join(
                f"; stricter than {c} ({protocol.criteria[c].label}), "
                f"which alone allows {cases_text(threshold.own[c])}"
                for c in looser
            )
        )
    if step.criterion in threshold.own:
        own = cases_text(threshold.own[step.criterion])
        alone = "allows any value" if own == "any value" else f"allows {own}"
    else:
        alone = "sets no single threshold of it"
    return f"{prefix}set by {named}, stricter than this criterion, which alone {alone}"


def walkthrough_text(protocol: Protocol, criterion: str | None = None) -> str:
    """The whole walk-through as text, ending with the thresholds that decide."""
    steps = walkthrough(protocol, criterion)
    if not steps:
        known = ", ".join(protocol.criteria)
        return f"No criterion of {protocol.id} starts with '{criterion}' (criteria: {known})."
    head = [
        f"{protocol.spec.title} — {protocol.id} version {protocol.version}",
        "A patient is eligible when every inclusion criterion is met and no exclusion "
        "criterion applies; where two criteria limit the same measure, the stricter decides.",
        "",
    ]
    body = "\n\n".join(step_text(protocol, s) for s in steps)
    if criterion:
        return "\n".join(head) + "\n" + body
    summary = ["", "", "Thresholds that decide:"]
    summary += [
        f"  {t.text()}  ({', '.join(t.deciding)})"
        for t in thresholds(protocol).values()
        if t.criteria
    ]
    return "\n".join(head) + "\n" + body + "\n".join(summary)
