"""Three-valued evaluation of a protocol's criteria on a set of answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..protocol import Protocol
from .calculators import CALCULATORS
from .expressions import Expression

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


@dataclass(frozen=True)
class _Rule:
    """A criterion's rule with what evaluating it needs, looked up once per protocol."""

    evaluate: Callable[[Mapping[str, Any]], Any]
    exclusion: bool
    names: tuple[str, ...]  # sorted
    inputs: dict[str, list[str]]  # name -> the answered variables it stands for


@dataclass(frozen=True)
class _Plan:
    """Per-protocol constants of evaluation (the protocol is read-only)."""

    always: frozenset[str]  # questions without a condition
    conditional: tuple[tuple[str, Expression, bool], ...]  # (question, when, reads only earlier)
    rules: dict[str, _Rule]

    @classmethod
    def of(cls, protocol: Protocol) -> _Plan:
        conditional = []
        for index, variable in enumerate(protocol.order):
            if (condition := protocol.when.get(variable)) is not None:
                earlier = condition.names <= set(protocol.order[:index])
                conditional.append((variable, condition, earlier))
        rules = {
            cid: _Rule(
                expr.evaluate,
                protocol.criteria[cid].kind == "exclusion",
                tuple(sorted(expr.names)),
                {name: protocol.inputs_of(name) for name in expr.names},
            )
            for cid, expr in protocol.rules.items()
            if cid in protocol.criteria
        }
        return cls(frozenset(protocol.order) - protocol.when.keys(), tuple(conditional), rules)


def _plan(protocol: Protocol) -> _Plan:
    """The protocol's plan, made once and kept on it the way its cached properties are."""
    plan = protocol.__dict__.get("_rules_plan")
    if plan is None:
        plan = protocol.__dict__["_rules_plan"] = _Plan.of(protocol)
    return plan


def applicable_questions(protocol: Protocol, answers: Mapping[str, Any]) -> frozenset[str]:
    """Questions whose condition does not rule them out, given the answers.

    A question is applicable when every question its condition reads is applicable and
    the condition is true *or unknown* (an unknown sex still asks about pregnancy).
    """
    plan = _plan(protocol)
    applicable = set(plan.always)
    # A condition reads only earlier questions (else it can never hold), whose applicability
    # is settled by then; and it reads only its names, all applicable: answers stand in for
    # the applicable answers so far.
    for variable, condition, earlier in plan.conditional:
        if earlier and condition.names <= applicable and condition.evaluate(answers) is not False:
            applicable.add(variable)
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


def statuses(protocol: Protocol, ctx: Context, criteria: list[str] | None = None) -> list[Status]:
    """Each criterion's ``outcome(...).status`` without the details (all when None)."""
    rules, env = _plan(protocol).rules, ctx.env
    wanted = protocol.criteria if criteria is None else criteria
    return [_status(rules[cid], env) for cid in wanted]


def _status(rule: _Rule, env: Mapping[str, Any]) -> Status:
    result = rule.evaluate(env)
    if rule.exclusion and result is not None:
        result = not result
    return "unknown" if result is None else ("met" if result else "failed")


def outcome(protocol: Protocol, criterion_id: str, ctx: Context) -> Outcome:
    return _outcome(criterion_id, _plan(protocol).rules[criterion_id], ctx)


def _outcome(criterion_id: str, rule: _Rule, ctx: Context) -> Outcome:
    env = ctx.env
    status = _status(rule, env)
    values = {n: v for n in rule.names if (v := env.get(n)) is not None}
    open_variables: list[str] = []
    if status == "unknown":
        for name in rule.names:
            if env.get(name) is None:
                open_variables += [
                    v
                    for v in rule.inputs[name]
                    if v in ctx.applicable and env.get(v) is None and v not in open_variables
                ]
    estimated: tuple[str, ...] = ()
    if not ctx.estimated.isdisjoint(rule.names):
        estimated = tuple(n for n in rule.names if n in ctx.estimated)
    return Outcome(criterion_id, status, values, estimated, tuple(open_variables))


def evaluate(protocol: Protocol, answers: Mapping[str, Any]) -> list[Outcome]:
    """Every criterion's outcome, in the order of the dialog file."""
    ctx = context(protocol, answers)
    rules = _plan(protocol).rules
    return [_outcome(cid, rules[cid], ctx) for cid in protocol.criteria]
