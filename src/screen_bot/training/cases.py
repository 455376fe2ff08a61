"""Quiz cases generated from a protocol's own rules, so any dialog file gets a quiz.

A search finds eligible baseline patients (values chosen from the rules' constants, the
questions' plausible ranges and the days between the ends of the rules' date windows);
each case then moves one or two answers to a threshold (exactly at, just below, just
above; a date to the last day inside a window or the first outside; an input to where an
estimate such as a BMI crosses its threshold), flips a yes/no, changes a choice, or makes
an answer unknown.
The expected answer is always :func:`verdict.build` on the case, never the move's intent.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from ..answers import today
from ..protocol import Protocol
from ..rules.calculators import TYPICAL_INPUTS
from ..rules.dates import EARLIEST_YEAR, NEVER, shift
from ..rules.demand import Demand, demand, part_context
from ..rules.evaluation import _plan, applicable_questions, context, each_status, statuses
from ..rules.expressions import (
    SCREENING_DATE,
    AnyOf,
    Compare,
    Comparison,
    Const,
    Member,
    Name,
    Node,
    Ordinal,
    Shift,
    interpret,
    walk,
)
from ..verdict import Verdict, VerdictValue, build
from .thresholds import NUMERIC, Piece, Scale, scales

FLIP, OTHER = "<flip>", "<other>"  # markers: the opposite yes/no, another choice
WEIGHTS = {"at": 3.0, "near": 3.0, "joint": 3.0, "flip": 2.0, "other": 1.0, "unknown": 1.0}
UNCHANGED = 0.08  # share of cases that are a baseline patient as it is
SECOND_MOVE = 0.3  # chance of a second move in the same case
# What the searches may evaluate, in nodes of rules and conditions: for the baseline
# patients, and for each case (the questions its moves make asked). A search tries every
# value of every question, sweep after sweep, once per question for the baselines: 116
# questions and 500 criteria took minutes before the first case. Past the budget a search
# keeps the answers it chose (the others unknown) and no more baselines are searched for:
# fewer or plainer cases, each still given the engine's verdict. The shipped protocols
# use under 1 % of each.
BASELINE_BUDGET = 50_000_000
CASE_BUDGET = 2_000_000


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
        opened = [c for i in self.verdict.open_items for c in i.criteria]
        found = self.failed + opened + list(self.focus)
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Window:
    """A date question compared with a date: ``screening_date < cd19_flow_date + months(3)``,
    ``planned_infusion_date < last_dli_date + days(42)`` (``variable``: last_dli_date)."""

    node: Compare
    variable: str  # the date question whose answer moves
    shifts: tuple[tuple[int, str], ...]  # the windows added to it
    other: str  # the date it is compared with: screening_date or another question
    theirs: Node  # that side of the comparison


@dataclass(frozen=True)
class Crossing:
    """Move an input to where an estimate crosses a rule's constant (``egfr >= 30``)."""

    estimate: str
    constant: float


@dataclass(frozen=True)
class Limit:
    """Move an answer to the value it is compared with, in this case, and either side of
    it (``serum_creatinine_mg_dl <= creatinine_limit_mg_dl``, a table by age and sex)."""

    name: str


@dataclass(frozen=True)
class _Reach:
    """What an answer may change, what that depends on, and what evaluating it costs."""

    criteria: list[str]  # in the file's order
    need: Demand
    cost: int  # the nodes of their rules and of the conditions deciding what they read


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
    maker.limit = maker.spent + CASE_BUDGET  # the first case's
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
        self.day = screened_on or today()  # UTC: a case with dates shows this day
        self.found = answer_scales(protocol)
        self.typical = {
            question: typical[parameter]
            for estimates in protocol.estimates.values()
            for estimate in estimates
            for parameter, question in estimate.use.inputs.items()
            if parameter in (typical := TYPICAL_INPUTS.get(estimate.use.calculator, {}))
            and not self.found[question].constants
        }
        self.windows = {cid: _windows(protocol, expr.node) for cid, expr in protocol.rules.items()}
        self.spent, self.limit = 0, BASELINE_BUDGET  # nodes of rules and conditions evaluated
        self.nodes = {cid: _size(expr.node) for cid, expr in protocol.rules.items()}
        self.nodes |= {v: _size(expr.node) for v, expr in protocol.when.items()}
        self.conditions = sum(self.nodes[v] for v in protocol.when)
        self.rules = sum(self.nodes[cid] for cid in protocol.rules)
        self.affected: dict[str, list[str]] = {v: [] for v in protocol.order}
        for cid, rule in _plan(protocol).rules.items():
            for variable in sorted(demand(protocol, rule.names).questions):
                self.affected[variable].append(cid)
        self.reached: dict[str, _Reach] = {}
        self.asking: dict[str, _Reach] = {}

    def case(
        self, answers: dict[str, Any], focus: tuple[str, ...], changed: tuple[str, ...]
    ) -> Case:
        verdict = build(self.protocol, answers, screened_on=self.day)
        self.limit = self.spent + CASE_BUDGET  # the next case's searches
        return Case(dict(answers), focus, tuple(dict.fromkeys(changed)), verdict)

    # -- baselines ------------------------------------------------------------------------

    def baselines(self, rng: random.Random) -> list[dict[str, Any]]:
        order = self.protocol.order
        options = {v: self.options(v) for v in order}
        pool = [self.search(options, {}, set(order), rng)]
        for variable in order:
            if self.spent >= self.limit:
                break  # the questions no baseline asks yet get no cases of their own
            if any(variable in b for b in pool) or self.protocol.questions[variable].type == "text":
                continue
            candidate = self.search(options, {}, set(order), rng, target=variable)
            if variable in candidate and self.eligible(candidate):
                pool.append(candidate)
        pool.append(self.search(options, {}, set(order), rng))  # one more, for variety
        eligible = [b for b in pool if self.eligible(b)]
        return eligible or pool

    def eligible(self, answers: Mapping[str, Any]) -> bool:
        self.spent += self.rules + self.conditions
        found = each_status(self.protocol, context(self.protocol, answers, self.day))
        return all(status == "met" for status in found)

    def search(
        self,
        options: dict[str, list[Any]],
        start: dict[str, Any],
        free: set[str],
        rng: random.Random,
        target: str | None = None,
        sweeps: int = 4,
        aim: str | None = None,
    ) -> dict[str, Any]:
        """Choose values for the free variables, question by question, fewest failures first.

        With a ``target``, values that leave the target question asked are preferred, and an
        unknown answer is allowed where it is what makes the target asked (``weight_kg`` is
        asked only when ``crcl_ml_min`` is unknown). With an ``aim``, values that make that
        criterion fail are preferred (the others still fail as little as possible): a move's
        newly asked questions must not simply undo it (``marrow_relapse_count`` moved to 1
        asks about the other routes into the study). Past the budget (``limit``) it stops
        with the values chosen so far, the rest unknown.
        """
        answers = dict(start)
        for _ in range(sweeps):
            for variable in self.protocol.order:
                if variable not in free:
                    continue
                values = list(options[variable]) + ([None] if target else [])
                each = self.reach(variable).cost + (self.deciding(target).cost if target else 0)
                if self.spent + self.conditions + len(values) * each > self.limit:
                    return self.asked(answers)
                if variable not in self.applicable(answers):
                    continue
                rng.shuffle(values)
                answers[variable] = min(
                    values, key=lambda value: self.score(answers, variable, value, target, aim)
                )
            answers = self.asked(answers)
            if self.eligible(answers) and (target is None or target in answers):
                break
        return answers

    def score(
        self,
        answers: dict[str, Any],
        variable: str,
        value: Any,
        target: str | None,
        aim: str | None = None,
    ) -> tuple[int, int, int, int]:
        """How good ``value`` is for ``variable``, the other answers as they are: the
        criteria failing but the aim, whether the aim passes, whether the target is not
        asked, whether the value is unknown. Only what the value may change is evaluated
        (the criteria and the target's condition reading it, directly or through what it
        asks or estimates): the rest is alike for every value, so the best value is the
        same."""
        protocol, trial = self.protocol, {**answers, variable: value}
        reach = self.reach(variable)
        self.spent += reach.cost
        ctx = part_context(protocol, reach.need, trial, self.day)
        found = statuses(protocol, ctx, reach.criteria)
        failed = {c for c, status in zip(reach.criteria, found, strict=True) if status == "failed"}
        missing = False
        if target is not None and variable in self.deciding(target).need.questions:
            if target not in reach.need.questions:
                self.spent += self.deciding(target).cost
                ctx = part_context(protocol, self.deciding(target).need, trial, self.day)
            missing = target not in ctx.applicable
        return len(failed - {aim}), int(aim not in failed), int(missing), int(value is None)

    def reach(self, variable: str) -> _Reach:
        """The criteria an answer to ``variable`` may change (their rules read it, or what
        it asks or estimates), and what they depend on."""
        if variable not in self.reached:
            criteria = self.affected[variable]
            rules = _plan(self.protocol).rules
            names = {name for cid in criteria for name in rules[cid].names}
            self.reached[variable] = self.reach_of(criteria, names)
        return self.reached[variable]

    def deciding(self, question: str) -> _Reach:
        """What decides whether ``question`` is asked."""
        if question not in self.asking:
            self.asking[question] = self.reach_of([], [question])
        return self.asking[question]

    def reach_of(self, criteria: list[str], names: Iterable[str]) -> _Reach:
        need = demand(self.protocol, names)
        cost = sum(self.nodes[c] for c in criteria)
        cost += sum(self.nodes[c.variable] for c in need.conditions)
        return _Reach(criteria, need, cost)

    def applicable(self, answers: Mapping[str, Any]) -> frozenset[str]:
        self.spent += self.conditions
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
            never = [NEVER] if question.type == "date_or_none" else []
            return never + self.plain_days(variable)
        scale = self.plausible(variable)
        if not scale.constants and scale.minimum is not None and scale.maximum is not None:
            span = scale.maximum - scale.minimum
            plausible = variable in self.typical or None not in (
                question.confirm_below,
                question.confirm_above,
            )
            # all over a plausible range; else low values (normal for most lab values)
            spread = (0.1, 0.3, 0.5, 0.7, 0.9) if plausible else (0.02, 0.05, 0.1, 0.2)
            return [_round(scale, scale.minimum + span * f) for f in spread]
        plain = [_typical(scale, p) for p in scale.pieces() if not p.is_point]
        # an int range with no whole number between its thresholds (13-14, age >= 13)
        return plain or [_round(scale, p.low) for p in scale.pieces() if p.low is not None]

    def plausible(self, variable: str) -> Scale:
        """The question's scale cut to where the dialog does not ask to confirm an answer
        (``confirm_below``/``confirm_above``; limits that leave no range are not used) and,
        for a body measure with no threshold of its own, to a typical adult's where the
        range is an adult's: one that holds an adult's middle value (a child's weights of
        8-45 kg keep their own range: the adult 50-120 kg would put every case out of it)."""
        question, scale = self.protocol.questions[variable], self.found[variable]
        low, high = scale.minimum, scale.maximum
        below, above = (
            _tighter(low, question.confirm_below, max),
            _tighter(high, question.confirm_above, min),
        )
        if below is None or above is None or below < above:
            low, high = below, above
        if variable in self.typical:
            typical_low, typical_high = self.typical[variable]
            middle = (typical_low + typical_high) / 2
            if (low is None or low <= middle) and (high is None or middle <= high):
                low, high = _tighter(low, typical_low, max), _tighter(high, typical_high, min)
        return replace(scale, minimum=low, maximum=high)

    # -- moves ----------------------------------------------------------------------------

    def moves(self) -> list[Move]:
        protocol = self.protocol
        moves: list[Move] = []
        for cid, expr in protocol.rules.items():
            read: dict[str, list[Any]] = {}
            for comparison in expr.comparisons:
                for crossing in self.crossings(comparison):
                    moves.append(Move(cid, "near", WEIGHTS["near"], crossing))
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
                    named = (comparison.constant,)  # the choice the rule names
                    moves.append(Move(cid, "other", WEIGHTS["other"], ((variable, named),)))
                    moves.append(Move(cid, "other", WEIGHTS["other"], ((variable, (OTHER,)),)))
                    read[variable] = list(question.choices or [])
            for window in self.windows[cid]:
                if window.other == SCREENING_DATE:
                    days: tuple[Any, ...] = tuple(self.window_days(window, {}))
                else:  # counted from another answer: the case's own, when the move is made
                    days = (window,)
                if days:
                    moves.append(Move(cid, "at", WEIGHTS["at"], ((window.variable, days),)))
                    read.setdefault(window.variable, []).extend(days)
            for variable, other in _answers_compared(protocol, expr.node):
                limit = (variable, (Limit(other),))
                moves.append(Move(cid, "near", WEIGHTS["near"], (limit,)))
            for variable, kind, values in _choices_compared(expr.node):
                if variable in protocol.questions:
                    moves.append(Move(cid, kind, WEIGHTS[kind], ((variable, values),)))
                    read.setdefault(variable, []).extend(values)
            for name in sorted(expr.bare_names):
                if name in protocol.questions:
                    moves.append(Move(cid, "flip", WEIGHTS["flip"], ((name, (FLIP,)),)))
                    read[name] = [True, False]
            # several answers at once: reaches "a or b" and "a and b" failures (an answer
            # compared only with constants outside its range has no value to move to)
            options = tuple((v, tuple(read[v])) for v in protocol.order if read.get(v))
            if len(options) > 1:
                moves.append(Move(cid, "joint", WEIGHTS["joint"], options))
            for variable in read:
                weight = WEIGHTS["unknown"] / len(read)
                moves.append(Move(cid, "unknown", weight, ((variable, (None,)),)))
        return moves

    def crossings(self, comparison: Comparison) -> list[tuple[tuple[str, tuple[Any, ...]]]]:
        """For an estimate compared with a constant (``egfr >= 30``): each numeric input
        with no threshold of its own, moved to where the estimate crosses the constant
        (the creatinine that gives an eGFR of 30; a measured value, when known, decides)."""
        name, constant = comparison.variable, comparison.constant
        if name not in self.protocol.derived or isinstance(constant, bool | str):
            return []
        inputs = [
            v
            for v in self.protocol.inputs_of(name)
            if v in self.found and not self.found[v].constants
        ]
        return [((v, (Crossing(name, constant),)),) for v in inputs]

    def crossing_values(
        self, variable: str, aim: Crossing, answers: Mapping[str, Any]
    ) -> list[float]:
        """The two round values of ``variable`` either side of where the estimate crosses
        the constant, the other answers as they are (none: it does not cross in range)."""
        scale = self.plausible(variable)
        if scale.minimum is None or scale.maximum is None:
            return []

        def above(value: float) -> bool | None:
            env = context(self.protocol, {**answers, variable: value}, self.day).env
            estimate = env.get(aim.estimate)
            return None if estimate is None else estimate >= aim.constant

        low, high = scale.minimum, scale.maximum
        at_low, at_high = above(low), above(high)
        if at_low is None or at_high is None or at_low == at_high:
            return []
        for _ in range(40):
            middle = (low + high) / 2
            if above(middle) == at_low:
                low = middle
            else:
                high = middle
        step = 1 if scale.integer or low >= 10 else (0.1 if low >= 1 else 0.01)
        below = math.floor(low / step) * step
        around = (round(below, 4), round(below + step, 4))
        return [v for v in around if scale.inside(v)]

    def window_days(self, window: Window, env: Mapping[str, Any]) -> list[date]:
        """The days either side of where the window's comparison changes, given the other
        date in ``env``: the last day inside 'within 30 days' and the first day outside."""
        env = {**env, SCREENING_DATE: self.day}
        edge = interpret(window.theirs, env)
        if not isinstance(edge, date):
            return []
        try:
            for amount, unit in reversed(window.shifts):
                edge = shift(edge, -amount, unit)  # type: ignore[arg-type]
            # calendar months clamp to a month's last day: the change may lie days past the
            # edge; whole days and weeks move every day alike, so it lies next to the edge
            calendar = any(unit in ("months", "years") for _, unit in window.shifts)
            reach = 7 if calendar else 1
            days = [edge + timedelta(days=d) for d in range(-reach, reach + 1)]
        except OverflowError:  # a window reaching past the calendar has no day to draw
            return []
        held = [interpret(window.node, {**env, window.variable: d}) for d in days]
        found = []
        for (before, was), (after, now) in itertools.pairwise(zip(days, held, strict=True)):
            if was != now:
                found += [d for d in (before, after) if self.possible_date(window.variable, d)]
        return found

    def far_days(self, variable: str) -> list[date]:
        """Dates far from the screening date: a few months ahead, or years back."""
        if self.protocol.questions[variable].future:
            return [shift(self.day, months, "months") for months in (1, 3)]
        return [shift(self.day, -years, "years") for years in (3, 6)]

    def plain_days(self, variable: str) -> list[date]:
        """Dates away from every window's end: between two ends (or an end and the
        screening date), past the farthest end, and far ones."""
        edges: set[date] = set()
        for window in (w for ws in self.windows.values() for w in ws if w.variable == variable):
            starts = self.far_days(window.other) if window.other != SCREENING_DATE else [self.day]
            for start in starts:
                edges.update(self.window_days(window, {window.other: start}))
        points = sorted({self.day, *edges})
        days = {a + (b - a) / 2 for a, b in itertools.pairwise(points)}
        days |= set(self.far_days(variable))
        farthest = max(points, key=lambda d: abs(d - self.day))
        if farthest != self.day:
            with contextlib.suppress(OverflowError):
                days.add(farthest + (farthest - self.day) / 2)
        return sorted(d for d in days if d not in edges and self.possible_date(variable, d))

    def possible_date(self, variable: str, day: date) -> bool:
        """Whether the dialog takes ``day`` as the question's answer (``rules.dates``)."""
        question = self.protocol.questions.get(variable)
        if question is None or day.year < EARLIEST_YEAR:
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
            elif isinstance(value, Crossing):
                crossed = self.crossing_values(variable, value, changed)
                if not crossed:
                    return None
                value = rng.choice(crossed)
            elif isinstance(value, Limit):
                limit = context(self.protocol, changed, self.day).env.get(value.name)
                if not isinstance(limit, int | float):
                    return None
                scale = self.found[variable]
                around = [v for v in (limit, *_near(scale, limit)) if scale.inside(v)]
                if not around:
                    return None
                value = rng.choice(around)
            elif isinstance(value, Window):
                days = self.window_days(value, changed)
                if not days:
                    return None
                value = rng.choice(days)
            changed[variable] = value
        names = tuple(v for v, _ in move.options)
        asked = self.asked(changed)
        if any(v not in asked for v in names):
            return None
        newly = {v for v in asked if v not in answers and v not in names}
        if newly:  # questions the move made applicable get plain values
            options = {v: self.options(v) for v in newly}
            asked = self.search(options, asked, newly, rng, sweeps=2, aim=move.criterion)
        return asked, names


def _size(node: Node) -> int:
    return sum(1 for _ in walk(node))


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


def _tighter(
    bound: float | None, limit: float | None, pick: Callable[[float, float], float]
) -> float | None:
    return bound if limit is None else limit if bound is None else pick(bound, limit)


def _round(scale: Scale, value: float) -> float:
    if scale.integer:
        return int(value)
    return round(value) if abs(value) >= 10 else round(value, 1)


def _answers_compared(protocol: Protocol, tree: Node) -> list[tuple[str, str]]:
    """Numeric questions compared with another name (a table, an answer): (question, name)."""
    found = []
    for node in walk(tree):
        if (
            isinstance(node, Compare)
            and isinstance(node.left, Name)
            and isinstance(node.right, Name)
        ):
            for mine, other in (
                (node.left.name, node.right.name),
                (node.right.name, node.left.name),
            ):
                question = protocol.questions.get(mine)
                if question is not None and question.type in NUMERIC and other != mine:
                    found.append((mine, other))
    return found


def _choices_compared(tree: Node) -> list[tuple[str, str, tuple[Any, ...]]]:
    """Ordered choices compared with a constant (``cns_status >= 'CNS3'``: the choices at and
    either side of it) and multi-selects read by item (nothing, or one of the items read)."""
    found: list[tuple[str, str, tuple[Any, ...]]] = []
    for node in walk(tree):
        if isinstance(node, Compare):
            ordinal, constant = node.left, node.right
            if isinstance(constant, Ordinal):
                ordinal, constant = constant, ordinal
            if isinstance(ordinal, Ordinal) and isinstance(constant, Const):
                at = {position: choice for choice, position in ordinal.positions}
                edge = int(constant.value)
                near = tuple(at[p] for p in (edge - 1, edge, edge + 1) if p in at)
                found.append((ordinal.name, "at", near))
        elif isinstance(node, AnyOf | Member):
            items = node.items if isinstance(node, AnyOf) else (node.item,)
            found.append((node.collection, "flip", ((), *((item,) for item in items))))
    return found


def _windows(protocol: Protocol, tree: Node) -> list[Window]:
    """Each comparison of a date question with another date, both ways round."""
    found = []
    for node in walk(tree):
        if not (isinstance(node, Compare) and node.dates):
            continue
        for mine, theirs in ((node.left, node.right), (node.right, node.left)):
            variable, shifts = _date_side(mine)
            other, _ = _date_side(theirs)
            dates = (SCREENING_DATE, *protocol.questions)
            if variable in protocol.questions and other in dates and other != variable:
                found.append(Window(node, variable, shifts, other, theirs))
    return found


def _date_side(node: Node) -> tuple[str | None, tuple[tuple[int, str], ...]]:
    """``last_dli_date + days(42)``: the date's name and the windows added to it."""
    shifts: list[tuple[int, str]] = []
    while isinstance(node, Shift):
        shifts.insert(0, (node.amount, node.unit))
        node = node.base
    return (node.name if isinstance(node, Name) else None), tuple(shifts)


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
