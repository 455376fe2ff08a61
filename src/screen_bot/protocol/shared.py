"""Shared variables: a name used by several protocols means the same thing in each.

An ``all`` screening asks a shared question once and every protocol reads the answer,
so the files must agree on what the answer is: its type (and for dates whether it is a
past or a planned date), its unit, its choices (their order, and whether several may be
chosen), and its range. Wording, help, plausibility limits and the condition under which
it is asked may differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .loader import Problem
from .model import Protocol
from .schema import Question
from .sets import order_conflicts, place


def _meaning(question: Question) -> dict[str, Any]:
    """What an answer to the question is, aspect by aspect (None: not applicable)."""
    choice = question.type == "choice"
    return {
        "type": question.type,
        "planned date (future)": question.future if question.type == "date" else None,
        "unit": question.unit,
        "choices": question.choices if choice else None,
        "ordered": question.ordered if choice else None,
        "multiple": question.multiple if choice else None,
        "min": question.min,
        "max": question.max,
    }


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def conflicts(protocols: Sequence[Protocol]) -> list[Problem]:
    """Every shared variable defined differently, as a problem at the later definition
    naming the earlier one (file:line each) and the aspects that differ; then every set
    of conditions that need opposite question orders in different files."""
    first: dict[str, Protocol] = {}
    problems: list[Problem] = []
    for protocol in protocols:
        for question in protocol.spec.questions:
            variable = question.variable
            earlier = first.setdefault(variable, protocol)
            if earlier is protocol:
                continue
            theirs = _meaning(earlier.questions[variable])
            ours = _meaning(question)
            differ = [aspect for aspect in ours if ours[aspect] != theirs[aspect]]
            if not differ:
                continue
            detail = "; ".join(
                f"{aspect} {_shown(ours[aspect])} here, {_shown(theirs[aspect])} there"
                for aspect in differ
            )
            problems.append(
                Problem(
                    str(protocol.path),
                    protocol.lines.get(variable),
                    f"variable '{variable}' is shared with {earlier.id} "
                    f"({place(earlier, variable)}) but means something else: {detail}",
                    f"give '{variable}' the same {', '.join(differ)} in both files, or "
                    "rename it in one of them if the two protocols mean different things",
                )
            )
    return problems + order_conflicts(protocols)
