"""Which steps of the dialog some session can take, searched over answers.

The flow diagram draws a "next" step from one question to a later one, and the early exit
to not_eligible after a question, only where some answers take it. The answers are
searched with the validator's :class:`~..protocol.search.AnswerSearch` (candidates from the
expressions read: numbers around their thresholds, dates around their windows, every
choice; each also unknown), one question at a time in the dialog's order, and the engine's
own evaluation decides each: :func:`~..rules.evaluation.asked` which questions are asked,
the criteria's statuses whether one failed. A search that passes its limits, or whose
candidates may miss a case, counts as taken: a step is left out only when no answers take
it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..protocol import Protocol
from ..protocol.search import EXAMPLE_DAY, AnswerSearch
from ..rules.demand import Demand, demand
from ..rules.evaluation import Context, Used, asked, derive, statuses
from ..rules.expressions import Node

# Every search of one protocol together (the shipped ones use under a fifth of it, in a
# quarter of a second): past it, the steps not yet searched are drawn.
MAX_TOTAL_COMBINATIONS = 400_000
SEARCHED = Used("any value", {})  # a derived value searched as itself: an estimate


def untaken(protocol: Protocol) -> frozenset[tuple[str, str]]:
    """The steps (question, next question) and (question, "not_eligible") that no answers
    take (worked out once per protocol and kept on it)."""
    found = protocol.__dict__.get("_untaken_steps")
    if found is None:
        found = protocol.__dict__["_untaken_steps"] = frozenset(_untaken(protocol))
    return found


def _untaken(protocol: Protocol) -> Iterable[tuple[str, str]]:
    search = AnswerSearch(
        protocol.kinds, protocol.questions, protocol.table_specs, MAX_TOTAL_COMBINATIONS
    )
    # each criterion reading no derived value, with the questions its status depends on
    plain = {}
    for cid, rule in protocol.rules.items():
        questions, derived = _leaves(protocol, rule.names)
        if not derived:
            plain[cid] = demand(protocol, questions).questions
    order = protocol.order
    for index, source in enumerate(order):
        for dest in order[index + 1 :]:
            if not _can_go(protocol, search, source, dest):
                yield source, dest
            if dest not in protocol.when:
                break  # asked always: no later question comes next
        if not _can_fail(protocol, search, source, plain):
            yield source, "not_eligible"


def _can_go(protocol: Protocol, search: AnswerSearch, source: str, dest: str) -> bool:
    """Whether some answers, once ``source`` is answered, ask ``dest`` next: ``source`` and
    ``dest`` asked, none of the questions between them.

    Those between are not answered yet, and each condition reads only earlier questions:
    the questions searched are those up to ``source`` that decide the conditions read.
    """
    order = protocol.order
    skipped = order[order.index(source) + 1 : order.index(dest)]
    need = demand(protocol, [source, *skipped, dest])
    names = [q for q in order[: order.index(source) + 1] if q in need.questions]

    def goes(env: dict[str, Any], complete: bool) -> bool | None:
        applicable, _ = _values(protocol, need, env, names, [])
        if not complete:
            return _go_on(env, names, applicable, source)
        return {source, dest} <= applicable and applicable.isdisjoint(skipped)

    return _found(search, names, _conditions(protocol, need), goes)


def _can_fail(
    protocol: Protocol, search: AnswerSearch, variable: str, plain: dict[str, frozenset[str]]
) -> bool:
    """Whether some answers make a criterion reading ``variable`` fail when it is answered,
    in a session that reached it: no criterion failed at an earlier question.

    A criterion that fails on the answers before ``variable`` failed already when the last
    of them it reads was answered (the same answers, the later ones not given then nor
    now), and that answer ended the dialog. So the answers searched may not fail one, of
    those criteria whose every answer up to ``variable`` is searched and which read no
    derived value (``plain``: an estimate may change with later answers). A derived value
    is searched as itself: its measured value when that is answered, else any value (an
    estimate), or unknown.
    """
    reading = protocol.criteria_reading[variable]
    if not reading:
        return False
    order = protocol.order
    before = order[: order.index(variable)]
    questions, derived = _leaves(protocol, [n for c in reading for n in protocol.rules[c].names])
    need = demand(protocol, [*questions, variable])
    names = [q for q in order[: order.index(variable) + 1] if q in need.questions]
    searched = set(names)
    earlier = []
    for cid, depends in plain.items():
        answered = depends.intersection(before)
        if answered and answered <= searched:
            earlier.append(cid)
    tables = [t for t in protocol.tables if t in _tables_read(protocol, reading + earlier)]
    read = _conditions(protocol, need)
    read += [protocol.rules[c].node for c in reading + earlier]
    read += [row.node for t in tables for row, _ in protocol.tables[t]]
    answered_before = names.index(variable)  # the answers searched before `variable`

    def fails(env: dict[str, Any], complete: bool) -> bool | None:
        applicable, values = _values(protocol, need, env, names, tables)
        if len([n for n in names if n in env]) <= answered_before:
            context = Context(values, applicable, {})
            if "failed" in statuses(protocol, context, earlier):
                return False  # the dialog ended before `variable`
        if not complete:
            return _go_on(env, names, applicable, variable)
        estimated = {}
        for d in protocol.spec.derived:
            if d.name in derived:
                measured = values.get(d.measured) if d.measured else None
                values[d.name] = measured if measured is not None else env[d.name]
                if measured is None and env[d.name] is not None:
                    estimated[d.name] = SEARCHED
        derive(protocol, values, [], tables)  # again: a row may read a derived value
        context = Context(values, applicable, estimated)
        return "failed" in statuses(protocol, context, reading)

    return _found(search, [*names, *derived], read, fails)


def _found(
    search: AnswerSearch,
    names: list[str],
    read: list[Node],
    wanted: Callable[[dict[str, Any], bool], bool | None],
) -> bool:
    """Whether the search finds answers ``wanted`` accepts, or cannot tell."""
    return search.budget <= 0 or search.find(names, read, wanted) is not None


def _values(
    protocol: Protocol, need: Demand, env: dict[str, Any], names: list[str], tables: list[str]
) -> tuple[frozenset[str], dict[str, Any]]:
    """The questions asked and the values the rules read (tables looked up; derived values
    are the caller's)."""
    answers = {n: env[n] for n in names if n in env}
    applicable, values = asked(need.always, need.conditions, answers, EXAMPLE_DAY)
    derive(protocol, values, [], tables)
    return applicable, values


def _go_on(
    env: dict[str, Any], names: list[str], applicable: frozenset[str], answered: str
) -> bool | None:
    """Choose the next answer (None), or stop: when ``answered`` is not asked (decided by
    the answers before it), or a question not asked has a value other than unknown (never
    read: unknown stands for them all)."""
    chosen = [n for n in names if n in env]
    if len(chosen) >= names.index(answered) and answered not in applicable:
        return False
    if chosen and chosen[-1] not in applicable and env[chosen[-1]] is not None:
        return False
    return None


def _conditions(protocol: Protocol, need: Demand) -> list[Node]:
    """The conditions ``need`` decides, with the rows of the tables they read."""
    read = [protocol.when[c.variable].node for c in need.conditions]
    for t in need.tables:
        read += [row.node for row, _ in protocol.tables[t]]
    return read


def _leaves(protocol: Protocol, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """The questions and the derived values that ``names`` read (a table its rows' names,
    a derived value itself and its measured question)."""
    questions: list[str] = []
    derived: list[str] = []
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in protocol.questions and name not in questions:
            questions.append(name)
        elif name in protocol.derived and name not in derived:
            derived.append(name)
            measured = protocol.derived[name].measured
            todo += [measured] if measured else []
        elif name in protocol.tables:
            todo += [n for row, _ in protocol.tables[name] for n in row.names]
    return questions, derived


def _tables_read(protocol: Protocol, criteria: list[str]) -> set[str]:
    found: set[str] = set()
    todo = [n for c in criteria for n in protocol.rules[c].names]
    while todo:
        name = todo.pop()
        if name in protocol.tables and name not in found:
            found.add(name)
            todo += [n for row, _ in protocol.tables[name] for n in row.names]
    return found
