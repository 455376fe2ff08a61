"""Generated patients for the SQL agreement tests: answers at every threshold of a protocol.

Driven by the protocol alone: every number a rule, condition or table row compares with
(and one step either side), every choice, subsets of every multi-select, unknowns, dates
around every window (also counted from the other dates a rule compares them with), month
ends, and ``none``. Each value is checked with ``answers.check_value`` as a batch row would
be; a value the Python engine would refuse is left unknown.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from screen_bot.answers import AnswerError, check_value
from screen_bot.protocol import Protocol
from screen_bot.rules.dates import NEVER, shift
from screen_bot.rules.evaluation import context, statuses
from screen_bot.rules.expressions import SCREENING_DATE, Compare, Name, Node, Shift, walk

UNKNOWN_SHARE = 0.12
_SCREENING_DAYS = [
    date(2026, 1, 31),
    date(2026, 2, 28),
    date(2028, 2, 29),
    date(2028, 3, 31),
    date(2026, 4, 30),
    date(2026, 8, 31),
    date(2026, 12, 31),
    date(2027, 3, 1),
    date(2026, 1, 15),
]


@dataclass(frozen=True)
class Patient:
    screened_on: date
    answers: dict[str, Any]  # typed as check_value returns them; absent = unknown
    referral: str


def _trees(protocol: Protocol) -> list[Node]:
    trees = [e.node for e in protocol.rules.values()]
    trees += [e.node for e in protocol.when.values()]
    trees += [cond.node for rows in protocol.tables.values() for cond, _ in rows]
    trees += [e.when.node for ests in protocol.estimates.values() for e in ests if e.when]
    return trees


def _date_name(node: Node) -> str | None:
    while isinstance(node, Shift):
        node = node.base
    return node.name if isinstance(node, Name) else None


class Population:
    """A seeded generator of patients for one protocol."""

    def __init__(self, protocol: Protocol, seed: int = 15) -> None:
        self.protocol = protocol
        self.random = random.Random(seed)
        self.thresholds: dict[str, set[float]] = {}
        self.windows: set[tuple[int, str]] = {(0, "days")}
        self.relations: dict[str, list[tuple[str, Windows]]] = {}  # a ≈ b shifted
        for tree in _trees(protocol):
            for comparison in _comparisons(tree):
                if isinstance(comparison[1], int | float) and not isinstance(comparison[1], bool):
                    self.thresholds.setdefault(comparison[0], set()).add(float(comparison[1]))
            for node in walk(tree):
                if isinstance(node, Shift):
                    self.windows.add((abs(node.amount), node.unit))
                if isinstance(node, Compare) and node.dates:
                    self._relate(node)

    def _relate(self, node: Compare) -> None:
        """``a + wa op b + wb``: a date of a at the boundary is b + wb - wa (and vice versa)."""
        left, right = _date_name(node.left), _date_name(node.right)
        if left is None or right is None:
            return
        wl, wr = _windows(node.left), _windows(node.right)
        self.relations.setdefault(left, []).append((right, wr + _negated(wl)))
        self.relations.setdefault(right, []).append((left, wl + _negated(wr)))

    def patients(self, count: int, seeds: int = 100, first: int = 0) -> Iterator[Patient]:
        """A third drawn at random (mostly not eligible, failing many rules); the rest are
        near-eligible patients with a few answers drawn again or left unknown, so every
        verdict, single failures, open items and confirmations are common."""
        pool = [self._near_eligible() for _ in range(min(seeds, count))]
        for number in range(first, first + count):
            if self.random.random() < 0.3:
                screened_on = self._screening_day()
                answers = self._answers(screened_on)
            else:
                screened_on, base = self.random.choice(pool)
                answers = self._mutated(screened_on, base)
            yield Patient(screened_on, answers, f"G-{number}")

    def _near_eligible(self) -> tuple[date, dict[str, Any]]:
        """Answers chosen greedily, question by question, to fail as little as possible."""
        screened_on = self._screening_day()
        answers = self._answers(screened_on)
        for variable in self.protocol.order:
            best, best_cost = answers.get(variable), self._cost(answers, screened_on)
            if best_cost:
                for _ in range(4):
                    candidate = dict(answers)
                    value = self._checked(variable, screened_on, candidate)
                    if value is None:
                        continue
                    candidate[variable] = value
                    cost = self._cost(candidate, screened_on)
                    if cost < best_cost:
                        best, best_cost = value, cost
            if best is None:
                answers.pop(variable, None)
            else:
                answers[variable] = best
        return screened_on, answers

    def _cost(self, answers: dict[str, Any], screened_on: date) -> float:
        found = statuses(self.protocol, context(self.protocol, answers, screened_on))
        return sum(1.0 if s == "failed" else 0.3 if s != "met" else 0.0 for s in found)

    def _mutated(self, screened_on: date, base: dict[str, Any]) -> dict[str, Any]:
        answers = dict(base)
        for _ in range(self.random.choice((0, 1, 1, 1, 2, 2, 3, 5))):
            variable = self.random.choice(self.protocol.order)
            value = None
            if self.random.random() > 0.3:
                value = self._checked(variable, screened_on, answers)
            if value is None:
                answers.pop(variable, None)
            else:
                answers[variable] = value
        return answers

    def _checked(self, variable: str, screened_on: date, answers: dict[str, Any]) -> Any:
        question = self.protocol.questions[variable]
        if question.type == "text":
            return None
        dates = {k: v for k, v in answers.items() if isinstance(v, date)}
        dates[SCREENING_DATE] = screened_on
        try:
            return check_value(question, self._value(variable, screened_on, dates), screened_on)
        except AnswerError:
            return None

    def _screening_day(self) -> date:
        r = self.random
        if r.random() < 0.6:
            return r.choice(_SCREENING_DAYS)
        return date(2025, 1, 1) + timedelta(days=r.randrange(0, 4 * 366))

    def _answers(self, screened_on: date) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for variable in self.protocol.order:
            if self.random.random() < UNKNOWN_SHARE:
                continue
            value = self._checked(variable, screened_on, answers)
            if value is not None:
                answers[variable] = value
        return answers

    def _value(self, variable: str, screened_on: date, dates: dict[str, date]) -> Any:
        q = self.protocol.questions[variable]
        r = self.random
        if q.type == "yes_no":
            return r.random() < 0.5
        if q.type == "choice":
            choices = list(q.choices or [])
            if q.multiple:
                return [c for c in choices if r.random() < 0.25]
            return r.choice(choices)
        if q.type in ("int", "number"):
            return self._number(variable, q.type == "int", q.min or 0.0, q.max or 0.0)
        if q.type == "date_or_none" and r.random() < 0.2:
            return NEVER
        return self._date(variable, q.future, screened_on, dates).isoformat()

    def _number(self, variable: str, whole: bool, low: float, high: float) -> int | float:
        r = self.random
        thresholds = sorted(self.thresholds.get(variable, ()))
        roll = r.random()
        if thresholds and roll < 0.6:
            steps = (0, 1, -1) if whole else (0, 0.01, -0.01, 0.1, -0.1, 1, -1)
            value = r.choice(thresholds) + r.choice(steps)
        elif roll < 0.65:
            value = r.choice((low, high))
        else:
            value = r.uniform(low, high)
        value = min(max(value, low), high)
        return int(round(value)) if whole else round(value, 2)

    def _date(self, variable: str, future: bool, screened_on: date, dates: dict[str, date]) -> date:
        r = self.random
        roll = r.random()
        related = [rel for rel in self.relations.get(variable, []) if rel[0] in dates]
        jitter = timedelta(days=r.choice((-2, -1, 0, 0, 1, 2)))
        try:
            if related and roll < 0.45:
                other, windows = r.choice(related)
                day = dates[other]
                for amount, unit in windows:
                    day = shift(day, amount, unit)  # type: ignore[arg-type]
                return day + jitter
            if roll < 0.75:
                amount, unit = r.choice(sorted(self.windows))
                return shift(screened_on, amount if future else -amount, unit) + jitter  # type: ignore[arg-type]
            if roll < 0.82:  # a month end
                month_end = shift(screened_on.replace(day=1), r.randrange(-24, 1), "months")
                return shift(month_end, 1, "months") - timedelta(days=1)
        except OverflowError:
            pass
        days = timedelta(days=r.randrange(0, 900))
        return screened_on + days if future else screened_on - days


Windows = list[tuple[int, str]]


def _windows(node: Node) -> Windows:
    found = []
    while isinstance(node, Shift):
        found.append((node.amount, node.unit))
        node = node.base
    return found


def _negated(windows: Windows) -> Windows:
    return [(-amount, unit) for amount, unit in reversed(windows)]


def _comparisons(tree: Node) -> Iterator[tuple[str, Any]]:
    from screen_bot.rules.expressions import Const, Ordinal

    for node in walk(tree):
        if not isinstance(node, Compare):
            continue
        for named, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(named, Name | Ordinal) and isinstance(other, Const):
                yield named.name, other.value
