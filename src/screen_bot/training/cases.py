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
from typing import Any

from ..protocol import Protocol
from ..rules.evaluation import applicable_questions, evaluate
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
    verdict: Verdict  # verdict.build on the answers

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
) -> list[Case]:
    """``count`` cases; the same seed (and ``weak``) gives the same cases.

    ``weak`` counts the trainee's past mistakes per criterion; moves aimed at those
    criteria are drawn more often.
    """
    rng = random.Random(seed)
    found = answer_scales(protocol)
    pool = baselines(protocol, rng, found)
    moves = _moves(protocol, found)
    weights = [m.weight * (1 + min((weak or {}).get(m.criterion, 0), 4)) for m in moves]
    cases: list[Case] = []
    while len(cases) < count:
        if not moves or rng.random() < UNCHANGED:
            cases.append(_case(protocol, rng.choice(pool), (), ()))
            continue
        first = rng.choices(moves, weights)[0]
        applied = _apply_to_pool(protocol, found, pool, first, rng)
        if applied is None:
            continue
        answers, changed = applied
        focus = [first.criterion]
        if rng.random() < SECOND_MOVE:
            second = rng.choices(moves, weights)[0]
            if second.criterion != first.criterion:
                more = _apply(protocol, found, answers, second, rng)
                if more is not None:
                    answers, changed = more[0], changed + more[1]
                    focus.append(second.criterion)
        cases.append(_case(protocol, answers, tuple(focus), changed))
    return cases


def _case(
    protocol: Protocol, answers: dict[str, Any], focus: tuple[str, ...], changed: tuple[str, ...]
) -> Case:
    return Case(dict(answers), focus, tuple(dict.fromkeys(changed)), build(protocol, answers))


# -- baselines ------------------------------------------------------------------------------


def baselines(
    protocol: Protocol, rng: random.Random, found: dict[str, Scale] | None = None
) -> list[dict[str, Any]]:
    """Eligible patients, together asking every question that any patient can be asked."""
    found = found or answer_scales(protocol)
    options = {v: _options(protocol, found, v) for v in protocol.order}
    pool = [_search(protocol, options, {}, set(protocol.order), rng)]
    for variable in protocol.order:
        if any(variable in b for b in pool):
            continue
        candidate = _search(protocol, options, {}, set(protocol.order), rng, target=variable)
        if variable in candidate and _eligible(protocol, candidate):
            pool.append(candidate)
    pool.append(_search(protocol, options, {}, set(protocol.order), rng))  # one more, for variety
    eligible = [b for b in pool if _eligible(protocol, b)]
    return eligible or pool


def answer_scales(protocol: Protocol) -> dict[str, Scale]:
    """Numeric questions; a measured question also takes its derived value's thresholds."""
    found = scales(protocol)
    for d in protocol.spec.derived:
        if d.measured and d.measured in found:
            own = found[d.measured]
            merged = tuple(sorted({*own.constants, *found[d.name].constants}))
            found[d.measured] = replace(own, constants=merged)
    return {name: found[name] for name in protocol.order if name in found}


def _eligible(protocol: Protocol, answers: Mapping[str, Any]) -> bool:
    return all(o.status == "met" for o in evaluate(protocol, answers))


def _search(
    protocol: Protocol,
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
        for variable in protocol.order:
            if variable not in free or variable not in applicable_questions(protocol, answers):
                continue
            values = list(options[variable]) + ([None] if target else [])
            rng.shuffle(values)
            answers[variable] = min(
                values, key=lambda value: _score(protocol, answers, variable, value, target)
            )
        answers = _asked(protocol, answers)
        if _eligible(protocol, answers) and (target is None or target in answers):
            break
    return answers


def _score(
    protocol: Protocol, answers: dict[str, Any], variable: str, value: Any, target: str | None
) -> tuple[int, int, int]:
    trial = {**answers, variable: value}
    failed = sum(o.status == "failed" for o in evaluate(protocol, trial))
    missing = target is not None and target not in applicable_questions(protocol, trial)
    return failed, int(missing), int(value is None)


def _asked(protocol: Protocol, answers: Mapping[str, Any]) -> dict[str, Any]:
    """Only the questions asked given these answers, in dialog order (missing = unknown)."""
    applicable = applicable_questions(protocol, answers)
    return {v: answers.get(v) for v in protocol.order if v in applicable}


def _options(protocol: Protocol, found: dict[str, Scale], variable: str) -> list[Any]:
    """Plain values for a baseline: away from every threshold."""
    question = protocol.questions[variable]
    if question.type == "yes_no":
        return [True, False]
    if question.type == "choice":
        return list(question.choices or [])
    scale = found[variable]
    if not scale.constants and scale.minimum is not None and scale.maximum is not None:
        span = scale.maximum - scale.minimum
        return [_round(scale, scale.minimum + span * f) for f in (0.02, 0.05, 0.1, 0.2)]
    return [_typical(scale, p) for p in scale.pieces() if not p.is_point]


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


# -- moves ----------------------------------------------------------------------------------


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


def _moves(protocol: Protocol, found: dict[str, Scale]) -> list[Move]:
    moves: list[Move] = []
    for cid, expr in protocol.rules.items():
        read: dict[str, list[Any]] = {}
        for comparison in expr.comparisons:
            variable = _answer_variable(protocol, comparison.variable)
            if variable is None:
                continue
            question = protocol.questions[variable]
            if question.type in NUMERIC and not isinstance(comparison.constant, bool | str):
                scale = found[variable]
                at = (comparison.constant,) if scale.inside(comparison.constant) else ()
                near = _near(scale, comparison.constant)
                for kind, values in (("at", at), ("near", near)):
                    if values:
                        moves.append(Move(cid, kind, WEIGHTS[kind], ((variable, values),)))
                read.setdefault(variable, []).extend(at + near)
            elif question.type == "choice":
                moves.append(Move(cid, "other", WEIGHTS["other"], ((variable, (OTHER,)),)))
                read[variable] = list(question.choices or [])
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


def _apply_to_pool(
    protocol: Protocol,
    found: dict[str, Scale],
    pool: list[dict[str, Any]],
    move: Move,
    rng: random.Random,
) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """The move made on a baseline where its questions are asked (None if there is none)."""
    for baseline in rng.sample(pool, len(pool)):
        applied = _apply(protocol, found, baseline, move, rng)
        if applied is not None:
            return applied
    return None


def _apply(
    protocol: Protocol,
    found: dict[str, Scale],
    answers: dict[str, Any],
    move: Move,
    rng: random.Random,
) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    changed = dict(answers)
    for variable, values in move.options:
        value = rng.choice(values)
        if value == FLIP:
            value = (not changed[variable]) if changed.get(variable) is not None else True
        elif value == OTHER:
            others = [
                c for c in protocol.questions[variable].choices or [] if c != changed.get(variable)
            ]
            value = rng.choice(others)
        changed[variable] = value
    names = tuple(v for v, _ in move.options)
    asked = _asked(protocol, changed)
    if any(v not in asked for v in names):
        return None
    newly = {v for v in asked if v not in answers and v not in names}
    if newly:  # questions the move made applicable get plain values
        options = {v: _options(protocol, found, v) for v in newly}
        asked = _search(protocol, options, asked, newly, rng, sweeps=2)
    return asked, names
