"""The dialog: one ``transitions`` Machine per protocol, shared by every session.

The pydantic :class:`Session` holds the data; a throw-away holder carries the machine's
``state`` while an event runs (transitions sets attributes on its model, which pydantic
refuses), so sessions cost no machine of their own. :class:`BaseEngine` holds what every
dialog does with a session (answer, confirm, back, restart); :class:`Engine` runs one
protocol, ``set_engine.SetEngine`` a set of them (``--protocol all``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any, Generic, TypeVar
from typing import Protocol as Shaped

from pydantic import BaseModel
from transitions import EventData, Machine

from .answers import Checker, checker, parse_text
from .protocol import Protocol
from .protocol.schema import Checklist, Question
from .rules.dates import NEVER
from .rules.demand import Demand, demand, whole
from .rules.evaluation import (
    Context,
    Status,
    applicable_questions,
    context,
    derive,
    each_status,
    grown,
    lasting_failures,
    may_be_asked,
    may_not_last,
    positions,
    settled_by,
    statuses,
)
from .rules.stored import Step, final_decision, step_checks, stored_decision
from .session import Answer, Draft, Pending, Refusal, Session, utc_now
from .verdict import Verdict, decide_statuses, fields_of, unusual

END_STATES = ("not_eligible", "unresolved", "eligible")


class Screened(Shaped):
    """What an engine runs: one protocol, or a set of them."""

    @property
    def id(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def order(self) -> list[str]: ...
    @property
    def questions(self) -> dict[str, Question]: ...
    @property
    def criteria_reading(self) -> dict[str, list[str]]: ...
    @property
    def text_questions(self) -> frozenset[str]: ...
    @property
    def dated_questions(self) -> frozenset[str]: ...
    @property
    def checklists(self) -> dict[str, Checklist]: ...


S = TypeVar("S", bound=Screened)


@dataclass(frozen=True)
class Finding:
    """One protocol's verdict at the end of a screening, and the answers its log keeps."""

    verdict: Verdict
    answers: dict[str, Any]


class _Holder:
    """The transitions model while one event runs: a state and the session it belongs to.

    ``need`` (None: always the whole context) is what the event's checks read, the final
    verdict's aside: the rules reading the question answered and the conditions of the
    questions that may come next (a :class:`Demand`); :meth:`part` evaluates only that.
    With ``need``, the checks run straight on the stored answers where the protocol is
    compiled for it (``step``; at the last question :func:`~.rules.stored.stored_decision`,
    the verdict, with every status made only when a criterion fails), and contexts are
    made from the stored answers in one pass
    (:func:`stored_context`); without, the plain way (:func:`typed_values`, then
    :func:`~.rules.evaluation.context`), which the tests compare it with. ``settled``: the
    criteria not reading the question answered whose lasting failure its answer may decide
    (:func:`~.rules.evaluation.settled_by`), checked for the early exit too.
    """

    __slots__ = (
        "state",
        "session",
        "answered",
        "protocol",
        "need",
        "step",
        "settled",
        "_checks",
        "_context",
        "_part",
        "_found",
        "_failed",
        "_decided",
    )

    def __init__(
        self,
        session: Session,
        protocol: Protocol,
        answered: str | None = None,
        need: Demand | None = None,
        step: Step | None = None,
        settled: tuple[str, ...] = (),
    ) -> None:
        self.state = session.state
        self.session = session
        self.answered = answered
        self.protocol = protocol
        self.need = need
        self.step = step
        self.settled = settled
        self._checks: tuple[tuple[Status, ...], tuple[bool, ...]] | None = None
        self._context: Context | None = None
        self._part: Context | None = None
        self._found: tuple[Status, ...] | None = None
        self._failed: bool | None = None
        self._decided: str | None = None

    def context(self) -> Context:
        """The answers as the rules see them; made once per event (they do not change in it)."""
        if self._context is None:
            session, protocol = self.session, self.protocol
            if self.need is None:
                values = typed_values(protocol, session)
                self._context = context(protocol, values, session.screened_on)
            else:
                self._context = stored_context(protocol, whole(protocol), session)
        return self._context

    def part(self) -> Context:
        """Enough of the context for ``need``'s names (the whole one when made already)."""
        if self._context is not None or self.need is None:
            return self.context()
        if self._part is None:
            self._part = stored_context(self.protocol, self.need, self.session)
        return self._part

    def checks(self) -> tuple[tuple[Status, ...], tuple[bool, ...]] | None:
        """The step's compiled checks (once per event): the statuses of the criteria reading
        the question answered, and whether each question that may come next is asked; None
        when the general path decides (:meth:`part`)."""
        if self._checks is None and self.step is not None:
            self._checks = self.step(self.session.answers, self.session.screened_on)
            if self._checks is None:
                self.step = None  # the general path decides this event
        return self._checks

    def asks(self, variable: str) -> bool:
        """Whether a question that may come next is asked."""
        checks, step = self.checks(), self.step
        if checks is not None and step is not None:
            return checks[1][step.later[variable]]
        return variable in self.part().applicable

    def found(self) -> tuple[Status, ...]:
        """Every criterion's status, in the dialog file's order (once per event; targeted,
        :meth:`decided` gives them first, compiled where it can)."""
        if self._found is None:
            self._found = each_status(self.protocol, self.context())
        return self._found

    def decided(self) -> str:
        """The verdict every criterion's status gives (:func:`decide_statuses` of
        :meth:`found`), once per event. Targeted, it is compiled from the stored answers
        where it can be (:func:`~.rules.stored.stored_decision`), and the statuses are made
        only when a criterion fails."""
        if self._decided is None:
            if self.need is not None and self._context is None and self._found is None:
                session = self.session
                found = stored_decision(self.protocol, session.answers, session.screened_on)
                if isinstance(found, str):
                    self._decided = found
                    return found
                self._found = each_status(self.protocol, self.context()) if found is None else found
            self._decided = decide_statuses(self.found())
        return self._decided

    def failed(self) -> bool:
        """Whether the answer just given makes a criterion fail, whatever the answers still
        to come (:func:`~.rules.evaluation.lasting_failures`), once per event: the early exit."""
        if self._failed is None:
            failing, protocol = self._failing(), self.protocol
            if not failing or not may_not_last(protocol, failing):
                self._failed = bool(failing)  # (without the typed answers lasting_failures reads)
            else:
                self._failed = bool(
                    lasting_failures(
                        protocol,
                        self.context,
                        typed_values(protocol, self.session),
                        still_to_come(protocol.order, self.state),
                        failing,
                    )
                )
        return self._failed

    def _failing(self) -> list[str]:
        """The criteria that fail on the answers so far, of those reading the answer just
        given and those whose lasting failure it may settle (``settled``)."""
        protocol = self.protocol
        reading = protocol.criteria_reading.get(self.answered or "", [])
        if self._decided in ("eligible", "unresolved") and self._found is None:
            return []  # decided without statuses: no criterion fails
        if self._found is not None and self.need is not None:
            # targeted, at the last question: every status is known already
            at, found = positions(protocol), self._found
            return [cid for cid in (*reading, *self.settled) if found[at[cid]] == "failed"]
        if self.step is not None and (checks := self.checks()) is not None:
            read = checks[0]  # the statuses of `reading`
        else:
            read = tuple(statuses(protocol, self.part(), reading)) if reading else ()
        failing = []
        if "failed" in read:
            failing = [c for c, s in zip(reading, read, strict=True) if s == "failed"]
        if self.settled:
            settled = statuses(protocol, self.context(), list(self.settled))
            failing += [c for c, s in zip(self.settled, settled, strict=True) if s == "failed"]
        return failing


# The conditions: plain functions of the event (they run at every answer), each named as
# transitions' diagrams show it, reading the event's model, the event's _Holder (typed as
# an object by transitions), straight.


def _asked(protocol: Protocol, variable: str) -> Callable[[EventData], bool]:
    """Condition: the question is applicable given the answers so far."""

    def asked(event: EventData) -> bool:
        return event.model.asks(variable)  # type: ignore[attr-defined]

    when = protocol.spec.questions[protocol.order.index(variable)].when
    asked.__name__ = f"asked when {when}"
    return asked


def _failed(event: EventData) -> bool:
    """Condition: the answer just given makes a criterion fail (early exit)."""
    return event.model.failed()  # type: ignore[attr-defined]


def _unresolved(event: EventData) -> bool:
    """Condition: every criterion's status leaves the verdict open."""
    return event.model.decided() == "unresolved"  # type: ignore[attr-defined]


_failed.__name__ = "a criterion failed"
_unresolved.__name__ = "an answer is unknown"


class BaseEngine(Generic[S]):
    """Moves sessions through a shared Machine. Methods change the session they are given.

    A subclass builds ``states``, ``transitions`` and ``machine`` and says which questions
    can still be asked (:meth:`_askable`) and how a finished screening is judged
    (:meth:`findings`).

    **Steps.** A step is what the user answers at once: one question, or the remaining
    items of a checklist (:meth:`step_items`, answered by :meth:`answer_items`). The machine
    still moves one question at a time, so each item is its own answer, read by its own
    rules, with the early exit after each. ``back`` undoes a whole step.

    **Pre-filled answers** (a quick check, ``start(prefilled=...)``) wait in
    ``session.prefilled`` and are applied when the dialog reaches their question
    (:meth:`fill`), exactly as if typed there: a value its question refuses then (a planned
    date past by now) is not used, and the question is asked; a question whose condition
    rules it out never uses its value; one the dialog never reaches because it ended early
    is recorded still (:meth:`_record_unreached`). They are in the history; ``back``
    returns over them to the step the user answered last (they wait again), or, before
    any such step, to the last of them (its question asked, its value forgotten).
    """

    protocol: S
    states: list[str]
    transitions: list[dict[str, Any]]
    machine: Machine
    end_states: tuple[str, ...]

    def _holder(self, session: Session, answered: str | None) -> Any:
        raise NotImplementedError

    @cached_property
    def _checkers(self) -> dict[str, Checker]:
        """:func:`~.answers.check_value` for each question (fast for well-typed values)."""
        return {v: checker(q) for v, q in self.protocol.questions.items()}

    def _askable(self, session: Session) -> Callable[[str], bool]:
        """Whether a question can still be asked, given the session's answers."""
        raise NotImplementedError

    def _may_ask(self, session: Session) -> Callable[[str], bool]:
        """Whether a question may still be asked: as :meth:`_askable`, and besides where
        its condition may yet hold on the answers still to come (for the progress total,
        which must never go up; see :func:`~.rules.evaluation.may_be_asked`)."""
        raise NotImplementedError

    def findings(self, session: Session) -> list[Finding]:
        """The verdicts of a finished screening, best first, with the answers to log."""
        raise NotImplementedError

    def _fire(self, trigger: str, session: Session, answered: str | None = None) -> None:
        holder = self._holder(session, answered)
        self.machine.events[trigger].trigger(holder)
        session.state = holder.state

    # -- sessions ---------------------------------------------------------------------------

    def start(
        self,
        referral: str | None = None,
        screened_on: date | None = None,
        prefilled: Mapping[str, Any] | None = None,
    ) -> Session:
        """A new session at question 1; ``prefilled`` answers wait for :meth:`fill`."""
        session = Session(
            protocol_id=self.protocol.id,
            protocol_version=self.protocol.version,
            protocol_sha256=self.protocol.sha256,
            referral=referral,
            state=self.protocol.order[0],
        )
        if screened_on is not None:
            session.screened_on = screened_on
        if prefilled:
            known = self.protocol.questions
            session.prefilled = {v: stored(x) for v, x in prefilled.items() if v in known}
        return session

    def finished(self, session: Session) -> bool:
        return session.state in self.end_states

    def question(self, session: Session) -> Question | None:
        return self.protocol.questions.get(session.state)

    def criteria_asking(self, session: Session) -> list[str]:
        """The ids of the criteria that read the current question."""
        return self.protocol.criteria_reading.get(session.state, [])

    def checklist(self, session: Session) -> Checklist | None:
        """The checklist the current step asks, or None (one question)."""
        return None if self.finished(session) else self.protocol.checklists.get(session.state)

    def step_items(self, session: Session) -> list[str]:
        """The questions of the current step: the current one, and for a checklist the
        items after it that are asked and not pre-filled."""
        checklist = self.checklist(session)
        if checklist is None:
            return [] if self.finished(session) else [session.state]
        asks = self._askable(session)
        later = checklist.items[checklist.items.index(session.state) + 1 :]
        return [session.state] + [
            v for v in later if v not in session.prefilled and v not in session.answers and asks(v)
        ]

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
        value = self._checkers[question.variable](value, session.screened_on)
        pending, session.pending = session.pending, None
        if pending is not None and pending.variable == question.variable:
            confirmed = confirmed or pending.value == value  # the same value typed again
        why = _needs_confirming(question, value)
        if why and not confirmed:
            session.pending = Pending(variable=question.variable, value=value)
            self._changed(session, now)
            return why
        self._record(session, question.variable, value, now)
        self.fill(session, now)
        return ""

    def answer_items(
        self, session: Session, values: Mapping[str, bool | None], now: datetime | None = None
    ) -> None:
        """Answer the current checklist step: a value (None: unknown) for each of its items.

        Items are recorded in order, each moving the machine as a single answer would. When
        an item ends the screening (or, in a set, the others are no longer asked), the items
        after it are still recorded: the user answered them, and the verdict shows them.
        """
        checklist = self.checklist(session)
        items = self.step_items(session)
        if checklist is None or set(values) != set(items):
            raise ValueError("the answers do not match the checklist's items")
        session.pending = None
        for variable in items:
            value = self._checkers[variable](values[variable], session.screened_on)
            if session.state == variable:
                self._record(session, variable, value, now, group=checklist.name)
                self._fill_questions(session, now, group=checklist.name)
            else:
                self._record(session, variable, value, now, group=checklist.name, move=False)
        session.draft = None
        self._record_unreached(session, now)

    def fill(self, session: Session, now: datetime | None = None) -> None:
        """Apply pre-filled answers while the current question has one. An unusual value
        waits for confirmation (``session.pending``) as a typed one would; a value the
        question refuses now, as it would refuse it typed (a planned date that has passed
        since the quick check), is dropped and the question asked, the reason kept for
        :meth:`~.session.Session.take_refusal`. At an end, those the dialog did not reach
        are recorded still (:meth:`_record_unreached`)."""
        self._fill_questions(session, now, group=None)
        self._record_unreached(session, now)

    def _fill_questions(self, session: Session, now: datetime | None, group: str | None) -> None:
        while session.prefilled and session.state in session.prefilled:  # (none at an end)
            variable = session.state
            question = self.protocol.questions[variable]
            raw = session.prefilled.pop(variable)
            try:
                value = self._prefilled_value(session, variable, raw)
            except ValueError as err:  # an AnswerError, or a stored date that is none
                session.refuse(Refusal(variable=variable, value=raw, reason=str(err)))
                return
            if _needs_confirming(question, value):
                session.pending = Pending(variable=variable, value=value, filled=True)
                return
            self._record(session, variable, value, now, group=group, filled=True)

    def _record_unreached(self, session: Session, now: datetime | None) -> None:
        """When the screening ended (early) before the questions of pre-filled answers came,
        record those answers still, as a checklist records its items after a failing one:
        the quick check's verdict, which evaluated every rule on them, is the record. A value
        a question's condition rules out under the other answers stays unused, and so does
        one its question refuses now."""
        if not session.prefilled or not self.finished(session):
            return
        on, values = session.screened_on, typed_values(self.protocol, session)
        kept: dict[str, Any] = {}
        for variable, raw in session.prefilled.items():
            try:
                kept[variable] = self._prefilled_value(session, variable, raw)
            except ValueError as err:  # said as a value reached and refused would be
                if session.refused is None:
                    session.refuse(Refusal(variable=variable, value=raw, reason=str(err)))
        while unasked := kept.keys() - self._asked_under(values | kept, on):  # until none
            kept = {v: x for v, x in kept.items() if v not in unasked}
        for variable in self.protocol.order:
            if variable in kept:
                del session.prefilled[variable]
                self._record(session, variable, kept[variable], now, filled=True, move=False)

    def _asked_under(self, values: dict[str, Any], screened_on: date) -> frozenset[str]:
        """The questions asked under these answers (typed), whatever ended the dialog."""
        raise NotImplementedError

    def _record(
        self,
        session: Session,
        variable: str,
        value: Any,
        now: datetime | None,
        *,
        group: str | None = None,
        filled: bool = False,
        move: bool = True,
    ) -> None:
        """Record an answer and (with ``move``) move the machine on from its question."""
        at = now or utc_now()
        session.answers[variable] = _answer(stored(value), at, group, filled)
        session.history.append(variable)
        self._changed(session, at)
        if move:
            self._fire("next", session, answered=variable)

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

    def back(self, session: Session, now: datetime | None = None) -> bool:
        """Return to the step the user answered last (the one they saw), forgetting its
        answers; the pre-filled answers after it wait in ``session.prefilled`` again, to be
        applied when their questions come. When every answer so far was pre-filled, the
        last of them is asked (its pre-filled value forgotten).

        A checklist comes back whole, its items ticked as they were answered.
        """
        pending, session.pending = session.pending, None
        if pending is not None:  # back from "confirm this value" is the question itself…
            user_answered = any(not a.filled for a in session.answers.values())
            if not (pending.filled and user_answered):
                self._changed(session, now)
                return True
            # …unless a quick check's value waits there: it waits for its question again
            session.prefilled[pending.variable] = stored(pending.value)
        if not session.history:
            return False
        history, answers = session.history, session.answers
        seen = [i for i, v in enumerate(history) if not answers[v].filled]
        if seen:
            for variable in history[seen[-1] + 1 :]:
                session.prefilled[variable] = answers.pop(variable).value
            del history[seen[-1] + 1 :]
        popped = [session.history.pop()]
        group = session.answers[popped[0]].group
        while group is not None and session.history:
            if session.answers[session.history[-1]].group != group:
                break
            popped.append(session.history.pop())
        popped.reverse()
        values = {v: session.answers.pop(v).value for v in popped}
        session.state = popped[0]
        session.draft = None
        self._changed(session, now)
        if group is not None:
            ticked = {v: x for v, x in values.items() if isinstance(x, bool) or x is None}
            session.draft = Draft(step=session.step, items=ticked)
        return True

    def restart(self, session: Session, now: datetime | None = None) -> None:
        session.pending = None
        session.draft = None
        session.prefilled = {}
        session.answers.clear()
        session.history.clear()
        self._fire("restart", session)
        self._changed(session, now)

    # -- checklist and multi-select drafts --------------------------------------------------

    def item_values(self, session: Session) -> dict[str, bool | None]:
        """The current checklist step's items as ticked so far (untouched: the default)."""
        checklist = self.checklist(session)
        if checklist is None:
            return {}
        draft = self._draft(session)
        return {v: draft.items.get(v, checklist.default) for v in self.step_items(session)}

    def chosen(self, session: Session) -> list[str]:
        """The choices ticked so far at a multi-select question."""
        return list(self._draft(session).chosen)

    def set_ticks(self, session: Session, ticks: Sequence[bool | None]) -> bool:
        """Make ``ticks`` (one per item of the checklist step, or per choice of the
        multi-select: as a message showed them) the step's ticks; False if they do not fit."""
        checklist = self.checklist(session)
        question = self.question(session)
        if checklist is not None:
            items = self.step_items(session)
            if len(ticks) != len(items):
                return False
            changed = {v: t for v, t in zip(items, ticks, strict=True) if t != checklist.default}
            session.draft = Draft(step=session.step, items=changed)
        elif question is not None and question.type == "choice" and question.multiple:
            choices = question.choices or []
            if len(ticks) != len(choices) or None in ticks:
                return False
            chosen = [c for c, t in zip(choices, ticks, strict=True) if t]
            session.draft = Draft(step=session.step, chosen=chosen)
        else:
            return False
        return True

    def toggle(self, session: Session, index: int, now: datetime | None = None) -> bool:
        """Change item ``index`` of a checklist step (default → the other answer → unknown
        → default), or tick/untick choice ``index`` of a multi-select; False if none."""
        draft = self._draft(session)
        checklist = self.checklist(session)
        question = self.question(session)
        if checklist is not None:
            items = self.step_items(session)
            if not 0 <= index < len(items):
                return False
            variable = items[index]
            current = draft.items.get(variable, checklist.default)
            following = {checklist.default: not checklist.default, not checklist.default: None}
            draft.items[variable] = following.get(current, checklist.default)  # type: ignore[arg-type]
        elif question is not None and question.type == "choice" and question.multiple:
            choices = question.choices or []
            if not 0 <= index < len(choices):
                return False
            picked = set(draft.chosen) ^ {choices[index]}
            draft.chosen = [c for c in choices if c in picked]
        else:
            return False
        session.draft = draft
        session.updated_at = now or utc_now()
        return True

    def _draft(self, session: Session) -> Draft:
        draft = session.draft
        if draft is None or draft.step != session.step:
            return Draft(step=session.step)
        return draft.model_copy(deep=True)

    # -- progress ---------------------------------------------------------------------------

    def progress(self, session: Session) -> tuple[int, int]:
        """(number of the current step, steps in this screening as far as known).

        Steps answered by the user count (a checklist once, pre-filled answers not); the
        steps to come are the questions that may still be asked (:meth:`_may_ask`) and are
        not pre-filled, a checklist counted once. The total never goes up as answers come.
        """
        done, run = 0, None
        for variable in session.history:
            answer = session.answers[variable]
            if answer.group is not None and answer.group == run:
                continue
            run = answer.group
            done += not answer.filled
        if self.finished(session):
            return done, done
        expected = session  # with the pre-filled answers given: they decide conditions too
        settled = self._settled_prefill(session)
        if settled:
            waiting = {v: Answer(value=x, at=session.updated_at) for v, x in settled.items()}
            expected = session.model_copy(update={"answers": {**session.answers, **waiting}})
        asks = self._may_ask(expected)
        current = set(self.step_items(session))
        order = self.protocol.order
        checklists = self.protocol.checklists
        later = {
            checklists[v].name if v in checklists else f"question {v}"
            for v in order[order.index(session.state) + 1 :]
            if v not in current and v not in settled and v not in session.answers and asks(v)
        }
        return done + 1, done + 1 + len(later)

    def _settled_prefill(self, session: Session) -> dict[str, Any]:
        """The pre-filled answers :meth:`fill` will record as they are: not one its question
        refuses now, nor an unusual one, which waits for a confirmation and may be replaced
        (typed anew, or unknown). Those two may still be asked, and so may what they decide:
        counted from the start, the total does not go up when one of them comes."""
        settled = {}
        for variable, raw in session.prefilled.items():
            try:
                value = self._prefilled_value(session, variable, raw)
            except ValueError:  # an AnswerError, or a stored date that is none
                continue
            if not _needs_confirming(self.protocol.questions[variable], value):
                settled[variable] = raw
        return settled

    def _prefilled_value(self, session: Session, variable: str, raw: Any) -> Any:
        """A pre-filled answer as its question takes it now; ValueError (an AnswerError, or
        a stored date that is none) where it refuses it, as it would refuse it typed."""
        return self._checkers[variable](
            typed_value(self.protocol, variable, raw), session.screened_on
        )

    @staticmethod
    def _changed(session: Session, now: datetime | None) -> None:
        _assign(session, {"step": session.step + 1, "updated_at": now or utc_now()})


def _needs_confirming(question: Question, value: Any) -> str:
    """Why an answer waits for a confirmation (a number outside its question's plausibility
    limits; never a yes/no), or ''."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return unusual(question, value) if number else ""


class Engine(BaseEngine[Protocol]):
    """Runs sessions of one protocol.

    An answer's checks (did a criterion fail, which question comes next) evaluate only what
    they read (:mod:`.rules.demand`); ``targeted=False`` evaluates the whole context for
    each, the plain way the tests compare the targeted one with.
    """

    end_states = END_STATES

    def __init__(self, protocol: Protocol, *, targeted: bool = True) -> None:
        self.protocol = protocol
        self.targeted = targeted
        # made here, not at the first answer to each question: that answer would be an outlier
        self._needs = {v: self._need(v) for v in protocol.order} if targeted else {}
        if targeted:  # first: the steps' functions share its budget (MAX_COMPILED_NODES)
            final_decision(protocol)
        self._steps = {
            v: step_checks(protocol, v, need, self._later(v)) for v, need in self._needs.items()
        }
        self._settled = {v: found for v in protocol.order if (found := settled_by(protocol, v))}
        self._checkers  # noqa: B018 - made now, not at the first answer to each question
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
        failed, unresolved = _failed, _unresolved
        order = self.protocol.order
        transitions: list[dict[str, Any]] = []

        def on(source: str, dest: str, **conditions: Any) -> None:
            transitions.append(
                {"trigger": "next", "source": source, "dest": dest, "unless": [failed]} | conditions
            )

        for index, variable in enumerate(order):
            for later in order[index + 1 :]:
                if later in self.protocol.when:
                    on(variable, later, conditions=[_asked(self.protocol, later)])
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

    def _holder(self, session: Session, answered: str | None) -> _Holder:
        settled = self._settled.get(answered or "", ())
        if self.targeted and answered is not None and answered == session.state:
            need, step = self._needs[answered], self._steps[answered]
            return _Holder(session, self.protocol, answered, need, step, settled)
        return _Holder(session, self.protocol, answered, settled=settled)

    def _need(self, answered: str) -> Demand:
        """What the checks after answering ``answered`` read (the final verdict's aside): the
        rules of the criteria reading it and the conditions of the questions that may come
        next."""
        protocol = self.protocol
        names = [
            n for cid in protocol.criteria_reading[answered] for n in protocol.rules[cid].names
        ]
        return demand(protocol, names + self._later(answered))

    def _later(self, answered: str) -> list[str]:
        """The conditional questions that may come after ``answered`` (up to the next one
        always asked): the machine checks whether each is asked."""
        order, found = self.protocol.order, []
        for later in order[order.index(answered) + 1 :]:
            if later not in self.protocol.when:
                break
            found.append(later)
        return found

    def _askable(self, session: Session) -> Callable[[str], bool]:
        applicable = applicable_questions(
            self.protocol, typed_values(self.protocol, session), session.screened_on
        )
        return applicable.__contains__

    def _asked_under(self, values: dict[str, Any], screened_on: date) -> frozenset[str]:
        return applicable_questions(self.protocol, values, screened_on)

    def _may_ask(self, session: Session) -> Callable[[str], bool]:
        to_come = still_to_come(self.protocol.order, session.state)
        values = typed_values(self.protocol, session)
        return may_be_asked(self.protocol, values, to_come, session.screened_on).__contains__

    def verdict(self, session: Session) -> Verdict:
        values, on = typed_values(self.protocol, session), session.screened_on
        fields = fields_of(self.protocol, values, referral=session.referral, screened_on=on)
        return Verdict(**lasting_reasons(self.protocol, fields, values, on))

    def findings(self, session: Session) -> list[Finding]:
        values = typed_values(self.protocol, session)
        return [Finding(self.verdict(session), loggable_answers(self.protocol, values))]


def _assign(model: BaseModel, fields: dict[str, Any]) -> None:
    """``setattr`` of each field, as pydantic does it for a model that validates no
    assignment (a Session: a test keeps it so), at once: the values into the model's
    ``__dict__``, the names into its fields set (this runs at every answer)."""
    model.__dict__.update(fields)
    model.__pydantic_fields_set__.update(fields)


_KEPT = frozenset({bool, int, float, str, type(None)})  # validated to themselves
_new, _set = object.__new__, object.__setattr__
_ANSWER_FIELDS = tuple(Answer.model_fields)


def _answer(value: Any, at: datetime, group: str | None, filled: bool) -> Answer:
    """``Answer(value=value, at=at, group=group, filled=filled)``. Where validation would
    keep every field as it is (a value of an exact JSON scalar type, a datetime, a text or
    no group, a bool), the model is made as pydantic makes it, without running the
    validation (this runs at every answer; a test compares the two); else validated."""
    if (
        type(value) in _KEPT
        and type(at) is datetime
        and type(filled) is bool
        and (group is None or type(group) is str)
    ):
        answer = _new(Answer)
        _set(answer, "__dict__", {"value": value, "at": at, "group": group, "filled": filled})
        _set(answer, "__pydantic_fields_set__", set(_ANSWER_FIELDS))
        _set(answer, "__pydantic_extra__", None)
        _set(answer, "__pydantic_private__", None)
        return answer
    return Answer(value=value, at=at, group=group, filled=filled)


def lasting_reasons(
    protocol: Protocol, fields: dict[str, Any], values: dict[str, Any], screened_on: date
) -> dict[str, Any]:
    """A dialog's verdict (:func:`~.verdict.fields_of` of its answers, typed ``values``)
    without the reasons that an answer it did not ask could undo.

    The dialog ends at a failure no answer still to come can undo
    (:func:`~.rules.evaluation.lasting_failures`); another rule may fail on the answers
    given only because it reads known() of a question the dialog ended before (or a derived
    value whose measured question it is): the full evaluation of every answer may meet it,
    so it is no reason. With every question asked, nothing is left out."""
    if fields["verdict"] != "not_eligible":
        return fields
    unasked = [v for v in protocol.order if v not in values]
    failed = [r["criterion"] for r in fields["reasons"]]

    def made() -> Context:
        return context(protocol, values, screened_on)

    lasting = lasting_failures(protocol, made, values, unasked, failed)
    if len(lasting) == len(failed):
        return fields
    return {**fields, "reasons": [r for r in fields["reasons"] if r["criterion"] in lasting]}


def still_to_come(order: Sequence[str], state: str) -> Sequence[str]:
    """The questions from the dialog's current one on (none at an end)."""
    return order[order.index(state) :] if state in order else ()


def stored(value: Any) -> Any:
    """An answer in the form a session keeps (JSON): dates as ISO text, sets as lists."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def typed_value(protocol: Screened, variable: str, value: Any) -> Any:
    """One stored answer as the rules read it (see :func:`typed_values`)."""
    if variable in protocol.dated_questions and value is not None and value != NEVER:
        return date.fromisoformat(str(value))
    return tuple(value) if type(value) is list else value


def stored_context(protocol: Protocol, need: Demand, session: Session) -> Context:
    """``part_context(protocol, need, values, session.screened_on)`` with ``values`` the
    session's answers typed (:func:`typed_values`), made from the stored answers in one
    pass: the answers of ``need``'s questions are typed, no others. With
    :func:`~.rules.demand.whole`'s demand it is the whole context."""
    answers, dated = session.answers, protocol.dated_questions
    env = _typed(need.always, answers, dated)
    later = _typed([c.variable for c in need.conditions], answers, dated)
    applicable, env = grown(need.always, need.conditions, env, later, session.screened_on)
    return Context(env, applicable, derive(protocol, env, need.derived, need.tables))


def _typed(
    variables: Iterable[str], answers: dict[str, Answer], dated: frozenset[str]
) -> dict[str, Any]:
    """The answers to ``variables`` as :func:`typed_value` gives them (inline: this runs at
    every answer)."""
    found: dict[str, Any] = {}
    for variable in variables:
        if (answer := answers.get(variable)) is not None:
            value: Any = answer.value
            if variable in dated and value is not None and value != NEVER:
                value = date.fromisoformat(str(value))
            elif type(value) is list:
                value = tuple(value)
            found[variable] = value
    return found


def typed_values(protocol: Screened, session: Session) -> dict[str, Any]:
    """The session's answers as the rules read them: dates as dates, sets as tuples."""
    # this runs at every answer: one comprehension, then the few dated questions
    values: dict[str, Any] = {
        v: tuple(x) if type(x := a.value) is list else x for v, a in session.answers.items()
    }
    for variable in protocol.dated_questions & values.keys():
        value = values[variable]
        if value is not None and value != NEVER:
            values[variable] = date.fromisoformat(str(value))
    return values


def loggable_answers(protocol: Screened, values: dict[str, Any]) -> dict[str, Any]:
    """Answers as the screening log keeps them: JSON values, and never a free-text answer."""
    return {v: stored(x) for v, x in values.items() if v not in protocol.text_questions}
