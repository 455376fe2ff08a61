"""A set of protocols screened together (``--protocol all``): one question list for all.

A variable shared by name means the same in every file (``validate`` checks it, see
:mod:`.shared`), so its question is asked once and its answer read by every protocol.

**The question order.** Each protocol's own order puts its knock-outs first; the set
merges those orders and ranks each question by how many protocols it can end:

1. a question *can end* a protocol when some answer to it, with every other answer still
   unknown, makes one of that protocol's criteria fail (``age`` ends both shipped
   protocols; ``prior_therapies`` ends ctl019-rr-ball only; ``sex`` ends none);
2. questions that can end more protocols come first; among equals, the one placed
   earlier in its own protocol (by relative position: question 3 of 40 before question
   10 of 50) comes first;
3. a question comes after every question its condition reads, in any protocol (so a
   condition is decided the way it is when that protocol is screened alone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from ..errors import ScreenBotError
from ..rules.dates import NEVER
from ..rules.evaluation import context, statuses
from ..rules.expressions import SCREENING_DATE
from .loader import Problem
from .model import Protocol
from .schema import Checklist, Question

ALL = "all"  # the protocol id that names the set of every protocol
# The day knock-outs are tried on; any fixed day gives the same ranking for the windows
# of real protocols (a date is tried on that day and a century away).
_TRIED_ON = date(2000, 1, 1)
_CENTURY = timedelta(days=36525)


@dataclass(frozen=True)
class LeftOut:
    """What a screening of every protocol knows of the protocols it leaves out (their dialog
    files are broken): the variables those files declare, and the names of the files whose
    YAML could not be read at all (their variables are not known)."""

    variables: frozenset[str] = frozenset()
    unread: tuple[str, ...] = ()


class ProtocolSetError(ScreenBotError):
    """The protocols cannot be screened together (their conditions need opposite orders)."""


@dataclass(frozen=True)
class ProtocolSet:
    """Several protocols screened in one dialog; shaped like a :class:`Protocol` for it."""

    members: tuple[Protocol, ...]

    id = ALL

    @property
    def version(self) -> str:
        return " + ".join(f"{m.id} {m.version}" for m in self.members)

    @cached_property
    def sha256(self) -> str:
        """Changes when any member file changes, or a member is added or removed."""
        joined = "\n".join(f"{m.id}:{m.sha256}" for m in self.members)
        return hashlib.sha256(joined.encode()).hexdigest()

    @property
    def title(self) -> str:
        return f"All protocols: {', '.join(m.id for m in self.members)}"

    @cached_property
    def questions(self) -> dict[str, Question]:
        """Every variable once, as the first member that asks it words it."""
        found: dict[str, Question] = {}
        for member in self.members:
            for variable, question in member.questions.items():
                found.setdefault(variable, question)
        return found

    @cached_property
    def owners(self) -> dict[str, tuple[Protocol, ...]]:
        """For each variable, the members that ask it."""
        return {v: tuple(m for m in self.members if v in m.questions) for v in self.questions}

    @cached_property
    def order(self) -> list[str]:
        return merged_order(self.members)

    @cached_property
    def criteria_reading(self) -> dict[str, list[str]]:
        return {
            v: [cid for m in self.owners[v] for cid in m.criteria_reading[v]]
            for v in self.questions
        }

    @cached_property
    def text_questions(self) -> frozenset[str]:
        return frozenset().union(*(m.text_questions for m in self.members))

    @cached_property
    def dated_questions(self) -> frozenset[str]:
        return frozenset().union(*(m.dated_questions for m in self.members))

    @cached_property
    def checklists(self) -> dict[str, Checklist]:
        """The members' checklists whose items follow each other in the set's order (the
        others are asked one question at a time)."""
        order = self.order
        found: dict[str, Checklist] = {}
        for member in self.members:
            for checklist in member.spec.checklists:
                if any(item in found for item in checklist.items):
                    continue
                places = [order.index(item) for item in checklist.items]
                if places == list(range(places[0], places[0] + len(places))):
                    found.update(dict.fromkeys(checklist.items, checklist))
        return found

    def answers_of_each(self, values: dict[str, Any]) -> list[tuple[Protocol, dict[str, Any]]]:
        """Each member with the answers it reads (its own variables only, in ``values``'
        order), in one pass over ``values``: a row against 20 protocols holds hundreds."""
        owns: list[dict[str, Any]] = [{} for _ in self.members]
        readers = self._readers
        for variable, value in values.items():
            for index in readers.get(variable, ()):
                owns[index][variable] = value
        return list(zip(self.members, owns, strict=True))

    @cached_property
    def _readers(self) -> dict[str, tuple[int, ...]]:
        """Each variable with the positions of the members that ask it."""
        found: dict[str, list[int]] = {}
        for index, member in enumerate(self.members):
            for variable in member.questions:
                found.setdefault(variable, []).append(index)
        return {variable: tuple(indexes) for variable, indexes in found.items()}


def merged_order(members: Sequence[Protocol]) -> list[str]:
    """The question order of a set: see the module docstring."""
    ends: dict[str, int] = {}
    position: dict[str, tuple[float, int]] = {}
    needs: dict[str, set[str]] = {}
    for rank, member in enumerate(members):
        for index, variable in enumerate(member.order):
            ends[variable] = ends.get(variable, 0) + can_end(member, variable)
            place = (index / len(member.order), rank)
            position[variable] = min(position.get(variable, place), place)
            needs.setdefault(variable, set()).update(_condition_reads(member, variable))
    ranked = sorted(ends, key=lambda v: (-ends[v], position[v]))
    order: list[str] = []
    placed: set[str] = set()
    while ranked:
        ready = next((v for v in ranked if needs[v] <= placed), None)
        if ready is None:
            blocked = ", ".join(
                f"{v} (reads {', '.join(sorted(needs[v] - placed))})" for v in ranked
            )
            raise ProtocolSetError(
                "these protocols cannot be screened together: their conditions need "
                f"opposite question orders: {blocked}"
            )
        ranked.remove(ready)
        order.append(ready)
        placed.add(ready)
    return order


def order_conflicts(members: Sequence[Protocol]) -> list[Problem]:
    """Conditions that need opposite question orders in different files (which would make
    :func:`merged_order` refuse the set): one problem per cycle, naming each place."""
    needs: dict[str, dict[str, Protocol]] = {}  # variable -> what it reads -> whose condition
    for member in members:
        for variable in member.order:
            for read in sorted(_condition_reads(member, variable)):
                needs.setdefault(variable, {}).setdefault(read, member)
    problems: list[Problem] = []
    reported: set[str] = set()
    for cycle in _cycles(needs):
        if reported & set(cycle):
            continue  # another cycle through the same questions: one report is enough
        reported |= set(cycle)
        steps = [(v, cycle[(i + 1) % len(cycle)]) for i, v in enumerate(cycle)]
        places = [
            f"{needs[v][u].id} ({place(needs[v][u], v)}) asks '{v}' after '{u}', as its "
            f"condition reads '{u}'"
            for v, u in steps
        ]
        first, after = steps[0]
        owner = needs[first][after]
        problems.append(
            Problem(
                str(owner.path),
                owner.lines.get(first),
                "these protocols cannot be screened together (all): their conditions need "
                f"opposite question orders: {'; '.join(places)}",
                "an 'all' screening asks each question once, so the files must agree on the "
                "order: drop one of these reads from its condition, or rename the variable in "
                "one file if the two protocols mean different things",
            )
        )
    return problems


def _cycles(needs: dict[str, dict[str, Protocol]]) -> list[list[str]]:
    """A cycle (v reads the next, the last reads the first) in each part of ``needs``
    that has one: a depth-first search reports each edge back to its own path."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[list[str]] = []
    for start in needs:
        if start in state:
            continue
        path: list[str] = [start]
        todo = [iter(needs.get(start, {}))]
        state[start] = 1
        while todo:
            following = next(todo[-1], None)
            if following is None:
                state[path.pop()] = 2
                todo.pop()
            elif state.get(following) == 1:
                found.append(path[path.index(following) :])
            elif following not in state:
                state[following] = 1
                path.append(following)
                todo.append(iter(needs.get(following, {})))
    return found


def place(protocol: Protocol, variable: str) -> str:
    """``file:line`` of the question ``variable`` in ``protocol``."""
    line = protocol.lines.get(variable)
    return f"{protocol.path}:{line}" if line else str(protocol.path)


def _condition_reads(member: Protocol, variable: str) -> set[str]:
    condition = member.when.get(variable)
    if condition is None:
        return set()
    return {
        v
        for name in condition.names
        if name != SCREENING_DATE
        for v in member.inputs_of(name)
        if v != variable
    }


def can_end(member: Protocol, variable: str) -> bool:
    """Whether some answer to ``variable`` alone makes a criterion of ``member`` fail."""
    reading = member.criteria_reading[variable]
    if not reading:
        return False
    for value in _tried_values(member.questions[variable]):
        ctx = context(member, {variable: value}, _TRIED_ON)
        if "failed" in statuses(member, ctx, reading):
            return True
    return False


def _tried_values(question: Question) -> list[Any]:
    kind = question.type
    if kind == "yes_no":
        return [True, False]
    if kind == "choice" and question.multiple:
        return [(), *((c,) for c in question.choices or [])]
    if kind == "choice":
        return list(question.choices or [])
    if kind in ("int", "number"):
        return [question.min, question.max]
    if kind in ("date", "date_or_none"):
        away = _TRIED_ON + _CENTURY if question.future else _TRIED_ON - _CENTURY
        return [_TRIED_ON, away] + ([NEVER] if kind == "date_or_none" else [])
    return []  # free text is never read by a rule
