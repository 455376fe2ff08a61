"""Three-valued evaluation of a protocol's criteria on a set of answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .calculators import CALCULATORS
from .protocol import Protocol

Status = Literal["met", "failed", "unknown"]


@dataclass(frozen=True)
class Outcome:
    criterion: str
    status: Status
    values: dict[str, Any] = field(default_factory=dict)  # known values the rule read
    estimated: tuple[str, ...] = ()  # derived values that were calculated, not measured
    open_variables: tuple[str, ...] = ()  # unknown answers that leave the rule open


@dataclass(frozen=True)
class Context:
    """Answers as the rules see them: not-applicable questions dropped, derived values added."""

    env: dict[str, Any]
    applicable: frozenset[str]
    estimated: frozenset[str]


def applicable_questions(protocol: Protocol, answers: Mapping[str, Any]) -> frozenset[str]:
    """Questions whose condition does not rule them out, given the answers.

    A question is applicable when every question its condition reads is applicable and
    the condition is true *or unknown* (an unknown sex still asks about pregnancy).
    """
    applicable: set[str] = set()
    visible: dict[str, Any] = {}
    for variable in protocol.order:
        condition = protocol.when.get(variable)
        if condition is None or (
            condition.names <= applicable and condition.evaluate(visible) is not False
        ):
            applicable.add(variable)
            visible[variable] = answers.get(variable)
    return frozenset(applicable)


def context(protocol: Protocol, answers: Mapping[str, Any]) -> Context:
    applicable = applicable_questions(protocol, answers)
    env = {v: answers.get(v) for v in applicable}
    estimated: set[str] = set()
    for d in protocol.spec.derived:
        measured = env.get(d.measured) if d.measured else None
        if measured is not None:
            env[d.name] = measured
            continue
        inputs = {param: env.get(var) for param, var in d.inputs.items()}
        if all(v is not None for v in inputs.values()):
            env[d.name] = CALCULATORS[d.calculator].function(**inputs)
            estimated.add(d.name)
        else:
            env[d.name] = None
    return Context(env, applicable, frozenset(estimated))


def outcome(protocol: Protocol, criterion_id: str, ctx: Context) -> Outcome:
    criterion = protocol.criteria[criterion_id]
    expr = protocol.rules[criterion_id]
    result = expr.evaluate(ctx.env)
    if criterion.kind == "exclusion" and result is not None:
        result = not result
    status: Status = "unknown" if result is None else ("met" if result else "failed")
    values = {n: ctx.env[n] for n in sorted(expr.names) if ctx.env.get(n) is not None}
    open_variables: list[str] = []
    if status == "unknown":
        for name in sorted(expr.names):
            if ctx.env.get(name) is None:
                open_variables += [
                    v
                    for v in protocol.inputs_of(name)
                    if v in ctx.applicable and ctx.env.get(v) is None and v not in open_variables
                ]
    estimated = tuple(sorted(n for n in expr.names if n in ctx.estimated))
    return Outcome(criterion_id, status, values, estimated, tuple(open_variables))


def evaluate(protocol: Protocol, answers: Mapping[str, Any]) -> list[Outcome]:
    """Every criterion's outcome, in the order of the dialog file."""
    ctx = context(protocol, answers)
    return [outcome(protocol, cid, ctx) for cid in protocol.criteria]


def first_failure(
    protocol: Protocol, answers: Mapping[str, Any], criteria: list[str] | None = None
) -> str | None:
    """The first failed criterion among ``criteria`` (all when None), or None."""
    ctx = context(protocol, answers)
    for cid in protocol.criteria if criteria is None else criteria:
        if outcome(protocol, cid, ctx).status == "failed":
            return cid
    return None
