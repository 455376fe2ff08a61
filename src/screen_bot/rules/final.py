"""Every criterion's status straight from a session's stored answers, compiled per protocol.

A dialog's last answer judges every criterion on the whole context (its end state is the
verdict). :func:`~.evaluation.each_status` of :func:`~.evaluation.context` builds the env
as a dict, typed answers first, then decides each conditional question, then the derived
values, then runs the rules reading names from the dict. Here one generated function
does the same in local variables: each stored answer typed as ``typed_value`` types it,
each conditional question decided in dialog order as :func:`~.evaluation.grown` decides
it (a question not asked reads as unknown), each derived value as
:func:`~.evaluation.derive` makes it, then every rule, as
:func:`~.compiled.compile_statuses` writes them, on those locals.

Only protocols whose derived values have no ``when`` and that have no tables are compiled
(:func:`final_statuses` gives None for others, which keep the general path). The statuses
are those before the ``confirm`` fix: a caller seeing "failed" with confirming criteria
takes the general path (it needs the estimates). Tests compare it with the general path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from .compiled import _namespace, _Writer
from .evaluation import Status, _calculate, _plan
from .expressions import SCREENING_DATE

if TYPE_CHECKING:
    from ..protocol.model import Protocol

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
Final = Callable[[Mapping[str, Any], date | None], tuple[Status, ...]]


def stored_statuses(
    protocol: Protocol, answers: Mapping[str, Any], screened_on: date | None
) -> tuple[Status, ...] | None:
    """:func:`~.evaluation.each_status` on the whole context of the stored ``answers``
    (Answer by question); None when the general path must give it (the protocol is not
    compiled, or a failure may rest only on an estimate)."""
    function = final_statuses(protocol)
    if function is None:
        return None
    found: tuple[Status, ...] = function(answers, screened_on)
    if "failed" in found and _plan(protocol).confirming:
        return None
    return found


def final_statuses(protocol: Protocol) -> Final | None:
    """``f(answers, screened_on)``: the statuses ``together`` gives on the whole context of
    the stored ``answers`` (a dict of Answer); None when the protocol is not compiled.
    Made once and kept on the protocol, as its rules' plan is."""
    if "_final_statuses" not in protocol.__dict__:
        protocol.__dict__["_final_statuses"] = _compile(protocol) if _simple(protocol) else None
    found: Final | None = protocol.__dict__["_final_statuses"]
    return found


def _simple(protocol: Protocol) -> bool:
    names = [*protocol.questions, *protocol.derived]
    return (
        not protocol.tables
        and all(e.when is None for found in protocol.estimates.values() for e in found)
        and all(_NAME.match(n) for n in names)
    )


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


def _compile(protocol: Protocol) -> Final:
    plan = _plan(protocol)
    namespace = _namespace()
    namespace.update(
        _date=date.fromisoformat,
        _calculate=_calculate,
        _INCLUSION={True: "met", False: "failed", None: "unknown"},
        _EXCLUSION={True: "failed", False: "met", None: "unknown"},
    )
    lines = ["get = answers.get"]
    dated = protocol.dated_questions
    # every stored answer typed (as typed_values types them all), kept in r_<name>
    for variable in protocol.order:
        lines.append(f"a = get({variable!r})")
        lines.append(f"r_{variable} = None if a is None else a.value")
        if variable in dated:
            lines.append(
                f"if r_{variable} is not None and r_{variable} != _NEVER:"
                f" r_{variable} = _date(str(r_{variable}))"
            )
            lines.append(f"elif type(r_{variable}) is list: r_{variable} = tuple(r_{variable})")
        else:
            lines.append(f"if type(r_{variable}) is list: r_{variable} = tuple(r_{variable})")
    # the questions asked: always ones hold their answer; conditional ones None until asked
    names: dict[str, str] = {SCREENING_DATE: "screened_on"}
    for variable in protocol.order:
        if variable in plan.always:
            names[variable] = f"r_{variable}"
        else:
            lines.append(f"q_{variable} = None")
            lines.append(f"asked_{variable} = False")
            names[variable] = f"q_{variable}"
    for index, condition in enumerate(plan.conditional):
        writer = _Locals(namespace, names, f"c{index}_")
        value = writer.value(protocol.when[condition.variable].node)
        lines += writer.lines
        unknown = [
            f"r_{n} is None" if n in plan.always else f"(asked_{n} and q_{n} is None)"
            for n in condition.inputs
        ]
        why = f"{value} is True"
        if unknown:
            why += f" or ({value} is None and ({' or '.join(unknown)}))"
        lines.append(f"if {why}:")
        lines.append(f"    asked_{condition.variable} = True")
        lines.append(f"    q_{condition.variable} = r_{condition.variable}")
    # the derived values, in the file's order (an input not made yet reads as unknown)
    for index, d in enumerate(protocol.spec.derived):
        local = f"d_{d.name}"
        lines.append(f"{local} = {names.get(d.measured, 'None') if d.measured else 'None'}")
        estimates = plan.estimates[d.name]
        if estimates:  # no `when`: the first estimate is the one used
            estimate = estimates[0]
            namespace[f"_fn{index}"] = estimate.function
            inputs = [(p, names.get(n, "None")) for p, n in estimate.inputs]
            known = " and ".join(f"{v} is not None" for _, v in inputs) or "True"
            given = ", ".join(f"{p!r}: {v}" for p, v in inputs)
            lines.append(f"if {local} is None and {known}:")
            lines.append(f"    {local} = _calculate(_fn{index}, {{{given}}})")
        names[d.name] = local
    # every rule on the locals, as compile_statuses writes them
    writer = _Locals(namespace, names, "t")
    results = [
        f"{'_EXCLUSION' if rule.exclusion else '_INCLUSION'}[{writer.value(rule_node)}]"
        for rule_node, rule in ((protocol.rules[cid].node, r) for cid, r in plan.rules.items())
    ]
    lines += writer.lines
    lines.append(f"return ({', '.join(results)},)")
    body = "\n".join(f"    {line}" for line in lines)
    source = f"def _final(answers, screened_on):\n{body}"
    # names are checked identifiers and constants pass through repr (see compiled.py)
    exec(compile(source, f"<last answer of {protocol.id}>", "exec"), namespace)
    function: Final = namespace["_final"]
    return function
