"""One screening against a set of protocols (``--protocol all``): one Machine for the set.

The states are the set's questions in its merged order (:mod:`.protocol.sets`) and one
end state. After each answer the dialog moves to the next question that some protocol
still in the running asks: a protocol that has definitely failed (no answer still to
come can undo it) contributes no more questions, and one whose remaining questions are
not asked is done. The screening ends when no protocol has a question left; each
protocol then gets its own verdict, built from the answers it reads, exactly as if it
had been screened alone (a property test checks that the verdicts agree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from transitions import EventData, Machine

from .engine import (
    BaseEngine,
    Finding,
    lasting_reasons,
    loggable_answers,
    still_to_come,
    typed_values,
)
from .protocol import Protocol
from .protocol.schema import Question
from .protocol.sets import ProtocolSet
from .rules.evaluation import (
    Context,
    applicable_questions,
    context,
    lasting_failures,
    may_be_asked,
    statuses,
)
from .session import Session
from .verdict import Verdict, rank, row_fields

SCREENED = "screened"  # the end state: every protocol has its verdict


class _SetHolder:
    """The transitions model while one event runs, with the members' contexts made once."""

    __slots__ = ("state", "session", "answered", "protocols", "_values", "_contexts", "_live")

    def __init__(self, session: Session, protocols: ProtocolSet, answered: str | None) -> None:
        self.state = session.state
        self.session = session
        self.answered = answered
        self.protocols = protocols
        self._values: dict[str, Any] | None = None
        self._contexts: dict[str, Context] | None = None
        self._live: tuple[Protocol, ...] | None = None

    def values(self) -> dict[str, Any]:
        if self._values is None:
            self._values = typed_values(self.protocols, self.session)
        return self._values

    def contexts(self) -> dict[str, Context]:
        if self._contexts is None:
            values, on = self.values(), self.session.screened_on
            self._contexts = {m.id: context(m, values, on) for m in self.protocols.members}
        return self._contexts

    def live(self) -> tuple[Protocol, ...]:
        """The members that have not definitely failed on the answers so far: a failure
        that an answer still to come may undo (a rule reading known() of a question still to
        come) keeps a member in the running (:func:`~.rules.evaluation.lasting_failures`)."""
        if self._live is None:
            contexts, to_come = self.contexts(), still_to_come(self.protocols.order, self.state)
            self._live = tuple(
                m for m in self.protocols.members if not self._out(m, contexts[m.id], to_come)
            )
        return self._live

    def _out(self, member: Protocol, ctx: Context, to_come: Sequence[str]) -> bool:
        found = statuses(member, ctx)
        if "failed" not in found:
            return False
        failing = [c for c, s in zip(member.criteria, found, strict=True) if s == "failed"]
        return bool(lasting_failures(member, lambda: ctx, self.values(), to_come, failing))

    def asked(self, variable: str) -> bool:
        """Whether a protocol still in the running asks this question now."""
        contexts = self.contexts()
        return any(
            variable in m.questions and variable in contexts[m.id].applicable for m in self.live()
        )

    def askers(self, variable: str) -> list[Protocol]:
        """The protocols still in the running that ask this question now."""
        contexts = self.contexts()
        return [
            m
            for m in self.live()
            if variable in m.questions and variable in contexts[m.id].applicable
        ]


@dataclass(frozen=True)
class _AskedBySome:
    """Condition: a protocol that has not failed asks this question."""

    variable: str

    @property
    def __name__(self) -> str:  # shown by transitions' diagrams
        return "asked by a protocol still in the running"

    def __call__(self, event: EventData) -> bool:
        return cast(_SetHolder, event.model).asked(self.variable)


class SetEngine(BaseEngine[ProtocolSet]):
    """Runs sessions of a protocol set; a session's protocol id is the set's (``all``)."""

    end_states = (SCREENED,)

    def __init__(self, protocols: ProtocolSet) -> None:
        self.protocol = protocols
        order = protocols.order
        self.states = [*order, SCREENED]
        self.transitions = []
        for index, variable in enumerate(order):
            for later in order[index + 1 :]:
                self.transitions.append(
                    {
                        "trigger": "next",
                        "source": variable,
                        "dest": later,
                        "conditions": [_AskedBySome(later)],
                    }
                )
            self.transitions.append({"trigger": "next", "source": variable, "dest": SCREENED})
        self.transitions.append({"trigger": "restart", "source": "*", "dest": order[0]})
        self.machine = Machine(
            model=None,
            states=self.states,
            transitions=self.transitions,
            initial=order[0],
            send_event=True,
            auto_transitions=False,
        )

    def start(
        self,
        referral: str | None = None,
        screened_on: date | None = None,
        prefilled: Mapping[str, Any] | None = None,
    ) -> Session:
        """A new session at question 1 that keeps which protocols the set holds now."""
        session = super().start(referral, screened_on, prefilled)
        session.protocol_members = [member.id for member in self.protocol.members]
        return session

    def _holder(self, session: Session, answered: str | None) -> _SetHolder:
        return _SetHolder(session, self.protocol, answered)

    def question(self, session: Session) -> Question | None:
        """The current question, worded as the first protocol still in the running that asks
        it words it (the meaning is the same in each: ``protocol.shared``); one that no
        longer asks it (its condition false under the answers so far) does not word it."""
        owners = self.protocol.owners.get(session.state, ())
        if len(owners) > 1:
            for member in self._asking(session):
                return member.questions[session.state]
        return self.protocol.questions.get(session.state)

    def criteria_asking(self, session: Session) -> list[str]:
        """The ids of the criteria that read the current question, in the protocols still
        in the running that ask it (a failed protocol's criteria no longer matter)."""
        state = session.state
        return [cid for m in self._asking(session) for cid in m.criteria_reading.get(state, [])]

    def _asking(self, session: Session) -> list[Protocol]:
        """The protocols that ask the current question now (else those still in the running
        that have it, as before a condition is decided)."""
        holder = self._holder(session, None)
        return holder.askers(session.state) or [
            m for m in holder.live() if session.state in m.questions
        ]

    def _askable(self, session: Session) -> Callable[[str], bool]:
        return self._holder(session, None).asked

    def _may_ask(self, session: Session) -> Callable[[str], bool]:
        """Whether a protocol still in the running may still ask the question."""
        to_come = still_to_come(self.protocol.order, session.state)
        values = typed_values(self.protocol, session)
        found = frozenset().union(
            *(
                may_be_asked(m, values, to_come, session.screened_on)
                for m in self._holder(session, None).live()
            )
        )
        return found.__contains__

    def _asked_under(self, values: dict[str, Any], screened_on: date) -> frozenset[str]:
        """Asked by some member, in the running or not (each member's own answers)."""
        each = self.protocol.answers_of_each(values)
        return frozenset().union(*(applicable_questions(m, own, screened_on) for m, own in each))

    def live(self, session: Session) -> list[str]:
        """The ids of the protocols still in the running."""
        return [m.id for m in self._holder(session, None).live()]

    def findings(self, session: Session) -> list[Finding]:
        """Every member's verdict on the answers it reads, ranked; a failure that a question
        not asked (its protocol out of the running) could undo is no reason
        (:func:`~.engine.lasting_reasons`)."""
        values, on = typed_values(self.protocol, session), session.screened_on
        found = fields_of_each(self.protocol, values, referral=session.referral, screened_on=on)
        return [
            Finding(
                Verdict(**lasting_reasons(member, fields, own, on)), loggable_answers(member, own)
            )
            for member, fields, own in found  # (the reasons left out change no verdict's rank)
        ]


def fields_of_each(
    protocols: ProtocolSet,
    values: dict[str, Any],
    *,
    referral: str | None = None,
    screened_on: date | None = None,
) -> list[tuple[Protocol, dict[str, Any], dict[str, Any]]]:
    """Every member's verdict on the answers it reads (typed values), as plain data (the
    member, its verdict's fields, the answers it read), ranked: eligible, then unresolved by
    number of open items, then not eligible (the batch writes the fields without models)."""
    found = [
        (member, row_fields(member, own, referral=referral, screened_on=screened_on), own)
        for member, own in protocols.answers_of_each(values)
    ]
    return sorted(found, key=lambda f: rank(f[1]["verdict"], f[1]["open_items"]))
