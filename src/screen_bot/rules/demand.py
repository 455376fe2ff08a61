"""The part of a context that some names depend on, for checks that read only those names.

A dialog step reads few names: the rules of the criteria that read the question just
answered, and the conditions of the questions that may come next. :func:`demand` finds,
once per protocol and set of names, everything their values depend on (the conditions
deciding whether their questions are asked, the derived values and tables they read, and
theirs in turn); :func:`part_context` evaluates only that. For those names it gives the
values, estimates and applicability :func:`~.evaluation.context` gives; other names are
left out (unknown, not asked), so only checks reading ``demand``'s names may use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from .evaluation import Context, _Condition, _plan, asked, derive

if TYPE_CHECKING:
    from ..protocol.model import Protocol
    from ..protocol.schema import Derived


@dataclass(frozen=True)
class Demand:
    """What the values of some names depend on, in evaluation order."""

    always: frozenset[str]  # the unconditional questions among ``questions``
    conditions: tuple[_Condition, ...]  # conditional questions to decide, in dialog order
    questions: frozenset[str]  # questions whose answers are read
    derived: tuple[Derived, ...]  # in the file's order
    tables: tuple[str, ...]  # in the protocol's order


def demand(protocol: Protocol, names: Iterable[str]) -> Demand:
    """Everything ``names`` depend on (a question: its answer and its condition)."""
    plan = _plan(protocol)
    conditions = {c.variable: c for c in plan.conditional}
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in conditions:
            todo += conditions[name].inputs
        if name in protocol.derived:
            measured = protocol.derived[name].measured
            todo += [measured] if measured else []
            for estimate in protocol.estimates[name]:
                todo += estimate.use.inputs.values()
                todo += estimate.when.names if estimate.when is not None else ()
        for condition, _ in protocol.tables.get(name, ()):
            todo += condition.names
    questions = frozenset(seen.intersection(protocol.questions))
    return Demand(
        always=plan.always & questions,
        conditions=tuple(c for c in plan.conditional if c.variable in seen),
        questions=questions,
        derived=tuple(d for d in protocol.spec.derived if d.name in seen),
        tables=tuple(t for t in protocol.tables if t in seen),
    )


def part_context(
    protocol: Protocol, need: Demand, answers: Mapping[str, Any], screened_on: date | None
) -> Context:
    """The context of ``answers`` as far as ``need`` goes (``answers`` may hold only the
    questions ``need`` reads)."""
    # the conditions read only questions in need.questions: the rest of `always` is not read
    applicable, env = asked(need.always, need.conditions, answers, screened_on)
    estimated = derive(protocol, env, need.derived, need.tables)
    return Context(env, applicable, estimated)


def whole(protocol: Protocol) -> Demand:
    """What every name depends on: :func:`part_context` with it is the whole context
    (made once and kept on the protocol, as its rules' plan is)."""
    found = protocol.__dict__.get("_whole_demand")
    if found is None:
        names = [*protocol.order, *protocol.derived, *protocol.tables]
        found = protocol.__dict__["_whole_demand"] = demand(protocol, names)
    return found
