"""An answer's checks, compiled per protocol to run straight on a session's stored answers.

The general path makes a context (a dict: the typed answers, then the conditional
questions decided, then the derived values) and runs each rule reading names from it.
A function generated here does the same in local variables: each stored answer typed as
``typed_value`` types it, each conditional question decided in dialog order as
:func:`~.evaluation.grown` decides it (a question not asked reads as unknown), each
derived value made as :func:`~.evaluation.derive` makes it, then the rules, as
:mod:`.compiled` writes them, on those locals. It covers what a :class:`~.demand.Demand`
covers, so a dialog step evaluates only what its checks read, as
:func:`~.demand.part_context` does.

Two uses: :func:`stored_decision`, at a dialog's last answer (whose end state is the
verdict): the verdict every criterion's status gives, every criterion met tested first,
the statuses made (all of them) only when one fails; and :func:`step_checks`, a step's
checks (the statuses of the criteria reading the question answered, and whether each
question that may come next is asked). Only protocols without tables whose estimates
have no ``when`` are compiled; others keep the general path (None here). A status of
"failed" that may rest only on an estimate needs the estimates (the ``confirm`` fix): then
the general path decides too. Tests compare both with the general path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from .compiled import _namespace, _Writer
from .demand import Demand, whole
from .evaluation import Status, _plan
from .expressions import SCREENING_DATE, walk

if TYPE_CHECKING:
    from ..protocol.model import Protocol

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# The nodes of rules and conditions one protocol's stored checks may compile, all functions
# together (the shipped file compiled, blina-dli, uses about 500). Each step compiles the
# rules of every criterion reading its question, and Python's compiler takes more than
# linear time in a function's size: 400 long criteria each reading 60 questions made a
# minute of compiling. Past the budget a function is not made; the general path decides.
MAX_COMPILED_NODES = 20_000
Decision = Callable[[Mapping[str, Any], date | None], str | tuple[Status, ...]]
Checks = Callable[[Mapping[str, Any], date | None], tuple[tuple[Status, ...], tuple[bool, ...]]]


def stored_decision(
    protocol: Protocol, answers: Mapping[str, Any], screened_on: date | None
) -> str | tuple[Status, ...] | None:
    """What a dialog's last answer needs: the verdict :func:`~..verdict.decide_statuses`
    gives on every criterion's status, "eligible" or "unresolved", when no criterion fails
    (no statuses made); when one fails, every criterion's status, as
    :func:`~.evaluation.each_status` gives it (None: the general path must give them, as
    when the protocol is not compiled, or when the failure may rest only on an estimate)."""
    function = final_decision(protocol)
    if function is None:
        return None
    found: str | tuple[Status, ...] = function(answers, screened_on)
    if type(found) is tuple and _plan(protocol).confirming:
        return None  # a failure (there is one) may rest only on an estimate
    return found


def final_decision(protocol: Protocol) -> Decision | None:
    """``f(answers, screened_on)`` on the whole context of the stored ``answers``: "eligible"
    when every criterion is met, the statuses ``together`` gives when one fails (before the
    ``confirm`` fix), else "unresolved"; None when the protocol is not compiled. Made once
    and kept on the protocol, as its rules' plan is."""
    if "_final_decision" not in protocol.__dict__:
        function = None
        criteria = tuple(_plan(protocol).rules)
        if _simple(protocol) and _affordable(protocol, whole(protocol), criteria):
            namespace, lines, names = reading(protocol, whole(protocol), stored=True)
            values = rule_values(protocol, namespace, names, criteria, lines)
            # the common case first: every criterion met (an exclusion's rule known, false)
            met = [f"({v} is not None and not {v})" if e else v for v, e in values]
            fails = [v if e else f"({v} is not None and not {v})" for v, e in values]
            lines.append(f"if {' and '.join(met) or 'True'}:")
            lines.append("    return 'eligible'")
            lines.append(f"if {' or '.join(fails) or 'False'}:")
            lines.append(f"    return {_tuple(_status(v, e) for v, e in values)}")
            lines.append("return 'unresolved'")
            function = function_of(namespace, lines, f"<stored decision of {protocol.id}>")
        protocol.__dict__["_final_decision"] = function
    found: Decision | None = protocol.__dict__["_final_decision"]
    return found


def _tuple(items: Iterable[str]) -> str:
    """Python source of a tuple of the expressions ``items``."""
    found = list(items)
    return f"({', '.join(found)},)" if found else "()"


@dataclass(frozen=True)
class Step:
    """A dialog step's checks, compiled: see :func:`step_checks`."""

    run: Checks  # (answers, screened_on) -> (statuses of the criteria, asked flags of `later`)
    later: dict[str, int]  # question -> its position in the asked flags
    confirming: tuple[int, ...]  # positions of the criteria a failure may rest on an estimate

    def __call__(
        self, answers: Mapping[str, Any], screened_on: date | None
    ) -> tuple[tuple[Status, ...], tuple[bool, ...]] | None:
        """The checks, or None when the general path must decide (the ``confirm`` fix)."""
        found = self.run(answers, screened_on)
        for i in self.confirming:  # (a loop, not any(): this runs at most dialog steps)
            if found[0][i] == "failed":
                return None
        return found


def step_checks(protocol: Protocol, answered: str, need: Demand, later: list[str]) -> Step | None:
    """The statuses of the criteria reading ``answered`` (as :func:`~.evaluation.statuses`
    gives them on :func:`~.demand.part_context` of ``need``, the demand of its checks) and
    whether each of ``later`` is asked (in that context's ``applicable``), from the stored
    answers; None when not compiled (the protocol, or ``need`` not holding every name they
    read). Made once per question and kept on the protocol, as its rules' plan is."""
    steps = protocol.__dict__.setdefault("_stored_steps", {})
    if answered not in steps:
        steps[answered] = _step(protocol, protocol.criteria_reading[answered], need, later)
    found: Step | None = steps[answered]
    return found


def _step(protocol: Protocol, criteria: list[str], need: Demand, later: list[str]) -> Step | None:
    plan = _plan(protocol)
    read = {n for cid in criteria for n in plan.rules[cid].names}
    inside = need.questions | {d.name for d in need.derived} | {SCREENING_DATE}
    conditional = {c.variable for c in need.conditions}
    if not _simple(protocol) or not read <= inside or not set(later) <= conditional:
        return None
    if not _affordable(protocol, need, criteria):
        return None
    run = _compile(protocol, need, tuple(criteria), tuple(later))
    confirming = tuple(i for i, cid in enumerate(criteria) if plan.rules[cid].confirm)
    return Step(run, {v: i for i, v in enumerate(later)}, confirming)


def _simple(protocol: Protocol) -> bool:
    names = [*protocol.questions, *protocol.derived]
    return (
        not protocol.tables
        and all(e.when is None for found in protocol.estimates.values() for e in found)
        and all(_NAME.match(n) for n in names)
    )


def _affordable(protocol: Protocol, need: Demand, criteria: Iterable[str]) -> bool:
    """Whether a function of the rules of ``criteria`` on what ``need`` holds fits in what
    is left of the protocol's :data:`MAX_COMPILED_NODES` (then taken from it)."""
    nodes = protocol.__dict__.get("_node_counts")
    if nodes is None:
        rules = [(("rule", cid), e) for cid, e in protocol.rules.items()]
        conditions = [(("when", v), e) for v, e in protocol.when.items()]
        nodes = {key: sum(1 for _ in walk(e.node)) for key, e in rules + conditions}
        protocol.__dict__["_node_counts"] = nodes
    cost = len(need.questions) + sum(nodes["rule", cid] for cid in criteria)
    cost += sum(nodes["when", c.variable] for c in need.conditions)
    left: int = protocol.__dict__.get("_compile_budget", MAX_COMPILED_NODES)
    if cost > left:
        return False
    protocol.__dict__["_compile_budget"] = left - cost
    return True


class _Unanswered:
    """What a question not answered reads as: one attribute lookup, no test, in the
    generated code (``answers.get(name, _UNANSWERED).value``)."""

    __slots__ = ()
    value = None


_UNANSWERED = _Unanswered()


class _Locals(_Writer):
    """A writer reading names from local variables, not from ``env``."""

    def __init__(self, namespace: dict[str, Any], names: dict[str, str], prefix: str) -> None:
        super().__init__(namespace, "")
        self.names = names  # name -> the local (or literal) holding its value
        self.prefix = prefix  # of the temporaries, so that writers do not share them

    def load(self, name: str) -> str:
        return self.names.get(name, "None")  # absent from the env: unknown

    def temp(self, expression: str) -> str:
        name = f"{self.prefix}{self.count}"
        self.count += 1
        self.lines.append(f"{name} = {expression}")
        return name


def _compile(
    protocol: Protocol,
    need: Demand,
    criteria: tuple[str, ...],
    later: tuple[str, ...],
) -> Any:
    """The checks of ``criteria`` and ``later`` on what ``need`` holds (a :data:`Checks`);
    statuses as ``_polarity`` gives them."""
    namespace, lines, names = reading(protocol, need, stored=True)
    found = rule_statuses(protocol, namespace, names, criteria, lines)
    lines.append(f"return {_tuple(found)}, {_tuple(f'asked_{v}' for v in later)}")
    return function_of(namespace, lines, f"<stored checks of {protocol.id}>")


def function_of(namespace: dict[str, Any], lines: list[str], label: str) -> Any:
    """``def _checks(answers, screened_on)`` with the body ``lines``, compiled in ``namespace``."""
    body = "\n".join(f"    {line}" for line in lines)
    source = f"def _checks(answers, screened_on):\n{body}"
    # names are checked identifiers and constants pass through repr (see compiled.py)
    exec(compile(source, label, "exec"), namespace)
    return namespace["_checks"]


def reading(
    protocol: Protocol, need: Demand, stored: bool, read: bool = True
) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """The namespace and first lines of a function of ``(answers, screened_on)`` putting
    what ``need`` holds in locals, and the local (or literal) holding each name's value.
    ``answers`` are stored answers (``stored``: an :class:`~..session.Answer` by question)
    or values already typed as ``typed_value`` types them (a batch row's); not ``read``:
    the lines putting each typed answer in ``r_<name>`` are the caller's, before these."""
    plan = _plan(protocol)
    namespace = _namespace()
    namespace.update(
        _date=date.fromisoformat,
        _float=float,
        _isfinite=math.isfinite,
        _UNANSWERED=_UNANSWERED,
    )
    lines = ["get = answers.get"] if read else []
    dated = protocol.dated_questions
    # the answers need reads, typed as typed_value types them, in r_<name>
    for variable in protocol.order if read else ():
        if variable not in need.questions:
            continue
        if not stored:
            lines.append(f"r_{variable} = get({variable!r})")
            continue
        lines.append(f"r_{variable} = get({variable!r}, _UNANSWERED).value")
        if variable in dated:
            lines.append(
                f"if r_{variable} is not None and r_{variable} != _NEVER:"
                f" r_{variable} = _date(str(r_{variable}))"
            )
        elif protocol.questions[variable].multiple:
            # only a multi-select answer is kept as a list (a question's checker gives every
            # other one as a scalar; a dated one, ISO text): the typing is left out of the rest
            lines.append(f"if type(r_{variable}) is list: r_{variable} = tuple(r_{variable})")
    # the questions asked: always ones hold their answer; conditional ones None until asked
    names: dict[str, str] = {SCREENING_DATE: "screened_on"}
    names.update((v, f"r_{v}") for v in need.always)
    for condition in need.conditions:
        lines.append(f"q_{condition.variable} = None")
        lines.append(f"asked_{condition.variable} = False")
        names[condition.variable] = f"q_{condition.variable}"
    conditional = {c.variable for c in need.conditions}
    for index, condition in enumerate(need.conditions):
        writer = _Locals(namespace, names, f"c{index}_")
        value = writer.value(protocol.when[condition.variable].node)
        lines += writer.lines
        unknown = [
            f"r_{n} is None" if n in need.always else f"(asked_{n} and q_{n} is None)"
            for n in condition.inputs
            if n in need.always or n in conditional  # others are never asked here
        ]
        why = f"{value} is True"
        if unknown:
            why += f" or ({value} is None and ({' or '.join(unknown)}))"
        lines.append(f"if {why}:")
        lines.append(f"    asked_{condition.variable} = True")
        lines.append(f"    q_{condition.variable} = r_{condition.variable}")
    # the derived values, in the file's order (an input not made yet reads as unknown)
    for index, d in enumerate(need.derived):
        local = f"d_{d.name}"
        lines.append(f"{local} = {names.get(d.measured, 'None') if d.measured else 'None'}")
        estimates = plan.estimates[d.name]
        if estimates:  # no `when`: the first estimate is the one used
            estimate = estimates[0]
            namespace[f"_fn{index}"] = estimate.function
            inputs = [(p, names.get(n, "None")) for p, n in estimate.inputs]
            known = " and ".join(f"{v} is not None" for _, v in inputs) or "True"
            if not all(p.isidentifier() for p, _ in inputs):
                raise ValueError(f"not a parameter name: {inputs!r}")
            given = ", ".join(f"{p}={v}" for p, v in inputs)  # the calculator's own names
            # _calculate, written out (this runs at most dialog steps): a calculator refusing
            # its inputs, or a result that is not a finite number, gives no estimate
            lines.append(f"if {local} is None and {known}:")
            lines.append("    try:")
            lines.append(f"        {local} = _float(_fn{index}({given}))")
            lines.append("    except (ArithmeticError, ValueError, TypeError):")
            lines.append(f"        {local} = None")
            lines.append(f"    if {local} is not None and not _isfinite({local}):")
            lines.append(f"        {local} = None")
        names[d.name] = local
    return namespace, lines, names


def rule_statuses(
    protocol: Protocol,
    namespace: dict[str, Any],
    names: dict[str, str],
    criteria: Iterable[str],
    lines: list[str],
    prefix: str = "t",
) -> list[str]:
    """An expression of each criterion's status (as ``_polarity`` gives it) on the locals
    ``names`` gives; the lines computing them are added to ``lines``."""
    return [
        _status(v, e) for v, e in rule_values(protocol, namespace, names, criteria, lines, prefix)
    ]


def _status(value: str, excludes: bool) -> str:
    """The status (as ``_polarity`` gives it) of a criterion whose rule's value is ``value``."""
    yes, no = ("'failed'", "'met'") if excludes else ("'met'", "'failed'")
    return f"('unknown' if {value} is None else ({yes} if {value} else {no}))"


def rule_values(
    protocol: Protocol,
    namespace: dict[str, Any],
    names: dict[str, str],
    criteria: Iterable[str],
    lines: list[str],
    prefix: str = "t",
) -> list[tuple[str, bool]]:
    """An expression of each criterion's rule value (None: unknown), a local or a constant,
    and whether the criterion excludes; the lines computing them are added to ``lines``."""
    plan = _plan(protocol)
    writer = _Locals(namespace, names, prefix)
    results = []
    for cid in criteria:
        results.append((writer.value(protocol.rules[cid].node), plan.rules[cid].exclusion))
    lines += writer.lines
    return results
