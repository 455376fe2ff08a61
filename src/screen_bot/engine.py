"""The dialog: one ``transitions`` Machine per protocol, shared by every session.

The pydantic :class:`Session` holds the data; a throw-away holder carries the machine's
``state`` while an event runs (transitions sets attributes on its model, which pydantic
refuses), so sessions cost no machine of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from transitions import EventData, Machine

from .answers import check_value, parse_text
from .protocol import Protocol
from .protocol.schema import Question
from .rules.dates import NEVER
from .rules.evaluation import Context, applicable_questions, context, status_of_each, statuses
from .session import Answer, Pending, Session, utc_now
from .verdict import Verdict, build, decide_statuses, unusual

END_STATES = ("not_eligible", "unresolved", "eligible")


class _Holder:
    """The transitions model while one event runs: a state and the session it belongs to."""

    __slots__ = ("state", "session", "answered", "protocol", "_context", "_failed")

    def __init__(self, session: Session, protocol: Protocol, answered: str | None = None) -> None:
        self.state = session.state
        self.session = session
        self.answered = answered
        self.protocol = protocol
        self._context: Context | None = None
        self._failed: bool | None = None

    def context(self) -> Context:
        """The answers as the rules see them; made once per event (they do not change in it)."""
        if self._context is None:
            values = typed_values(self.protocol, self.session)
            self._context = context(self.protocol, values, self.session.screened_on)
        return self._context

    def failed(self) -> bool:
        """Whether the answer just given makes a criterion fail (once per event)."""
        if self._failed is None:
            reading = self.protocol.criteria_reading.get(self.answered or "", [])
            self._failed = "failed" in statuses(self.protocol, self.context(), reading)
        return self._failed


def _holder(event: EventData) -> _Holder:
    return cast(_Holder, event.model)  # transitions types its model as object


@dataclass(frozen=True)
class _Asked:
    """Condition: the question is applicable given the answers so far."""

    protocol: Protocol
    variable: str

    @property
    def __name__(self) -> str:  # shown by transitions' diagrams
        return f"asked when {self.protocol.spec.questions[self._index].when}"

    @property
    def _index(self) -> int:
        return self.protocol.order.index(self.variable)

    def __call__(self, event: EventData) -> bool:
        return self.variable in _holder(event).context().applicable


@dataclass(frozen=True)
class _Failed:
    """Condition: the answer just given makes a criterion fail (early exit)."""

    protocol: Protocol
    __name__ = "a criterion failed"

    def __call__(self, event: EventData) -> bool:
        return _holder(event).failed()


@dataclass(frozen=True)
class _Unresolved:
    protocol: Protocol
    __name__ = "an answer is unknown"

    def __call__(self, event: EventData) -> bool:
        found = status_of_each(self.protocol, _holder(event).context()).values()
        return decide_statuses(found) == "unresolved"


class Engine:
    """Runs sessions of one protocol. Methods change the session they are given."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.states = [*protocol.order, *END_STATES]
        self.transitions = self._transitions()
        self.machine = Machine(
            model=None,
            states=self.states,
            transitions=self.transitions,
            initial=protocol.order[0],
            send_event=True,
            auto_transitions=False,
        )

    def _transitions(self) -> list[dict[str, Any]]:
        """From each question: on to the next question asked (or an end) unless the answer
        made a criterion fail; then, as the fallback, to not_eligible (early exit). Trying
        the common way first makes an answer one transition, not two."""
        failed, unresolved = _Failed(self.protocol), _Unresolved(self.protocol)
        order = self.protocol.order
        transitions: list[dict[str, Any]] = []

        def on(source: str, dest: str, **conditions: Any) -> None:
            transitions.append(
                {"trigger": "next", "source": source, "dest": dest, "unless": [failed]} | conditions
            )

        for index, variable in enumerate(order):
            for later in order[index + 1 :]:
                if later in self.protocol.when:
                    on(variable, later, conditions=[_Asked(self.protocol, later)])
                else:
                    on(variable, later)
                    break
            else:
                on(variable, "unresolved", conditions=[unresolved])
                on(variable, "eligible")
            exit_ = {"trigger": "next", "source": variable, "dest": "not_eligible"}
            transitions.append(exit_ | {"conditions": [failed]})  # (failed is known by now)
        transitions.append({"trigger": "restart", "source": "*", "dest": order[0]})
        return transitions

    def _fire(self, trigger: str, session: Session, answered: str | None = None) -> None:
        holder = _Holder(session, self.protocol, answered)
        self.machine.events[trigger].trigger(holder)
        session.state = holder.state

    # -- sessions ---------------------------------------------------------------------------

    def start(self, referral: str | None = None, screened_on: date | None = None) -> Session:
        session = Session(
            protocol_id=self.protocol.id,
            protocol_version=self.protocol.version,
            protocol_sha256=self.protocol.sha256,
            referral=referral,
            state=self.protocol.order[0],
        )
        if screened_on is not None:
            session.screened_on = screened_on
        return session

    def finished(self, session: Session) -> bool:
        return session.state in END_STATES

    def question(self, session: Session) -> Question | None:
        return self.protocol.questions.get(session.state)

    def progress(self, session: Session) -> tuple[int, int]:
        """(number of the current question, questions in this screening as far as known)."""
        if self.finished(session):
            return len(session.history), len(session.history)
        applicable = applicable_questions(
            self.protocol, typed_values(self.protocol, session), session.screened_on
        )
        position = self.protocol.order.index(session.state)
        remaining = sum(1 for v in self.protocol.order[position + 1 :] if v in applicable)
        return len(session.history) + 1, len(session.history) + 1 + remaining

    def answer(
        self,
        session: Session,
        value: Any,
        now: datetime | None = None,
        *,
        confirmed: bool = False,
    ) -> str:
        """Record an answer (``None`` = unknown) and move to the next question.

        A value outside the question's plausibility limits is not recorded unless
        ``confirmed`` (or given again): it waits in ``session.pending`` and the reason is
        returned ("" when the answer was recorded).
        """
        question = self.question(session)
        if question is None:
            raise RuntimeError("this screening is finished; start a new one or go back")
        value = check_value(question, value, session.screened_on)
        pending, session.pending = session.pending, None
        if pending is not None and pending.variable == question.variable:
            confirmed = confirmed or pending.value == value  # the same value typed again
        why = unusual(question, value) if isinstance(value, int | float) else ""
        if why and not confirmed and not isinstance(value, bool):
            session.pending = Pending(variable=question.variable, value=value)
            self._changed(session, now)
            return why
        session.answers[question.variable] = Answer(value=stored(value), at=now or utc_now())
        session.history.append(question.variable)
        self._changed(session, now)
        self._fire("next", session, answered=question.variable)
        return ""

    def confirm(self, session: Session, now: datetime | None = None) -> bool:
        """Record the unusual value waiting for confirmation; False when there is none."""
        pending = session.pending
        if pending is None or pending.variable != session.state:
            return False
        self.answer(session, pending.value, now, confirmed=True)
        return True

    def answer_text(self, session: Session, text: str, now: datetime | None = None) -> str:
        """Parse what the user typed for the current question, then :meth:`answer`."""
        question = self.question(session)
        if question is None:
            raise RuntimeError("this screening is finished; start a new one or go back")
        return self.answer(session, parse_text(question, text, session.screened_on), now)

    def skip(self, session: Session, now: datetime | None = None) -> None:
        self.answer(session, None, now)

    def back(self, session: Session, now: datetime | None = None) -> bool:
        """Return to the question answered last (the one the user saw), forgetting its answer."""
        if session.pending is not None:  # back from "confirm this value" is the question itself
            session.pending = None
            self._changed(session, now)
            return True
        if not session.history:
            return False
        previous = session.history.pop()
        del session.answers[previous]
        session.state = previous
        self._changed(session, now)
        return True

    def restart(self, session: Session, now: datetime | None = None) -> None:
        session.pending = None
        session.answers.clear()
        session.history.clear()
        self._fire("restart", session)
        self._changed(session, now)

    def verdict(self, session: Session) -> Verdict:
        return build(
            self.protocol,
            typed_values(self.protocol, session),
            referral=session.referral,
            screened_on=session.screened_on,
        )

    @staticmethod
    def _changed(session: Session, now: datetime | None) -> None:
        session.step += 1
        session.updated_at = now or utc_now()


def stored(value: Any) -> Any:
    """An answer in the form a session keeps (JSON): dates as ISO text, sets as lists."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def typed_values(protocol: Protocol, session: Session) -> dict[str, Any]:
    """The session's answers as the rules read them: dates as dates, sets as tuples."""
    values: dict[str, Any] = {v: a.value for v, a in session.answers.items()}
    for variable in protocol.dated_questions.intersection(values):
        value = values[variable]
        if value is not None and value != NEVER:
            values[variable] = date.fromisoformat(str(value))
    for variable, value in values.items():
        if type(value) is list:
            values[variable] = tuple(value)
    return values


def loggable_answers(protocol: Protocol, values: dict[str, Any]) -> dict[str, Any]:
    """Answers as the screening log keeps them: JSON values, and never a free-text answer."""
    return {v: stored(x) for v, x in values.items() if v not in protocol.text_questions}
