"""The screening service: what every front end (terminal, Telegram, the next one) calls.

Each call loads the owner's screening, runs the engine, saves, and returns what to show
as data (:class:`Result` objects, in the order to show them); no transport's words. A
call is one database transaction (``BEGIN IMMEDIATE``): the load, the change and the
save happen together, across processes too, and a finished screening's log record is
appended and its open session removed in that same transaction, or neither. Nothing is
returned before it is committed, so a front end that shows the results after the call
never shows a state that was not saved.

Calls are synchronous and never wait on a transport, so in an asyncio front end two
calls never interleave. Keeping one chat's *replies* in order is the transport's part:
the Telegram adapter runs one chat's updates one after the other (``ordering.py``).

An answer applies only to the question the user was shown: a typed answer goes to the
current question of the active screening; a button carries its session and step and is
refused when the session is gone, paused, or past that step, or the button does not fit
the question. A front end that knows what it delivered (Telegram: ``shown`` with the step
and the chat's newest update at that moment) passes each typed input's update id as
``arrived``: input that arrived before the current question was delivered, or while it
was never delivered (a crash between saving and sending), changes nothing (:class:`Early`).
A front end that must deliver every verdict after a crash (``outbox=True``) gets each
``Finished`` with a ``delivery`` id, kept until it calls :meth:`ScreeningService.delivered`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from .answers import AnswerError, parse_text
from .engine import BaseEngine
from .errors import ScreenBotError
from .protocol.catalog import Catalog, ProtocolChoiceNeeded, ProtocolNotFound, ProtocolSetError
from .protocol.schema import Question
from .referrals import check_referral
from .render import format_value, question_text, verdicts_text
from .session import ProtocolChanged, Session, utc_now
from .storage import Store, Tx, ledger, outbox, sessions
from .storage.ledger import Channel
from .storage.outbox import Undelivered
from .storage.sessions import OpenScreening
from .verdict import Verdict

TERMINAL = 0  # the owner of terminal screenings (a Telegram chat id is never 0)
# Button keys; a choice is "c<index>"; CONFIRM records the unusual value waiting.
YES, NO, UNKNOWN, BACK, CONFIRM = "y", "n", "u", "b", "k"

# Why nothing changed (an adapter words each one).
NO_SCREENING = "no_screening"
STALE = "stale"  # the button's question was already answered
GONE = "gone"  # finished, cancelled or expired
PAUSED = "paused"  # another screening is active
FORGED = "forged"  # the button does not fit the question
FIRST_QUESTION = "first_question"
REFERRAL_TAKEN = "referral_taken"  # detail: the referral
PROTOCOL_CHANGED = "protocol_changed"  # the dialog file changed; the screening was removed
NOT_OPEN = "not_open"  # /resume of a label that is not open


class Result:
    """Something to show. Adapters render the kinds they know; new kinds may be added."""


@dataclass(frozen=True)
class Option(Result):
    """A button of the current question: ``key`` goes back in :meth:`ScreeningService.press`."""

    key: str
    kind: Literal["yes", "no", "choice", "unknown", "back", "confirm"]
    choice: str | None = None  # a choice's text; for confirm, the value to confirm


@dataclass(frozen=True)
class Asked(Result):
    """Show this question (then tell the service which message shows it: ``shown``)."""

    session_id: str
    step: int
    referral: str | None
    question: Question
    progress: tuple[int, int]
    text: str  # the shared wording: progress, criterion ids, question, help, input hint
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Finished(Result):
    """The screening ended: one verdict per protocol screened, best first, logged as
    records ``log_numbers`` under one ``screening_id``."""

    verdicts: tuple[Verdict, ...]
    log_numbers: tuple[int, ...]
    text: str  # the shared wording of the verdicts
    screening_id: str = ""
    delivery: int | None = None  # with outbox=True: pass to ``delivered`` once it was sent

    @property
    def verdict(self) -> Verdict:
        """The verdict (of a one-protocol screening; of a set's, the best)."""
        return self.verdicts[0]

    @property
    def log_number(self) -> int:
        return self.log_numbers[0]


@dataclass(frozen=True)
class Retired(Result):
    """The message that showed a question can no longer be answered: update it.

    ``how``: answered (show ``question`` → ``value``), back, cancelled, or dropped (only
    take its buttons away).
    """

    message_id: int
    how: Literal["answered", "back", "cancelled", "dropped"]
    question: Question | None = None
    value: Any = None


@dataclass(frozen=True)
class Started(Result):
    label: str
    protocol_id: str
    protocol_version: str
    title: str
    paused: str | None  # the label of the screening this one paused


@dataclass(frozen=True)
class Invalid(Result):
    """The typed answer does not fit the question; ``message`` says why (it is asked again)."""

    message: str


@dataclass(frozen=True)
class Unusual(Result):
    """The answer is outside the protocol's plausibility limits: confirm it or correct it.

    Nothing was recorded; the value waits, and the question is asked again with a button
    that confirms it (typing the same value again confirms it too).
    """

    message: str


@dataclass(frozen=True)
class Early(Result):
    """Typed input that arrived before the current question was delivered: nothing changed.

    ``reshown``: the question had never been delivered (a crash between saving the last
    answer and sending it), so it follows, asked again; otherwise it is already on screen.
    """

    reshown: bool


@dataclass(frozen=True)
class Status(Result):
    answered: int


@dataclass(frozen=True)
class Resumed(Result):
    label: str


@dataclass(frozen=True)
class Cancelled(Result):
    label: str


@dataclass(frozen=True)
class Listing(Result):
    screenings: tuple[OpenScreening, ...]


@dataclass(frozen=True)
class Forgotten(Result):
    count: int


@dataclass(frozen=True)
class Refused(Result):
    """Nothing changed; ``reason`` is one of the module's reason constants."""

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Choose(Result):
    """Several protocols and none named: offer ``choices`` (ids, and ``all``), then start
    again with the one chosen and the same ``referral``."""

    choices: tuple[str, ...]
    referral: str | None


@dataclass(frozen=True)
class Problem(Result):
    """An error the user can act on (unknown protocol, a name as referral), in words."""

    message: str


Results = list[Result]
Engine = BaseEngine[Any]  # one protocol's engine, or a protocol set's (``all``)


def label(session: Session | OpenScreening) -> str:
    """How a screening is named to the user: its referral, else its id."""
    if isinstance(session, Session):
        return session.referral or session.id
    return session.referral or session.session_id


class ScreeningService:
    """Screenings of many owners (chats) on one database; see the module docstring."""

    def __init__(
        self, catalog: Catalog, db: Store, channel: Channel, *, outbox: bool = False
    ) -> None:
        self.catalog, self.db, self.channel = catalog, db, channel
        self.outbox = outbox

    def coordinator(self, owner: int) -> str:
        return "cli" if self.channel == "cli" else str(owner)

    # -- starting and moving between screenings -------------------------------------------

    def start(
        self, owner: int, protocol_id: str | None = None, referral: str | None = None
    ) -> Results:
        """Start a screening (it becomes the active one; an open one is paused)."""
        try:
            if referral is not None:
                check_referral(referral)
            engine = self.catalog.engine(protocol_id)
        except ProtocolChoiceNeeded as several:
            return [Choose(tuple(several.choices), referral)]
        except ScreenBotError as err:
            return [Problem(err.message)]
        with self.db.transaction() as tx:
            open_ = sessions.list_open(tx, owner)
            if referral and any(o.referral == referral for o in open_):
                return [Refused(REFERRAL_TAKEN, referral)]
            paused = next((o for o in open_ if o.active), None)
            session = engine.start(referral)
            sessions.save(tx, owner, session, activate=True)
            results: Results = []
            if paused is not None:
                results += self._retire(tx, owner, paused.session_id, "dropped")
            started = Started(
                label(session),
                engine.protocol.id,
                engine.protocol.version,
                engine.protocol.title,
                label(paused) if paused else None,
            )
            return [*results, started, _asked(engine, session)]

    def resume(self, owner: int, wanted: str) -> Results:
        """Make the open screening with this referral (or id) the active one."""
        with self.db.transaction() as tx:
            match = next(
                (o for o in sessions.list_open(tx, owner) if wanted in (o.referral, o.session_id)),
                None,
            )
            if not wanted or match is None:
                return [Refused(NOT_OPEN, wanted)]
            results: Results = []
            current = sessions.active(tx, owner)
            if current is not None and current.id != match.session_id:
                results += self._retire(tx, owner, current.id, "dropped")
            sessions.activate(tx, owner, match.session_id)
            loaded = self._active(tx, owner)
            if isinstance(loaded, Refused):
                return [loaded]
            engine, session = loaded
            return [*results, Resumed(label(session)), _asked(engine, session)]

    def status(self, owner: int) -> Results:
        """Where the active screening stands: its current question, shown again."""

        def show(tx: Tx, engine: Engine, session: Session) -> Results:
            return [
                *self._retire(tx, owner, session.id, "dropped"),
                Status(len(session.history)),
                _asked(engine, session),
            ]

        return self._on_active(owner, show)

    def list_open(self, owner: int) -> Results:
        return [Listing(tuple(sessions.list_open(self.db.read(), owner)))]

    def shown(
        self,
        owner: int,
        session_id: str,
        message_id: int | None,
        step: int | None = None,
        after: int | None = None,
    ) -> None:
        """Remember which message shows the session's current question.

        With ``step`` (the :class:`Asked` step delivered) typed input is checked against
        it; ``after`` is the chat's newest update received when it was delivered.
        """
        with self.db.transaction() as tx:
            if step is None or message_id is None:
                sessions.set_message(tx, owner, session_id, message_id)
            else:
                sessions.set_shown(tx, owner, session_id, message_id, step, after)

    def where(self, owner: int) -> tuple[int, int] | None:
        """The active screening's progress (question n of m), or None; never writes."""
        session = sessions.active(self.db.read(), owner)
        if session is None:
            return None
        try:
            return self.catalog.engine(session.protocol_id).progress(session)
        except ScreenBotError:
            return None

    def delivered(self, delivery: int) -> None:
        """A ``Finished`` verdict kept for delivery was sent: forget it."""
        with self.db.transaction() as tx:
            outbox.delivered(tx, delivery)

    def undelivered(self) -> list[Undelivered]:
        """Verdicts decided but not sent before a crash (``outbox=True``), oldest first."""
        return outbox.undelivered(self.db.read())

    # -- answers ----------------------------------------------------------------------------

    def answer(self, owner: int, text: str, arrived: int | None = None) -> Results:
        """A typed answer to the active screening's current question (update ``arrived``)."""

        def typed(tx: Tx, engine: Engine, session: Session) -> Results:
            question = engine.question(session)
            if question is None:
                return self._after_change(tx, owner, engine, session)
            try:
                value = parse_text(question, text, session.screened_on)
            except AnswerError as err:
                return [
                    *self._retire(tx, owner, session.id, "dropped"),
                    Invalid(str(err)),
                    _asked(engine, session),
                ]
            return self._apply(tx, owner, engine, session, value)

        return self._on_shown(owner, arrived, typed)

    def skip(self, owner: int, arrived: int | None = None) -> Results:
        """Answer the current question 'unknown'."""
        return self._on_shown(owner, arrived, lambda tx, e, s: self._apply(tx, owner, e, s, None))

    def press(
        self, owner: int, session_id: str, step: int, key: str, message_id: int | None = None
    ) -> Results:
        """A button of question ``step`` of ``session_id`` (pressed on ``message_id``)."""
        with self.db.transaction() as tx:
            session = sessions.get(tx, owner, session_id)
            active = sessions.active(tx, owner)
            if session is None:
                gone: Results = [Refused(GONE)]
                if message_id is not None:
                    gone.append(Retired(message_id, "dropped"))
                return gone
            if active is None or active.id != session.id:
                return [Refused(PAUSED)]
            if session.step != step:  # and the current question again if it was never sent
                return [Refused(STALE), *self._unshown(tx, owner, session)]
            loaded = self._engine_for(tx, owner, session)
            if isinstance(loaded, Refused):
                return [loaded]
            engine = loaded
            question = engine.question(session)
            if question is None:
                return [Refused(GONE)]
            if message_id is not None:  # the user sees this message: it is the one to edit
                sessions.set_message(tx, owner, session.id, message_id)
            if key == BACK:
                return self._back(tx, owner, engine, session)
            if key == CONFIRM:
                pending = session.pending
                if pending is None or pending.variable != question.variable:
                    return [Refused(FORGED)]
                return self._apply(tx, owner, engine, session, pending.value)
            valid, value = _button_value(question, key)
            if not valid:
                return [Refused(FORGED)]
            return self._apply(tx, owner, engine, session, value)

    def back(self, owner: int, arrived: int | None = None) -> Results:
        """Back to the question answered last, forgetting its answer."""
        return self._on_shown(owner, arrived, lambda tx, e, s: self._back(tx, owner, e, s))

    def restart(self, owner: int) -> Results:
        """Forget every answer of the active screening and begin again."""

        def again(tx: Tx, engine: Engine, session: Session) -> Results:
            retired = self._retire(tx, owner, session.id, "dropped")
            engine.restart(session)
            sessions.save(tx, owner, session)
            return [*retired, _asked(engine, session)]

        return self._on_active(owner, again)

    # -- ending -----------------------------------------------------------------------------

    def cancel(self, owner: int) -> Results:
        """Cancel the active screening; nothing of it is kept."""

        def drop(tx: Tx, engine: Engine, session: Session) -> Results:
            retired = self._retire(tx, owner, session.id, "cancelled")
            sessions.delete(tx, owner, session.id)
            return [*retired, Cancelled(label(session))]

        return self._on_active(owner, drop)

    def forget(self, owner: int) -> Results:
        """Delete every unfinished screening of this owner (finished ones stay in the log)."""
        with self.db.transaction() as tx:
            return [Forgotten(sessions.forget(tx, owner))]

    def expire(self, older_than: timedelta) -> int:
        """Delete unfinished screenings unchanged for ``older_than``; return how many."""
        with self.db.transaction() as tx:
            return sessions.expire(tx, utc_now() - older_than)

    def protocols(self) -> list[tuple[str, str, str]]:
        """(id, version, title) of every protocol found."""
        return [(p.id, p.version, p.title) for p in self.catalog.protocols.values()]

    def choices(self) -> list[str]:
        """What /screen may name: every protocol id, and ``all`` when there are several."""
        return self.catalog.choices()

    def broken(self) -> list[str]:
        """Each dialog file that could not be loaded, with its first problem; and the
        shared variables that keep the protocols from being screened together."""
        return [str(p) for p in [*self.catalog.broken().values(), *self.catalog.conflicts]]

    # -- steps (inside the caller's transaction) -------------------------------------------

    def _apply(self, tx: Tx, owner: int, engine: Engine, session: Session, value: Any) -> Results:
        question = engine.question(session)
        assert question is not None
        message_id = sessions.message(tx, owner, session.id)
        unusual = engine.answer(session, value)
        if unusual:  # nothing recorded: the value waits for a confirmation
            sessions.save(tx, owner, session)
            dropped = [] if message_id is None else [Retired(message_id, "dropped")]
            return [*dropped, Unusual(unusual), _asked(engine, session)]
        retired: Results = []
        if message_id is not None:
            retired.append(Retired(message_id, "answered", question, value))
        return retired + self._after_change(tx, owner, engine, session)

    def _after_change(self, tx: Tx, owner: int, engine: Engine, session: Session) -> Results:
        """Save an open screening and ask on; log a finished one and drop it, together."""
        if not engine.finished(session):
            sessions.save(tx, owner, session)
            return [_asked(engine, session)]
        findings = engine.findings(session)
        screening_id = secrets.token_hex(8)
        numbers = tuple(
            ledger.append(
                tx,
                found.verdict,
                channel=self.channel,
                coordinator=self.coordinator(owner),
                answers=found.answers,
                screening_id=screening_id,
            ).number
            for found in findings
        )
        sessions.delete(tx, owner, session.id)
        verdicts = tuple(found.verdict for found in findings)
        text = verdicts_text(verdicts)
        delivery = outbox.put(tx, owner, text) if self.outbox else None
        return [Finished(verdicts, numbers, text, screening_id, delivery)]

    def _back(self, tx: Tx, owner: int, engine: Engine, session: Session) -> Results:
        if not engine.back(session):
            return [Refused(FIRST_QUESTION)]
        retired = self._retire(tx, owner, session.id, "back")
        sessions.save(tx, owner, session)
        return [*retired, _asked(engine, session)]

    def _retire(
        self,
        tx: Tx,
        owner: int,
        session_id: str,
        how: Literal["answered", "back", "cancelled", "dropped"],
    ) -> Results:
        message_id = sessions.message(tx, owner, session_id)
        return [] if message_id is None else [Retired(message_id, how)]

    def _on_shown(
        self, owner: int, arrived: int | None, step: Callable[[Tx, Engine, Session], Results]
    ) -> Results:
        """:meth:`_on_active` for typed input: only when it answers the question delivered."""

        def checked(tx: Tx, engine: Engine, session: Session) -> Results:
            if arrived is None:
                return step(tx, engine, session)
            shown_step, after = sessions.shown(tx, owner, session.id)
            if shown_step != session.step:
                return [Early(reshown=True), *self._reask(tx, owner, engine, session)]
            if after is not None and arrived <= after:
                return [Early(reshown=False)]
            return step(tx, engine, session)

        return self._on_active(owner, checked)

    def _unshown(self, tx: Tx, owner: int, session: Session) -> Results:
        """The current question, to send again, when it was never delivered; else nothing."""
        shown_step, _ = sessions.shown(tx, owner, session.id)
        if shown_step is None or shown_step == session.step:
            return []  # delivered (or never tracked: a front end that does not say)
        engine = self._engine_for(tx, owner, session)
        return [] if isinstance(engine, Refused) else self._reask(tx, owner, engine, session)

    def _reask(self, tx: Tx, owner: int, engine: Engine, session: Session) -> Results:
        return [*self._retire(tx, owner, session.id, "dropped"), _asked(engine, session)]

    def _on_active(self, owner: int, step: Callable[[Tx, Engine, Session], Results]) -> Results:
        """Run ``step`` on the owner's active screening, in one transaction."""
        with self.db.transaction() as tx:
            loaded = self._active(tx, owner)
            return [loaded] if isinstance(loaded, Refused) else step(tx, *loaded)

    def _active(self, tx: Tx, owner: int) -> tuple[Engine, Session] | Refused:
        """The owner's active screening and its engine, or why there is none."""
        session = sessions.active(tx, owner)
        if session is None:
            return Refused(NO_SCREENING)
        engine = self._engine_for(tx, owner, session)
        return engine if isinstance(engine, Refused) else (engine, session)

    def _engine_for(self, tx: Tx, owner: int, session: Session) -> Engine | Refused:
        """The session's engine; a session whose dialog file changed is removed."""
        try:
            engine = self.catalog.engine(session.protocol_id)
            session.check_protocol(engine.protocol)
        except (ProtocolNotFound, ProtocolChanged, ProtocolSetError):
            sessions.delete(tx, owner, session.id)
            return Refused(PROTOCOL_CHANGED)
        return engine


def _asked(engine: Engine, session: Session) -> Asked:
    question = engine.question(session)
    assert question is not None  # an open screening always has a current question
    return Asked(
        session_id=session.id,
        step=session.step,
        referral=session.referral,
        question=question,
        progress=engine.progress(session),
        text=question_text(engine, session),
        options=options(question, session),
    )


def options(question: Question, session: Session | None = None) -> tuple[Option, ...]:
    options: list[Option] = []
    pending = session.pending if session is not None else None
    if pending is not None and pending.variable == question.variable:
        options.append(Option(CONFIRM, "confirm", format_value(pending.value)))
    if question.type == "yes_no":
        options += [Option(YES, "yes"), Option(NO, "no")]
    elif question.type == "choice" and not question.multiple:  # a multi-select is typed
        options += [Option(f"c{i}", "choice", c) for i, c in enumerate(question.choices or [])]
    return (*options, Option(UNKNOWN, "unknown"), Option(BACK, "back"))


def _button_value(question: Question, key: str) -> tuple[bool, Any]:
    """(valid, value) of a pressed answer button for this question."""
    if key == UNKNOWN:
        return True, None
    if key in (YES, NO):
        return question.type == "yes_no", key == YES
    choices = question.choices or []
    index = int(key[1:]) if key[:1] == "c" and key[1:].isdigit() else len(choices)
    if question.type == "choice" and index < len(choices):
        return True, choices[index]
    return False, None
