"""The search over answers behind the validator's reachability checks.

Can a condition ever be true? Can a rule be left open on a question never asked? Each is
answered by trying answers, one question at a time, from candidates drawn from the
expressions read: dates around the ends of their windows, the subsets of the choices they
name, numbers around their thresholds. Every search is bounded: past
:data:`MAX_COMBINATIONS` (or once one file's searches together have tried
:data:`MAX_TOTAL_COMBINATIONS`, a combination of a long expression counting for more) it
gives up, and a condition falls back to a linear over-approximation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ..rules.dates import EARLIEST_YEAR, NEVER, window_shift
from ..rules.expressions import (
    SCREENING_DATE,
    And,
    AnyOf,
    Compare,
    Const,
    Known,
    Member,
    Name,
    Node,
    Not,
    Or,
    Ordinal,
    Shift,
    interpret,
    names_read,
    walk,
)
from ..rules.types import Kind
from .schema import Question, Table

MAX_COMBINATIONS = 20_000
# Per file: 500 criteria each reading questions asked conditionally could otherwise make
# thousands of searches of MAX_COMBINATIONS each (minutes). Real files use a few thousand.
MAX_TOTAL_COMBINATIONS = 100_000
NODES_PER_COST = 10  # a combination tried costs one more per this many expression nodes read
EXAMPLE_DAY = date(2026, 1, 15)  # a screening date for searching answers; a 15th (see below)


class AnswerSearch:
    """The searches of one dialog file, paid from one budget of answer combinations."""

    def __init__(
        self,
        kinds: Mapping[str, Kind],
        questions: Mapping[str, Question],
        tables: Mapping[str, Table],
        budget: int,
    ) -> None:
        self.kinds, self.questions, self.tables = kinds, questions, tables
        self.budget = budget  # answer combinations left to search
        # by the id of an expression's tree (kept alive with it): what is worked out once
        self._edges: dict[tuple[str, int, bool], tuple[Node, set[date]]] = {}
        self._compared: dict[int, tuple[Node, list[tuple[DateSide, DateSide]]]] = {}
        # answers whose candidates may miss a case: numbers compared with other answers,
        # multi-selects naming more choices than MAX_SUBSETS_OF
        self._sampled: set[str] = set()
        self._reads: dict[int, Reads] = {}

    def open_when_unasked(
        self, rule: Node, variable: str, condition: Node
    ) -> dict[str, Any] | None:
        """Known answers under which ``variable`` is not asked and ``rule`` stays unknown;
        None if there are none or the search passes its limits. ``rule`` reads no derived
        value or table (what they read is not searched)."""
        reads = [self._reads_of(rule), self._reads_of(condition)]
        self._note_sampled(reads, without=variable)
        cost = _cost(reads)
        if min(MAX_COMBINATIONS, self.budget) // cost == 0:
            return None  # past the budget: the file's other searches took it
        read, guarded = reads[0].names, reads[1].names
        # the condition's answers first: once it is decided, the rule is searched alone
        names = sorted(
            (read | guarded) - {variable, SCREENING_DATE}, key=lambda n: (n not in guarded, n)
        )
        names = [n for n in names if n in self.questions]  # derived/tables follow from these
        if not all(self._answerable(n) for n in names):
            return None
        later = frozenset(names)  # each searched with known answers only

        def unasked_and_open(env: dict[str, Any], complete: bool) -> bool | None:
            asked = _may(condition, env, later)
            if not asked & FALSE:
                return False  # asked, whatever the rest is
            open_ = _may(rule, env, later)  # env holds the variable as unknown
            if not open_ & UNKNOWN:
                return False  # decided without it, whatever the rest is
            if asked == FALSE and open_ == UNKNOWN:
                return True  # whatever the rest is
            return False if complete else None

        def domain(name: str) -> list[Any]:
            return self._domain(name, reads, unknown=False)

        found = self._search(names, domain, unasked_and_open, cost, {variable: None})
        if not isinstance(found, dict):
            return None  # not found, or cannot be searched: the engine still lists an open item
        return {n: found[n] for n in names if n in guarded or found[n] is not None}

    def can_be_true(self, node: Node) -> bool:
        """Whether some answers (known or unknown) make the expression true."""
        reads = [self._reads_of(node)]
        names = sorted(reads[0].names - {SCREENING_DATE})
        self._note_sampled(reads)

        def true(env: dict[str, Any], complete: bool) -> bool | None:
            values = _may(node, env)
            if values == TRUE:
                return True
            return False if complete or not values & TRUE else None

        def domain(name: str) -> list[Any]:
            return self._domain(name, reads, unknown=True)

        found = self._search(names, domain, true, _cost(reads))
        if found is TOO_LARGE or (found is None and self._sampled & set(names)):
            return True in _possible(node)  # linear, never wrongly says "never"
        return found is not None

    def find(
        self,
        names: list[str],
        read: list[Node],
        wanted: Callable[[dict[str, Any], bool], bool | None],
    ) -> dict[str, Any] | None | object:
        """Answers to ``names`` (each known or unknown, chosen in that order) that ``wanted``
        accepts (it is asked as :meth:`_search` asks it); None if there are none. ``read``:
        every expression ``wanted`` reads, whose candidates are tried. TOO_LARGE past the
        limits, and where the candidates may miss a case: a number of ``names`` compared
        with another answer, a multi-select naming more than MAX_SUBSETS_OF choices, dates
        not searched exactly (:func:`dates_searched_exactly`). The names ``wanted`` reads
        beyond ``names`` are unknown to it."""
        searched = frozenset(names)
        if not all(dates_searched_exactly(node, searched) for node in read):
            return TOO_LARGE
        reads = [self._reads_of(node) for node in read]
        if _sampled_in(reads) & searched:  # their candidates may miss a case
            return TOO_LARGE

        def domain(name: str) -> list[Any]:
            return self._domain(name, reads, unknown=True)

        return self._search(names, domain, wanted, _cost(reads))

    def _search(
        self,
        names: list[str],
        domain: Callable[[str], list[Any]],
        wanted: Callable[[dict[str, Any], bool], bool | None],
        cost: int,
        given: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None | object:
        """Answers to ``names`` (each from its ``domain``, none empty) that ``wanted``
        accepts; None if there are none, TOO_LARGE past the limits. ``wanted`` sees some
        answers chosen (the others absent; ``complete`` when none is): True accepts them
        whatever the rest are, False rejects them whatever the rest are (the search goes no
        deeper), None chooses the next (with all chosen, rejects). Each set of answers tried
        is paid from the budget, ``cost`` each (more in long expressions). An answer's
        candidates are made when the search first reaches it: the work before a search
        is paid for is then in proportion to its cost, and a search decided by its first
        answers never makes the others'."""
        limit = min(MAX_COMBINATIONS, self.budget) // cost
        tried = 0
        env: dict[str, Any] = {SCREENING_DATE: EXAMPLE_DAY, **(given or {})}
        domains: dict[int, list[Any]] = {}

        def candidates(index: int) -> list[Any]:
            if index not in domains:
                domains[index] = domain(names[index])
            return domains[index]

        def deeper(index: int) -> dict[str, Any] | None:
            nonlocal tried
            tried += 1
            if tried > limit:
                raise _TooLarge
            verdict = wanted(env, index == len(names))
            if verdict is not None or index == len(names):
                if not verdict:
                    return None
                return {n: env[n] if n in env else candidates(i)[0] for i, n in enumerate(names)}
            for value in candidates(index):
                env[names[index]] = value
                found = deeper(index + 1)
                if found is not None:
                    return found
            del env[names[index]]
            return None

        try:
            return deeper(0)
        except _TooLarge:
            return TOO_LARGE
        finally:
            self.budget -= min(tried, limit) * cost

    def _reads_of(self, node: Node) -> Reads:
        """What ``node`` reads (worked out once per expression: a file's checks search each
        rule once per question it reads that may not be asked, each condition with every
        rule reading its question)."""
        if id(node) not in self._reads:
            self._reads[id(node)] = Reads.of(node, self.kinds)
        return self._reads[id(node)]

    def _note_sampled(self, reads: list[Reads], without: str | None = None) -> None:
        """Mark the answers a search of ``reads`` searches (but ``without``) whose candidates
        are samples, before any are made: a search may stop before making them, and a later
        search reading one of them must still not take its finding none for a proof."""
        found = _sampled_in(reads)
        if without is not None:  # an unasked question's search: of the other questions
            found = (found - {without}) & self.questions.keys()
        self._sampled |= found

    def _answerable(self, name: str) -> bool:
        """Whether a question has candidate answers, whatever thresholds are read: all but
        an int question with no whole number from its min to its max (with one, int(min)
        or int(max) is a candidate; the searches made every answer's candidates first and
        found nothing where one had none, so they still do)."""
        q = self.questions[name]
        if q.type != "int" or q.min is None or q.max is None:
            return True
        return math.floor(q.max) >= q.min

    def _domain(self, name: str, reads: list[Reads], unknown: bool) -> list[Any]:
        kind = self.kinds[name]
        values: list[Any]
        if kind.base == "yes_no":
            values = [True, False]
        elif kind.base == "choice":
            values = list(kind.choices)
        elif kind.base == "set":
            values = _sets(kind.choices, {c for r in reads for c in r.named.get(name, ())})
        elif kind.base == "date":
            nodes = [r.tree for r in reads]
            values = [*self._dates(name, nodes), *([NEVER] if kind.never else [])]
        elif kind.base == "number":
            values = self._numbers(name, reads)
        else:
            values = [""]
        return [*values, None] if unknown else values

    def _dates(self, name: str, nodes: list[Node], others: bool = True) -> list[date]:
        """Days a little before, on and after each day where a comparison of ``name``
        changes (the window ends counted from the other side's candidates), and a few
        spread days; all of them days an answer may be."""
        q = self.questions.get(name)
        ahead = q is not None and q.future
        sign = 1 if ahead else -1
        days = {EXAMPLE_DAY + timedelta(days=sign * d) for d in (0, 1, 40, 400, 4000)}
        for node in nodes:
            days |= self._date_edges(name, node, others)
        return sorted(
            d
            for d in days
            if d.year >= EARLIEST_YEAR and (d >= EXAMPLE_DAY if ahead else d <= EXAMPLE_DAY)
        )

    def _date_edges(self, name: str, node: Node, others: bool) -> set[date]:
        """The days around which ``node``'s comparisons of ``name`` change (kept: a
        condition is read again with each rule that reads its question)."""
        key = (name, id(node), others)
        if key in self._edges:
            return self._edges[key][1]
        edges: set[date] = set()
        theirs_memo: dict[str, list[date]] = {}
        if id(node) not in self._compared:
            self._compared[id(node)] = (node, _date_comparisons(node))
        for (me, mine), (base, shifts) in self._compared[id(node)][1]:
            if me != name:
                continue
            if base == SCREENING_DATE:
                starts: list[date] = [EXAMPLE_DAY]
            elif others:
                if base not in theirs_memo:
                    theirs_memo[base] = self._dates(base, [node], others=False)
                starts = theirs_memo[base]
            else:
                continue
            for start in starts:
                edge = _shifted(_shifted(start, shifts), [(-a, u) for a, u in reversed(mine)])
                if isinstance(edge, date) and date.min < edge < date.max:
                    edges |= {edge - timedelta(days=1), edge, edge + timedelta(days=1)}
        self._edges[key] = (node, edges)
        return edges

    def _numbers(self, name: str, reads: list[Reads]) -> list[float]:
        q = self.questions.get(name)
        low, high = (q.min, q.max) if q is not None else (None, None)
        marks = {c for r in reads for c in r.constants.get(name, ())}
        marks |= {m for m in (low, high) if m is not None}
        for other in {o for r in reads for o in r.compared.get(name, ())}:
            marks |= {c for r in reads for c in r.constants.get(other, ())}
            theirs = self.questions.get(other)
            if theirs is not None:
                marks |= {m for m in (theirs.min, theirs.max) if m is not None}
            if other in self.tables:
                marks |= {row.value for row in self.tables[other].rows}
        if not marks:
            marks = {0.0}
        points = {m + d for m in marks for d in (-1, 0, 1)}
        ordered = sorted(marks)
        points |= {(a + b) / 2 for a, b in itertools.pairwise(ordered)}
        if q is not None and q.type == "int":
            points = {float(int(p)) for p in points}
        return sorted(
            p for p in points if (low is None or p >= low) and (high is None or p <= high)
        )


@dataclass(frozen=True)
class Reads:
    """What one expression reads, worked out in one walk of it."""

    tree: Node  # kept alive while its id indexes this
    names: frozenset[str]
    size: int  # its nodes: a long expression costs more to evaluate
    constants: dict[str, frozenset[float]]  # the numbers each name is compared with
    compared: dict[str, frozenset[str]]  # the names each is compared with directly
    named: dict[str, frozenset[str]]  # the choices named of each multi-select (of its list)
    sampled: frozenset[str]  # whose candidates for this expression are samples (see _sets)

    @classmethod
    def of(cls, tree: Node, kinds: Mapping[str, Kind]) -> Reads:
        size = 0
        constants: dict[str, set[float]] = {}
        compared: dict[str, set[str]] = {}
        named: dict[str, set[str]] = {}
        for n in walk(tree):
            size += 1
            if isinstance(n, Compare):
                for a, b in ((n.left, n.right), (n.right, n.left)):
                    number = isinstance(b, Const) and type(b.value) in (int, float)
                    if isinstance(a, Name) and number:
                        constants.setdefault(a.name, set()).add(float(b.value))  # type: ignore[attr-defined]
                    if isinstance(a, Name) and isinstance(b, Name) and a.name != b.name:
                        compared.setdefault(a.name, set()).add(b.name)
            elif isinstance(n, Member):
                named.setdefault(n.collection, set()).add(n.item)
            elif isinstance(n, AnyOf):
                named.setdefault(n.collection, set()).update(n.items)
        named = {  # of a multi-select's own choices
            name: items & set(kinds[name].choices)
            for name, items in named.items()
            if name in kinds and kinds[name].base == "set"
        }
        sampled = {n for n in compared if n in kinds and kinds[n].base == "number"}
        sampled |= {n for n, items in named.items() if len(items) > MAX_SUBSETS_OF}
        return cls(
            tree,
            names_read(tree),
            size,
            {name: frozenset(found) for name, found in constants.items()},
            {name: frozenset(found) for name, found in compared.items()},
            {name: frozenset(found) for name, found in named.items()},
            frozenset(sampled),
        )


def _sampled_in(reads: list[Reads]) -> set[str]:
    """The answers whose candidates for a search of all of ``reads`` are samples: each
    expression's own, and a multi-select whose choices named across them pass
    MAX_SUBSETS_OF."""
    found = set().union(*(r.sampled for r in reads))
    named: dict[str, set[str]] = {}
    for r in reads:
        for name, items in r.named.items():
            named.setdefault(name, set()).update(items)
    return found | {n for n, items in named.items() if len(items) > MAX_SUBSETS_OF}


def _cost(reads: list[Reads]) -> int:
    """What one combination tried costs: one, and one more per NODES_PER_COST nodes read."""
    return 1 + sum(r.size for r in reads) // NODES_PER_COST


TOO_LARGE = object()  # a search that would pass its limits


class _TooLarge(Exception):
    pass


TRUE, FALSE, UNKNOWN = 1, 2, 4  # the values an expression may still take, as bits
ANY = TRUE | FALSE | UNKNOWN


def _may(node: Node, env: dict[str, Any], known_later: frozenset[str] = frozenset()) -> int:
    """The values ``node`` may take when the answers absent from ``env`` are not chosen yet
    (an over-approximation, exact once every answer it reads is chosen): a search whose
    wanted value is not among them goes no deeper. ``known_later``: answers that will be
    chosen known (a comparison of known answers is never unknown)."""
    if isinstance(node, And | Or):
        decisive, other = (TRUE, FALSE) if isinstance(node, Or) else (FALSE, TRUE)
        may_decide, always_other, may_be_unknown = False, True, False
        for part in node.parts:
            values = _may(part, env, known_later)
            if values == decisive:
                return decisive
            may_decide = may_decide or bool(values & decisive)
            always_other = always_other and bool(values & other)
            may_be_unknown = may_be_unknown or bool(values & UNKNOWN)
        return (
            (decisive if may_decide else 0)
            | (other if always_other else 0)
            | (UNKNOWN if may_be_unknown else 0)
        )
    if isinstance(node, Not):
        values = _may(node.part, env, known_later)
        return (TRUE if values & FALSE else 0) | (FALSE if values & TRUE else 0) | values & UNKNOWN
    reads = _leaf_reads(node)
    missing = [name for name in reads if name not in env]
    if missing:  # known() is never unknown; a comparison with an unknown answer may be
        chosen_unknown = any(env[name] is None for name in reads if name in env)
        known = isinstance(node, Known) or (
            all(name in known_later for name in missing) and not chosen_unknown
        )
        return TRUE | FALSE if known else ANY
    value = interpret(node, env)
    return TRUE if value is True else FALSE if value is False else UNKNOWN


def _leaf_reads(node: Node) -> list[str]:
    """The answers a comparison, a name, known() or a membership reads."""
    if isinstance(node, Compare):
        return _leaf_reads(node.left) + _leaf_reads(node.right)
    if isinstance(node, Shift):
        return _leaf_reads(node.base)
    if isinstance(node, Name | Ordinal | Known):
        return [node.name]
    if isinstance(node, Member | AnyOf):
        return [node.collection]
    return []


MAX_SUBSETS_OF = 8  # choices a rule names, whose every subset is tried


def _sets(choices: tuple[str, ...], named: set[str]) -> list[tuple[str, ...]]:
    """Answers to a multi-select question: every subset of the choices the expressions
    name (the others change nothing they read), or, past MAX_SUBSETS_OF, the empty set,
    each choice alone and all of them (samples: see Reads.sampled)."""
    read = [c for c in choices if c in named]
    if len(read) > MAX_SUBSETS_OF:
        return [(), *((c,) for c in choices), choices]
    return [
        tuple(c for c, keep in zip(read, picks, strict=True) if keep)
        for picks in itertools.product((False, True), repeat=len(read))
    ]


DateSide = tuple[str, list[tuple[int, str]]]  # a date name and the windows added to it


def _date_side(node: Node) -> DateSide | None:
    shifts: list[tuple[int, str]] = []
    while isinstance(node, Shift):
        shifts.insert(0, (node.amount, node.unit))
        node = node.base
    return (node.name, shifts) if isinstance(node, Name) else None


def _date_comparisons(node: Node) -> list[tuple[DateSide, DateSide]]:
    """Each comparison of two dates, both ways round: (this side, the other side)."""
    found = []
    for n in walk(node):
        if isinstance(n, Compare):
            sides = (_date_side(n.left), _date_side(n.right))
            for mine, theirs in (sides, sides[::-1]):
                if mine and theirs and mine[0] != theirs[0]:
                    found.append((mine, theirs))
    return found


CALENDAR_UNITS = ("months", "years")


def dates_searched_exactly(node: Node, searched: frozenset[str] | None = None) -> bool:
    """Whether the search on :data:`EXAMPLE_DAY` answers for every screening date what
    ``node``'s date answers can make of it. So it does when each date answer is compared
    with the screening date only, and either by whole days and weeks (a shift of the same
    number of days on every date) or in one comparison adding calendar months or years
    to the answer alone: such a comparison's truth changes once as the answer moves, and on
    a 15th, which every month has, no month end cuts a window short. Two answers compared
    with each other, or days mixed with months, are not searched exactly.

    ``searched``: the answers searched, the others always unknown; a comparison reading
    one of those is unknown (or false, on a date that is none) whatever the date searched
    is, so it is left aside."""
    calendar: dict[str, list[bool]] = {}
    for n in walk(node):
        if not (isinstance(n, Compare) and n.dates):
            continue
        if searched is not None and names_read(n) - {SCREENING_DATE} - searched:
            continue
        left, right = _date_side(n.left), _date_side(n.right)
        if left is None or right is None:
            return False
        clock = [s for s in (left, right) if s[0] == SCREENING_DATE]
        answer = [s for s in (left, right) if s[0] != SCREENING_DATE]
        if len(clock) != 1 or len(answer) != 1:
            return False
        (name, windows), clock_windows = answer[0], clock[0][1]
        units = {unit for _, unit in windows}
        months = bool(units & set(CALENDAR_UNITS))
        if months and (clock_windows or units - set(CALENDAR_UNITS)):
            return False
        calendar.setdefault(name, []).append(months)
    return all(len(uses) == 1 or not any(uses) for uses in calendar.values())


def _shifted(day: Any, shifts: list[tuple[int, str]]) -> Any:
    for amount, unit in shifts:
        if not isinstance(day, date):
            return day
        day = window_shift(day, amount, unit)  # type: ignore[arg-type]
    return day


def _possible(node: Node) -> set[bool | None]:
    """An over-approximation of the values a condition can take (linear in its size)."""
    if isinstance(node, Const):
        return {node.value} if isinstance(node.value, bool) else {True, False, None}
    if isinstance(node, Known):
        return {True, False}
    if isinstance(node, Not):
        return {None if v is None else not v for v in _possible(node.part)}
    if isinstance(node, And | Or):
        parts = [_possible(p) for p in node.parts]
        decisive, other = (False, True) if isinstance(node, And) else (True, False)
        found: set[bool | None] = set()
        if any(decisive in p for p in parts):
            found.add(decisive)
        if all(other in p for p in parts):
            found.add(other)
        if any(None in p for p in parts) and all(p - {decisive} for p in parts):
            found.add(None)
        return found
    return {True, False, None}
