"""Quiz cases generated from a protocol's own rules, so any dialog file gets a quiz.

A search finds eligible baseline patients (values chosen from the rules' constants and the
questions' ranges); each case then moves one or two answers to a threshold (exactly at,
just below, just above), flips a yes/no, changes a choice, or makes an answer unknown.
The expected answer is always :func:`verdict.build` on the case, never the move's intent.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..protocol import Protocol
from ..rules.dates import NEVER, shift
from ..rules.evaluation import applicable_questions, evaluate
from ..rules.expressions import SCREENING_DATE, Compare, Name, Node, Shift, walk
from ..verdict import Verdict, VerdictValue, build
from .thresholds import NUMERIC, Piece, Scale, scales

FLIP, OTHER = "<flip>", "<other>"  # markers: the opposite yes/no, another choice
WEIGHTS = {"at": 3.0, "near": 3.0, "joint": 3.0, "flip": 2.0, "other": 1.0, "unknown": 1.0}
UNCHANGED = 0.08  # share of cases that are a baseline patient as it is
SECOND_MOVE = 0.3  # chance of a second move in the same case


@dataclass(frozen=True)
class Case:
    answers: dict[str, Any]  # applicable questions in dialog order; None = unknown
    focus: tuple[str, ...]  # the criteria the moves aimed at (empty: unchanged baseline)
    changed: tuple[str, ...]  # the variables the moves set
    verdict: Verdict  # verdict.build on the answers, on the case's screening date

    @property
    def expected(self) -> VerdictValue:
        return self.verdict.verdict

    @property
    def failed(self) -> list[str]:
        return [r.criterion for r in self.verdict.reasons]

    @property
    def criteria(self) -> list[str]:
        """The criteria this case is about: failed or open ones, and those aimed at."""
        found = self.failed + [i.criterion for i in self.verdict.open_items] + list(self.focus)
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Move:
    criterion: str
    kind: str
    weight: float
    options: tuple[tuple[str, tuple[Any, ...]], ...]  # variable -> values to draw one from


def generate_cases(
    protocol: Protocol,
    count: int = 20,
    seed: int | None = None,
    weak: Mapping[str, int] | None = None,
    screened_on: date | None = None,
) -> list[Case]:
    """``count`` cases; the same seed, ``weak`` and screening date give the same cases.

    ``weak`` counts the trainee's past mistakes per criterion; moves aimed at those
    criteria are drawn more often. Dates count back from ``screened_on`` (default today).
    """
    rng = random.Random(seed)
    maker = _Maker(protocol, screened_on)
    pool = maker.baselines(rng)
    moves = maker.moves()
    weights = [m.weight * (1 + min((weak or {}).get(m.criterion, 0), 4)) for m in moves]
    cases: list[Case] = []
    while len(cases) < count:
        if not moves or rng.random() < UNCHANGED:
            cases.append(maker.case(rng.choice(pool), (), ()))
            continue
        first = rng.choices(moves, weights)[0]
        applied = maker.apply_to_pool(pool, first, rng)
        if applied is None:
            continue
        answers, changed = applied
        focus = [first.criterion]
        if rng.random() < SECOND_MOVE:
            second = rng.choices(moves, weights)[0]
            if second.criterion != first.criterion:
                more = maker.apply(answers, second, rng)
                if more is not None:
                    answers, changed = more[0], changed + more[1]
                    focus.append(second.criterion)
        cases.append(maker.case(answers, tuple(focus), changed))
    return cases


def baselines(
    protocol: Protocol, rng: random.Random, screened_on: date | None = None
) -> list[dict[str, Any]]:
    """Eligible patients, together asking every question that any patient can be asked."""
    return _Maker(protocol, screened_on).baselines(rng)


def answer_scales(protocol: Protocol) -> dict[str, Scale]:
    """Numeric questions; a measured question also takes its derived value's thresholds."""
    found = scales(protocol)
    for d in protocol.spec.derived:
        if d.measured and d.measured in found and d.name in found:
            own = found[d.measured]
            merged = tuple(sorted({*own.constants, *found[d.name].constants}))
            found[d.measured] = replace(own, constants=merged)
    return {name: found[name] for name in protocol.order if name in found}


class _Maker:
    """Cases of one protocol on one screening date."""

    def __init__(self, protocol: Protocol, screened_on: date | None) -> None:
        self.protocol = protocol
        self.day = screened_on or datetime.now(UTC).date()
        self.found = answer_scales(protocol)

    def case(
        self, answers: dict[str, Any], focus: tuple[str, ...], changed: tuple[str, ...]
    ) -> Case:
        verdict = build(self.protocol, answers, screened_on=self.day)
        return Case(dict(answers), focus, tuple(dict.fromkeys(changed)), verdict)

    # -- baselines ------------------------------------------------------------------------

    def baselines(self, rng: random.Random) -> list[dict[str, Any]]:
        order = self.protocol.order
        options = {v: self.options(v) for v in order}
        pool = [self.search(options, {}, set(order), rng)]
        for variable in order:
            if any(variable in b for b in pool) or self.protocol.questions[variable].type == "text":
                continue
            candidate = self.search(options, {}, set(order), rng, target=variable)
            if variable in candidate and self.eligible(candidate):
                pool.append(candidate)
        pool.append(self.search(options, {}, set(order), rng))  # one more, for variety
        eligible = [b for b in pool if self.eligible(b)]
        return eligible or pool

    def eligible(self, answers: Mapping[str, Any]) -> bool:
        return all(o.status == "met" for o in evaluate(self.protocol, answers, self.day))

    def search(
        self,
        options: dict[str, list[Any]],
        start: dict[str, Any],
        free: set[str],
        rng: random.Random,
        target: str | None = None,
        sweeps: int = 4,
    ) -> dict[str, Any]:
        """Choose values for the free variables, question by question, fewest failures first.

        With a ``target``, values that leave the target question asked are preferred, and an
        unknown answer is allowed where it is what makes the target asked (``weight_kg`` is
        asked only when ``crcl_ml_min`` is unknown).
        """
        answers = dict(start)
        for _ in range(sweeps):
            for variable in self.protocol.order:
                if variable not in free or variable not in self.applicable(answers):
                    continue
                values = list(options[variable]) + ([None] if target else [])
                rng.shuffle(values)
                answers[variable] = min(
                    values, key=lambda value: self.score(answers, variable, value, target)
                )
            answers = self.asked(answers)
            if self.eligible(answers) and (target is None or target in answers):
                break
        return answers

    def score(
        self, answers: dict[str, Any], variable: str, value: Any, target: str | None
    ) -> tuple[int, int, int]:
        trial = {**answers, variable: value}
        failed = sum(o.status == "failed" for o in evaluate(self.protocol, trial, self.day))
        missing = target is not None and target not in self.applicable(trial)
        return failed, int(missing), int(value is None)

    def applicable(self, answers: Mapping[str, Any]) -> frozenset[str]:
        return applicable_questions(self.protocol, answers, self.day)

    def asked(self, answers: Mapping[str, Any]) -> dict[str, Any]:
        """Only the questions asked given these answers, in dialog order (missing = unknown)."""
        applicable = self.applicable(answers)
        return {v: answers.get(v) for v in self.protocol.order if v in applicable}

    def options(self, variable: str) -> list[Any]:
        """Plain values for a baseline: away from every threshold."""
        question = self.protocol.questions[variable]
        if question.type == "yes_no":
            return [True, False]
        if question.type == "choice" and question.multiple:
            return [(), *((c,) for c in question.choices or [])]
        if question.type == "choice":
            return list(question.choices or [])
        if question.type == "text":
            return [None]  # kept for the coordinator; no rule reads it
        if question.type in ("date", "date_or_none"):
            if question.future:
                return [shift(self.day, months, "months") for months in (1, 3)]
            years_ago = [shift(self.day, -years, "years") for years in (3, 6)]
            return ([NEVER] if question.type == "date_or_none" else []) + years_ago
        scale = self.found[variable]
        if not scale.constants and scale.minimum is not None and scale.maximum is not None:
            span = scale.maximum - scale.minimum
            return [_round(scale, scale.minimum + span * f) for f in (0.02, 0.05, 0.1, 0.2)]
        return [_typical(scale, p) for p in scale.pieces() if not p.is_point]

    # -- moves ----------------------------------------------------------------------------

    def moves(self) -> list[Move]:
        protocol = self.protocol
        moves: list[Move] = []
        for cid, expr in protocol.rules.items():
            read: dict[str, list[Any]] = {}
            for comparison in expr.comparisons:
                variable = _answer_variable(protocol, comparison.variable)
                if variable is None:
                    continue
                question = protocol.questions[variable]
                if question.type in NUMERIC and not isinstance(comparison.constant, bool | str):
                    scale = self.found[variable]
                    at = (comparison.constant,) if scale.inside(comparison.constant) else ()
                    near = _near(scale, comparison.constant)
                    for kind, values in (("at", at), ("near", near)):
                        if values:
                            moves.append(Move(cid, kind, WEIGHTS[kind], ((variable, values),)))
                    read.setdefault(variable, []).extend(at + near)
                elif question.type == "choice" and not question.multiple:
                    moves.append(Move(cid, "other", WEIGHTS["other"], ((variable, (OTHER,)),)))
                    read[variable] = list(question.choices or [])
            for variable, edge in self.date_edges(expr.node):
                around = (edge - timedelta(days=1), edge, edge + timedelta(days=1))
                days = tuple(d for d in around if self.possible_date(variable, d))
                if days:
                    moves.append(Move(cid, "at", WEIGHTS["at"], ((variable, days),)))
                    read.setdefault(variable, []).extend(days)
            for name in sorted(expr.bare_names):
                if name in protocol.questions:
                    moves.append(Move(cid, "flip", WEIGHTS["flip"], ((name, (FLIP,)),)))
                    read[name] = [True, False]
            if len(read) > 1:  # several answers at once: reaches "a or b" and "a and b" failures
                options = tuple((v, tuple(read[v])) for v in protocol.order if v in read)
                moves.append(Move(cid, "joint", WEIGHTS["joint"], options))
            for variable in read:
                weight = WEIGHTS["unknown"] / len(read)
                moves.append(Move(cid, "unknown", weight, ((variable, (None,)),)))
        return moves

    def date_edges(self, tree: Node) -> list[tuple[str, date]]:
        """For ``screening_date op x ± window``: the x on the window's edge, on this day."""
        edges = []
        for node in walk(tree):
            if not isinstance(node, Compare):
                continue
            for clock, other in ((node.left, node.right), (node.right, node.left)):
                if not (isinstance(clock, Name) and clock.name == SCREENING_DATE):
                    continue
                if isinstance(other, Shift) and isinstance(other.base, Name):
                    edge = shift(self.day, -other.amount, other.unit)  # type: ignore[arg-type]
                    edges.append((other.base.name, edge))
                elif isinstance(other, Name) and other.name in self.protocol.questions:
                    edges.append((other.name, self.day))
        return edges

    def possible_date(self, variable: str, day: date) -> bool:
        question = self.protocol.questions.get(variable)
        if question is None:
            return False
        return day >= self.day if question.future else day <= self.day

    def apply_to_pool(
        self, pool: list[dict[str, Any]], move: Move, rng: random.Random
    ) -> tuple[dict[str, Any], tuple[str, ...]] | None:
        """The move made on a baseline where its questions are asked (None if there is none)."""
        for baseline in rng.sample(pool, len(pool)):
            applied = self.apply(baseline, move, rng)
            if applied is not None:
                return applied
        return None

    def apply(
        self, answers: dict[str, Any], move: Move, rng: random.Random
    ) -> tuple[dict[str, Any], tuple[str, ...]] | None:
        changed = dict(answers)
        for variable, values in move.options:
            value = rng.choice(values)
            if value == FLIP:
                value = (not changed[variable]) if changed.get(variable) is not None else True
            elif value == OTHER:
                choices = self.protocol.questions[variable].choices or []
                value = rng.choice([c for c in choices if c != changed.get(variable)])
            changed[variable] = value
        names = tuple(v for v, _ in move.options)
        asked = self.asked(changed)
        if any(v not in asked for v in names):
            return None
        newly = {v for v in asked if v not in answers and v not in names}
        if newly:  # questions the move made applicable get plain values
            options = {v: self.options(v) for v in newly}
            asked = self.search(options, asked, newly, rng, sweeps=2)
        return asked, names


def _typical(scale: Scale, piece: Piece) -> float:
    """A round value inside an open piece, away from both ends."""
    low, high = piece.low, piece.high
    value = scale.representative(piece) or 0
    if low is not None and high is not None:
        if low == scale.minimum and high in scale.constants:  # below the lowest threshold
            value = max(high * 0.6, (low + high) / 2)
        elif high == scale.maximum and low in scale.constants:  # above the highest
            value = min(low * 1.25, (low + high) / 2)
        else:
            value = (low + high) / 2
    rounded = _round(scale, value)
    inside = (low is None or rounded > low) and (high is None or rounded < high)
    return rounded if inside else scale.representative(piece)  # type: ignore[return-value]


def _round(scale: Scale, value: float) -> float:
    if scale.integer:
        return int(value)
    return round(value) if abs(value) >= 10 else round(value, 1)


def _answer_variable(protocol: Protocol, name: str) -> str | None:
    """The question a rule's name is answered by (a derived value: its measured question)."""
    if name in protocol.questions:
        return name
    derived = protocol.derived.get(name)
    return derived.measured if derived else None


def _near(scale: Scale, constant: float) -> tuple[float, ...]:
    """Just below and just above a threshold, within the question's range."""
    step = 1 if scale.integer or abs(constant) >= 10 else (0.1 if abs(constant) >= 1 else 0.01)
    return tuple(
        v for v in (round(constant - step, 4), round(constant + step, 4)) if scale.inside(v)
    )
