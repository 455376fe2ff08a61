"""The screening service: what every front end (terminal, Telegram, the next one) calls.

Each call loads the owner's screening, runs the engine, saves, and returns what to show
as data (the :class:`Result` objects of ``results.py``, in the order to show them); no
transport's words. A call is one database transaction (``BEGIN IMMEDIATE``): the load,
the change and the save happen together, across processes too, and a finished
screening's log record is appended and its open session removed in that same
transaction, or neither. Nothing is returned before it is committed, so a front end that
shows the results after the call never shows a state that was not saved.

Calls are synchronous and never wait on a transport, so in an asyncio front end two
calls never interleave. Keeping one chat's *replies* in order is the transport's part:
the Telegram adapter runs one chat's updates one after the other (``ordering.py``).

An answer applies only to the question the user was shown: a typed answer goes to the
current question of the active screening; a button carries its session and step and is
refused when the session is gone, paused, or past that step, or the button does not fit
the question. A front end that shows one screening per dialog (the terminal: several
dialogs share its owner) addresses every call to the question it showed (``to``, the
:class:`Asked`): the call is for that screening, active or not, and is refused, changing
nothing, when the screening is gone (:data:`GONE`) or past that step (:data:`STALE`). A
front end that knows what it delivered (Telegram: ``shown`` with the step and the chat's
newest update at that moment) passes each typed input's update id as ``arrived``: input
that arrived before the current question was delivered, or while it was never delivered
(a crash between saving and sending), changes nothing (:class:`Early`).
A front end that must deliver every verdict after a crash (``outbox=True``) gets each
``Finished`` with a ``delivery`` id, kept until it calls :meth:`ScreeningService.delivered`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal

from .answers import AnswerError, is_unknown_text, parse_text, today, typed_form
from .buttons import (
    ALL,
    BACK,
    CONFIRM,
    DONE,
    REFERRAL_QUESTION,
    UNKNOWN,
    button_value,
    referral_asked,
    step_asked,
)
from .checklists import parse_checklist
from .engine import BaseEngine, stored
from .errors import BadReferral, ScreenBotError
from .protocol.catalog import Catalog, ProtocolChoiceNeeded, ProtocolNotFound, ProtocolSetError
from .protocol.schema import Question
from .referrals import check_referral
from .render import check_text, format_value, verdicts_text
from .results import (
    CHECK_CONTINUED,
    FIRST_QUESTION,
    FORGED,
    GONE,
    NO_CHECK,
    NO_OFFER,
    NO_SCREENING,
    NOT_OPEN,
    NOTHING_TICKED,
    OUTDATED,
    PAUSED,
    PROTOCOL_BROKEN,
    PROTOCOL_CHANGED,
    PROTOCOL_MISSING,
    REFERRAL_TAKEN,
    STALE,
    Asked,
    Cancelled,
    Checked,
    Choose,
    Details,
    Early,
    Finished,
    Forgotten,
    Invalid,
    Listing,
    Problem,
    Redrawn,
    Refused,
    Results,
    Resumed,
    Retired,
    Started,
    Status,
    Unusual,
)
from .session import ProtocolChanged, Session, new_id, utc_now
from .storage import Store, Tx, expiry, ledger, outbox, owners, sessions
from .storage.ledger import Channel
from .storage.outbox import Undelivered
from .storage.sessions import OpenScreening
from .verdict import unusual
from .words import REFERRAL_REFUSED

TERMINAL = 0  # the owner of terminal screenings (a Telegram chat id is never 0)
DAY = 86_400  # seconds; Telegram keeps updates not fetched for 24 hours
DEFAULT_LIFETIME = timedelta(hours=72)  # SCREEN_BOT_SESSION_TTL_HOURS's default
NO_REFERRAL = frozenset({"none", "no", "skip", "no referral", "without"})
NO_REFERRAL_SHOWN = "(none)"
ALL_PROTOCOLS = "all"

Engine = BaseEngine[Any]  # one protocol's engine, or a protocol set's (``all``)


def label(session: Session | OpenScreening) -> str:
    """How a screening is named to the user: its referral, else its id."""
    if isinstance(session, Session):
        return session.referral or session.id
    return session.referral or session.session_id


class ScreeningService:
    """Screenings of many owners (chats) on one database; see the module docstring."""

    def __init__(
        self,
        catalog: Catalog,
        db: Store,
        channel: Channel,
        *,
        outbox: bool = False,
        details: bool | None = None,
        zone: tzinfo = UTC,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> None:
        self.catalog, self.db, self.channel = catalog, db, channel
        self.outbox = outbox
        self.details = details  # None: each owner's /details setting (default off)
        self.zone = zone  # the site's (SCREEN_BOT_TIMEZONE): whose day a screening is dated
        # SCREEN_BOT_SESSION_TTL_HOURS: what this service saves unfinished (a screening, a
        # quick check, a verdict not delivered yet) expires that long after it was saved
        self.lifetime = lifetime

    def today(self) -> date:
        """The screening date of a screening or quick check starting now: the site's day."""
        return today(self.zone, utc_now())

    def coordinator(self, owner: int) -> str:
        return "cli" if self.channel == "cli" else str(owner)

    # -- starting and moving between screenings -------------------------------------------

    def start(
        self,
        owner: int,
        protocol_id: str | None = None,
        referral: str | None = None,
        *,
        ask_referral: bool = False,
    ) -> Results:
        """Start a screening (it becomes the active one; an open one is paused). With
        ``ask_referral`` and no referral, the referral code is asked first."""
        try:
            if referral is not None:
                check_referral(referral)
            engine = self.catalog.engine(protocol_id)
        except BadReferral as err:
            self._forget_text()
            return [Problem(err.message)]
        except ProtocolChoiceNeeded as several:
            return self._offer(owner, tuple(several.choices), referral)
        except ScreenBotError as err:
            return [Problem(err.message)]
        left_out = self._left_out(protocol_id, engine)
        with self.db.transaction() as tx:
            session = engine.start(referral, screened_on=self.today())
            return self._start(tx, owner, engine, session, ask_referral, left_out)

    def _offer(self, owner: int, choices: tuple[str, ...], referral: str | None) -> Results:
        """Offer the protocols. The offer is kept the way a quick check is, in its place
        (one per owner, the newest replacing the one before), so that one pick of it
        starts one screening (:meth:`start_offered`)."""
        with self.db.transaction() as tx:
            # refused now rather than after the choice
            if referral is not None and _taken(sessions.list_open(tx, owner), referral):
                return [Refused(REFERRAL_TAKEN, referral)]
            offer_id = secrets.token_hex(4)
            body = {"id": offer_id, "offer": list(choices), "referral": referral}
            owners.keep_check(tx, owner, json.dumps(body), utc_now(), lifetime=self.lifetime)
        return [Choose(choices, referral, offer_id)]

    def start_offered(self, owner: int, offer_id: str, protocol_id: str) -> Results:
        """Start the screening picked from the offer ``offer_id`` (:class:`Choose`), asking
        its referral code first unless the offer has one. Once: a second pick, or one
        from an offer replaced since (a newer offer or quick check), changes nothing."""
        with self.db.transaction() as tx:
            body = owners.check(tx, owner)
            kept = json.loads(body) if body else None
            if (
                not isinstance(kept, dict)
                or kept.get("id") != offer_id
                or protocol_id not in kept.get("offer", ())
            ):
                return [Refused(NO_OFFER)]
            try:
                engine = self.catalog.engine(protocol_id)
            except ScreenBotError as err:
                return [Problem(err.message)]
            session = engine.start(kept["referral"], screened_on=self.today())
            left_out = self._left_out(protocol_id, engine)
            started = self._start(tx, owner, engine, session, True, left_out)
            if not isinstance(started[0], Refused):  # a refused one may be picked later
                owners.drop_check(tx, owner)
            return started

    def _start(
        self,
        tx: Tx,
        owner: int,
        engine: Engine,
        session: Session,
        ask_referral: bool,
        left_out: tuple[str, ...] = (),
    ) -> Results:
        open_ = sessions.list_open(tx, owner)
        referral = session.referral
        if referral and _taken(open_, referral):
            return [Refused(REFERRAL_TAKEN, referral)]
        session.awaiting_referral = ask_referral and referral is None
        paused = next((o for o in open_ if o.active), None)
        results: Results = []
        if paused is not None:
            results += self._retire(tx, owner, paused.session_id, "dropped")
        if not session.awaiting_referral:
            engine.fill(session)  # pre-filled answers up to the first question to ask
        # the random id may be taken by one of the owner's open screenings: saved over it,
        # that one would be lost without a word
        while not sessions.add(tx, owner, session, lifetime=self.lifetime):
            session.id = new_id()
        results.append(
            Started(
                label(session),
                engine.protocol.id,
                engine.protocol.version,
                engine.protocol.title,
                label(paused) if paused else None,
                left_out,
            )
        )
        if session.awaiting_referral:
            return [*results, referral_asked(session)]
        return results + self._after_change(tx, owner, engine, session)

    def resume(self, owner: int, wanted: str) -> Results:
        """Make the open screening with this referral (or id) the active one and show its
        question again (the copy on screen, if it is the active one already, is retired).
        It counts as use: the screening's lifetime starts again."""
        with self.db.transaction() as tx:
            match = _named(tx, owner, wanted)
            if match is None:
                logged = ledger.latest_screening(tx, self.coordinator(owner), wanted)
                return [Refused(NOT_OPEN, wanted, records=tuple(logged))]
            session = sessions.get(tx, owner, match.session_id)
            assert session is not None
            engine = self._engine_for(tx, owner, session)  # the active one stays, if refused
            if isinstance(engine, Refused):
                return [engine]
            results: Results = []
            current = sessions.active(tx, owner)
            if current is not None:
                results += self._retire(tx, owner, current.id, "dropped")
            sessions.activate(tx, owner, match.session_id)
            _touch(tx, owner, session, self.lifetime)
            asked = self._ask(tx, owner, engine, session)
            return [*results, Resumed(label(session)), *_waiting_value(session, asked), asked]

    def status(self, owner: int, *, to: Asked | None = None) -> Results:
        """Where the active screening (or the one ``to`` asks) stands: its current question,
        shown again. It counts as use: the screening's lifetime starts again."""

        def show(tx: Tx, engine: Engine, session: Session) -> Results:
            _touch(tx, owner, session, self.lifetime)
            retired = self._retire(tx, owner, session.id, "dropped")
            asked = self._ask(tx, owner, engine, session)
            return [*retired, Status(len(session.history)), *_waiting_value(session, asked), asked]

        return self._on_active(owner, show, to)

    def unshown(self, owner: int) -> Results:
        """The active screening's current question when it was never delivered (its send
        failed), to send again; else nothing."""
        with self.db.transaction() as tx:
            session = sessions.active(tx, owner)
            return [] if session is None else self._unshown(tx, owner, session, first=True)

    def list_open(self, owner: int) -> Results:
        return [Listing(tuple(sessions.list_open(self.db.read(), owner)))]

    def shown(
        self,
        owner: int,
        session_id: str,
        message_id: int | None,
        step: int | None = None,
        after: int | None = None,
        at: int | None = None,
    ) -> None:
        """Remember which message shows the session's current question.

        With ``step`` (the :class:`Asked` step delivered) typed input is checked against
        it; ``after`` is the chat's newest update received when it was delivered, ``at``
        when it was sent (unix seconds, on the clock that dates the input: the Bot API's).
        """
        # Safe to lose in a power cut: the typed-input guard then shows the question again.
        with self.db.transaction(durable=False) as tx:
            if step is None or message_id is None:
                sessions.set_message(tx, owner, session_id, message_id)
            else:
                shown = sessions.Shown(step, after, at)
                sessions.set_shown(tx, owner, session_id, message_id, shown)

    def where(self, owner: int) -> tuple[int, int] | None:
        """The active screening's progress (question n of m), or None; never writes."""
        session = sessions.active(self.db.read(), owner)
        if session is None:
            return None
        try:
            return self.catalog.engine(session.protocol_id).progress(session)
        except ScreenBotError:
            return None

    def logged_since(self, owner: int, referral: str, since: datetime) -> list[int]:
        """The numbers of the owner's log records of ``referral`` since ``since``; never
        writes."""
        return ledger.logged_since(self.db.read(), self.coordinator(owner), referral, since)

    def question_message(self, owner: int) -> int | None:
        """The message showing the active screening's current question, if known; never
        writes."""
        read = self.db.read()
        session = sessions.active(read, owner)
        return None if session is None else sessions.message(read, owner, session.id)

    def sent(self, delivery: int, messages: int) -> None:
        """The first ``messages`` of a verdict sent in several were sent: a send that fails
        later goes on from the next (safe to lose: those are then sent again)."""
        with self.db.transaction(durable=False) as tx:
            outbox.sent(tx, delivery, messages)

    def delivered(self, delivery: int) -> None:
        """A ``Finished`` verdict kept for delivery was sent: forget it."""
        # Safe to lose in a power cut: the verdict is then sent once more after the restart.
        with self.db.transaction(durable=False) as tx:
            outbox.delivered(tx, delivery)

    def undelivered(self) -> list[Undelivered]:
        """Verdicts decided but not sent before a crash (``outbox=True``), oldest first."""
        return outbox.undelivered(self.db.read())

    # -- answers ----------------------------------------------------------------------------

    def answer(
        self,
        owner: int,
        text: str,
        arrived: int | None = None,
        sent_at: int | None = None,
        *,
        to: Asked | None = None,
    ) -> Results:
        """A typed answer to the active screening's current step (update ``arrived``, sent
        by the user at ``sent_at``, unix seconds), or to the question ``to`` only."""

        def typed(tx: Tx, engine: Engine, session: Session) -> Results:
            if session.awaiting_referral:
                return self._referral(tx, owner, engine, session, text)
            question = engine.question(session)
            if question is None:
                return self._after_change(tx, owner, engine, session)
            checklist = engine.checklist(session)
            try:
                if checklist is not None:
                    items = engine.step_items(session)
                    ticks = parse_checklist(checklist, len(items), text)
                    return self._apply_items(
                        tx, owner, engine, session, dict(zip(items, ticks, strict=True))
                    )
                value = parse_text(question, text, session.screened_on)
            except AnswerError as err:
                return [
                    *self._retire(tx, owner, session.id, "dropped"),
                    Invalid(str(err)),
                    self._ask(tx, owner, engine, session),
                ]
            return self._apply(tx, owner, engine, session, value)

        return self._on_shown(owner, arrived, sent_at, typed, to)

    def skip(
        self,
        owner: int,
        arrived: int | None = None,
        sent_at: int | None = None,
        *,
        to: Asked | None = None,
    ) -> Results:
        """Answer the current step (or the question ``to`` only) 'unknown' (every item of a
        checklist; no referral)."""

        def unknown(tx: Tx, engine: Engine, session: Session) -> Results:
            if session.awaiting_referral:
                return self._referral(tx, owner, engine, session, None)
            if engine.checklist(session) is not None:
                items = dict.fromkeys(engine.step_items(session))
                return self._apply_items(tx, owner, engine, session, items)
            return self._apply(tx, owner, engine, session, None)

        return self._on_shown(owner, arrived, sent_at, unknown, to)

    def press(
        self,
        owner: int,
        session_id: str,
        step: int,
        key: str,
        message_id: int | None = None,
        shown: Sequence[bool | None] | None = None,
    ) -> Results:
        """A button of step ``step`` of ``session_id`` (pressed on ``message_id``). A toggle
        or "done" applies to ``shown``, the ticks its message showed (one per item or
        choice), not to those saved: a redraw may have failed, or come late."""
        with self.db.transaction() as tx:
            session = sessions.get(tx, owner, session_id)
            active = sessions.active(tx, owner)
            if session is None:
                if message_id is not None and _shows_open(tx, owner, message_id):
                    return [Refused(FORGED)]  # data it was never sent: the message stays
                gone: Results = [Refused(GONE)]
                if message_id is not None:
                    gone.append(Retired(message_id, "dropped"))
                return gone
            if active is None or active.id != session.id:
                return [self._on_hold(session) or Refused(PAUSED)]
            if session.step != step:  # and the current question again if it was never sent
                stale: Results = [Refused(STALE)]
                if message_id is not None and message_id != sessions.message(tx, owner, session_id):
                    # e.g. a copy of an answered question that a send retried after a timeout
                    # left behind: it loses its buttons (the one tracked was retired)
                    stale.append(Retired(message_id, "dropped"))
                return [*stale, *self._unshown(tx, owner, session)]
            loaded = self._engine_for(tx, owner, session)
            if isinstance(loaded, Refused):
                return [loaded]
            engine = loaded
            question = engine.question(session)
            if question is None:
                return [Refused(GONE)]
            if message_id is not None:  # the user sees this message: it is the one to edit
                sessions.set_message(tx, owner, session.id, message_id)
            if session.awaiting_referral:
                if key == UNKNOWN:
                    return self._referral(tx, owner, engine, session, None)
                return [Refused(FIRST_QUESTION if key == BACK else FORGED)]
            if key == BACK:
                return self._back(tx, owner, engine, session)
            if key == CONFIRM:
                pending = session.pending  # what engine.confirm records
                if pending is None or not engine.confirm(session):
                    return [Refused(FORGED)]
                return self._answered(tx, owner, engine, session, question, pending.value)
            if key == DONE or key[:1] == "t":  # from the ticks shown, not those saved
                if shown is None:  # an older keyboard: nothing applied, the step shown again
                    return [
                        Refused(OUTDATED),
                        Redrawn(message_id, self._ask(tx, owner, engine, session)),
                    ]
                if not engine.set_ticks(session, shown):
                    return [Refused(FORGED)]
            if key[:1] == "t" and key[1:].isdigit():
                if not engine.toggle(session, int(key[1:])):
                    return [Refused(FORGED)]
                sessions.save(tx, owner, session, lifetime=self.lifetime)
                return [Redrawn(message_id, self._ask(tx, owner, engine, session))]
            checklist = engine.checklist(session)
            if checklist is not None:
                items = engine.step_items(session)
                ticks: dict[str, bool | None]
                if key == ALL:
                    ticks = dict.fromkeys(items, checklist.default)
                elif key == DONE:
                    ticks = engine.item_values(session)
                elif key == UNKNOWN:
                    ticks = dict.fromkeys(items)
                else:
                    return [Refused(FORGED)]
                return self._apply_items(tx, owner, engine, session, ticks)
            if question.type == "choice" and question.multiple and key in (ALL, DONE):
                chosen = engine.chosen(session) if key == DONE else []
                if key == DONE and not chosen:
                    return [Refused(NOTHING_TICKED)]
                return self._apply(tx, owner, engine, session, tuple(chosen))
            valid, value = button_value(question, key)
            if not valid:
                return [Refused(FORGED)]
            return self._apply(tx, owner, engine, session, value)

    # -- quick checks and settings ----------------------------------------------------------

    def check(self, owner: int, text: str, protocol_id: str | None = None) -> Results:
        """A quick check of known values (one message) against a protocol, or against
        every protocol when none is named and there are several; kept for
        :meth:`continue_check` when something was read."""
        try:
            engine = self.catalog.engine(protocol_id)
        except ProtocolChoiceNeeded:
            engine = self.catalog.engine(ALL_PROTOCOLS)
        except ScreenBotError as err:
            return [Problem(err.message)]
        from .quick_check import judge, read

        left_out = self._left_out(protocol_id, engine)

        protocol = engine.protocol
        day = self.today()
        reading = read(protocol, text, day)
        judged = tuple(judge(protocol, reading, day))
        # decided as continuing will: judgment, confirm and unusual values are asked too
        given = {g.variable: stored(g.value) for g in reading.given}
        trial = engine.start(screened_on=day, prefilled=given)
        engine.fill(trial)
        decided = engine.finished(trial)
        check_id = None
        if reading.given or reading.referral:
            check_id = secrets.token_hex(4)
            body = {
                "id": check_id,
                "protocol": protocol.id,
                "sha256": protocol.sha256,
                "referral": reading.referral,
                "values": given,
            }
            with self.db.transaction() as tx:
                owners.keep_check(tx, owner, json.dumps(body), utc_now(), lifetime=self.lifetime)
        if any(unread.why == REFERRAL_REFUSED for unread in reading.unread):
            self._forget_text()
        text = "\n\n".join([check_text(reading, judged), *(f"⚠ {line}" for line in left_out)])
        return [Checked(text, judged, check_id, decided, left_out)]

    def _forget_text(self) -> None:
        """Mark the update being handled done (its text is dropped) and empty the write-ahead
        log at once: the text held a referral refused as a name or a date of birth, which
        is "never kept" (the referral prompt does the same in its own transaction)."""
        with self.db.transaction() as tx:
            tx.on_commit(self.db.forget_deleted)

    def continue_check(self, owner: int, check_id: str) -> Results:
        """Start a screening from the owner's latest quick check: its values are filled in
        and only what is missing is asked (the referral first, unless the check had one)."""
        with self.db.transaction() as tx:
            body = owners.check(tx, owner)
            kept = json.loads(body) if body else None
            if not isinstance(kept, dict) or kept.get("id") != check_id or "offer" in kept:
                return [Refused(NO_CHECK)]
            if kept.get("continued"):
                return [Refused(CHECK_CONTINUED)]
            try:
                engine = self.catalog.engine(kept["protocol"])
            except ScreenBotError:
                return [Refused(PROTOCOL_CHANGED)]
            if engine.protocol.sha256 != kept["sha256"]:
                owners.drop_check(tx, owner)
                return [Refused(PROTOCOL_CHANGED)]
            session = engine.start(
                kept["referral"], screened_on=self.today(), prefilled=kept["values"]
            )
            left_out = self._left_out(kept["protocol"], engine)
            started = self._start(tx, owner, engine, session, True, left_out)
            if not isinstance(started[0], Refused):  # a refused one may be continued later
                continued = {"id": check_id, "continued": True}  # its values are not kept
                owners.keep_check(
                    tx, owner, json.dumps(continued), utc_now(), lifetime=self.lifetime
                )
            return started

    def set_details(self, owner: int, on: bool) -> Results:
        """Show criterion ids and variable names beside questions (kept per owner)."""
        with self.db.transaction() as tx:
            owners.set_details(tx, owner, on)
        return [Details(on)]

    def show_details(self, owner: int) -> bool:
        if self.details is not None:
            return self.details
        return bool(owners.details(self.db.read(), owner))

    def back(
        self,
        owner: int,
        arrived: int | None = None,
        sent_at: int | None = None,
        *,
        to: Asked | None = None,
    ) -> Results:
        """Back to the question answered last, forgetting its answer (from the question
        ``to`` only)."""

        def back(tx: Tx, engine: Engine, session: Session) -> Results:
            return self._back(tx, owner, engine, session)

        return self._on_shown(owner, arrived, sent_at, back, to)

    def restart(self, owner: int, *, to: Asked | None = None) -> Results:
        """Forget every answer of the active screening (or, from the question ``to`` only,
        of its screening) and begin again."""

        def again(tx: Tx, engine: Engine, session: Session) -> Results:
            retired = self._retire(tx, owner, session.id, "dropped")
            engine.restart(session)
            sessions.save(tx, owner, session, lifetime=self.lifetime)
            return [*retired, self._ask(tx, owner, engine, session)]

        return self._on_active(owner, again, to)

    # -- ending -----------------------------------------------------------------------------

    def cancel(self, owner: int, wanted: str | None = None, *, to: Asked | None = None) -> Results:
        """Cancel the active screening, or the open one with this referral (or id), or the
        one of the question ``to`` while it is at that question: only that one; nothing of
        it is kept. A label of none of the owner's open screenings changes nothing."""
        if not wanted:  # with none active: "no screening is open", not a paused one's notice
            return self._on_active(
                owner, lambda tx, _, session: self._drop(tx, owner, session), to, say_held=False
            )
        with self.db.transaction() as tx:
            match = _named(tx, owner, wanted)
            if match is None:
                return [Refused(NOT_OPEN, wanted)]
            current = sessions.active(tx, owner)
            if current is not None and current.id == match.session_id:
                loaded = self._active(tx, owner)
                return [loaded] if isinstance(loaded, Refused) else self._drop(tx, owner, loaded[1])
            retired = self._retire(tx, owner, match.session_id, "cancelled")
            sessions.delete(tx, owner, match.session_id)
            tx.on_commit(self.db.forget_deleted)  # "nothing of it is kept": not in the WAL
            going_on = None if current is None else label(current)
            return [*retired, Cancelled(label(match), going_on)]

    def _drop(self, tx: Tx, owner: int, session: Session) -> Results:
        """Cancel the screening ``session`` (the active one, or the one addressed)."""
        retired = self._retire(tx, owner, session.id, "cancelled")
        sessions.delete(tx, owner, session.id)
        tx.on_commit(self.db.forget_deleted)  # "nothing of it is kept": not in the WAL
        return [*retired, Cancelled(label(session))]

    def forget(self, owner: int) -> Results:
        """Delete every unfinished screening of this owner (finished ones stay in the log)."""
        with self.db.transaction() as tx:
            owners.drop_check(tx, owner)
            forgotten: Results = [Forgotten(sessions.forget(tx, owner))]
        self.db.forget_deleted()
        return forgotten

    def expire(self, older_than: timedelta) -> int:
        """Delete unfinished screenings (and quick checks, undelivered verdicts) unchanged
        for ``older_than``; return how many screenings."""
        return expiry.expire(self.db, older_than)

    def protocols(self) -> list[tuple[str, str, str]]:
        """(id, version, title) of every protocol found."""
        return [(p.id, p.version, p.title) for p in self.catalog.protocols.values()]

    def choices(self) -> list[str]:
        """What /screen may name: every protocol id, and ``all`` when there are several."""
        return self.catalog.choices()

    def broken_ids(self) -> list[str]:
        """The ids of the protocols whose files are broken: named, they are told so."""
        return self.catalog.broken_ids()

    def broken(self) -> list[str]:
        """Each dialog file that could not be loaded, with its first problem; each dialogs
        directory that does not exist; and the shared variables that keep the protocols
        from being screened together."""
        found = [*self.catalog.broken().values(), *self.catalog.missing(), *self.catalog.conflicts]
        return [str(p) for p in found]

    def _left_out(self, named: str | None, engine: Engine) -> tuple[str, ...]:
        """The broken files left out of a screening of every protocol: ``all``, or the only
        valid one, taken because none was named (see ``Catalog.left_out``)."""
        every = named is None or engine.protocol.id == ALL_PROTOCOLS
        return tuple(self.catalog.left_out()) if every else ()

    # -- steps (inside the caller's transaction) -------------------------------------------

    def _apply(self, tx: Tx, owner: int, engine: Engine, session: Session, value: Any) -> Results:
        question = engine.question(session)
        assert question is not None
        unusual = engine.answer(session, value)
        if unusual:  # nothing recorded: the value waits for a confirmation
            dropped = self._retire(tx, owner, session.id, "dropped")
            sessions.save(tx, owner, session, lifetime=self.lifetime)
            return [*dropped, Unusual(unusual), self._ask(tx, owner, engine, session)]
        return self._answered(tx, owner, engine, session, question, value)

    def _answered(
        self, tx: Tx, owner: int, engine: Engine, session: Session, question: Question, value: Any
    ) -> Results:
        """After ``question`` was answered ``value``: its message shows the answer, and on."""
        message_id = sessions.message(tx, owner, session.id)
        retired: Results = []
        if message_id is not None:
            retired.append(Retired(message_id, "answered", question, value))
        return retired + self._after_change(tx, owner, engine, session)

    def _after_change(self, tx: Tx, owner: int, engine: Engine, session: Session) -> Results:
        """Save an open screening and ask on; log a finished one and drop it, together."""
        if not engine.finished(session):
            sessions.save(tx, owner, session, lifetime=self.lifetime)
            asked = self._ask(tx, owner, engine, session)
            refused = _refusal_note(session)
            return [*(_waiting_value(session, asked) or refused), asked]
        refused = _refusal_note(session)  # a value the dialog did not reach, refused now
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
        delivery = outbox.put(tx, owner, text, lifetime=self.lifetime) if self.outbox else None
        return [*refused, Finished(verdicts, numbers, text, screening_id, delivery)]

    def _apply_items(
        self, tx: Tx, owner: int, engine: Engine, session: Session, ticks: dict[str, Any]
    ) -> Results:
        """Answer a checklist step (every item) and go on."""
        message_id = sessions.message(tx, owner, session.id)
        shown = tuple((engine.protocol.questions[v], ticks[v]) for v in engine.step_items(session))
        engine.answer_items(session, ticks)
        retired: Results = []
        if message_id is not None:
            retired.append(Retired(message_id, "answered", answers=shown))
        return retired + self._after_change(tx, owner, engine, session)

    def _referral(
        self, tx: Tx, owner: int, engine: Engine, session: Session, text: str | None
    ) -> Results:
        """The referral code typed (None or a 'skip' word: none), then question 1."""
        referral = None
        if (
            text
            and text.strip()
            and typed_form(text) not in NO_REFERRAL
            and not is_unknown_text(text)
        ):
            try:
                referral = check_referral(text.strip())
            except BadReferral as err:
                dropped = self._retire(tx, owner, session.id, "dropped")
                # "never kept": the text it came in (an update's, dropped as this commits)
                # leaves the write-ahead log too
                tx.on_commit(self.db.forget_deleted)
                return [*dropped, Invalid(err.message), referral_asked(session)]
            if _taken(sessions.list_open(tx, owner), referral, session.id):
                dropped = self._retire(tx, owner, session.id, "dropped")
                return [*dropped, Refused(REFERRAL_TAKEN, referral), referral_asked(session)]
        message_id = sessions.message(tx, owner, session.id)
        session.referral = referral
        session.awaiting_referral = False
        session.step += 1
        session.updated_at = utc_now()
        engine.fill(session)
        retired: Results = []
        if message_id is not None:
            shown = referral or NO_REFERRAL_SHOWN
            retired.append(Retired(message_id, "answered", REFERRAL_QUESTION, shown))
        return retired + self._after_change(tx, owner, engine, session)

    def _ask(self, tx: Tx, owner: int, engine: Engine, session: Session) -> Asked:
        """The current step, worded with the owner's /details setting."""
        if session.awaiting_referral:
            return referral_asked(session)
        details = self.details if self.details is not None else bool(owners.details(tx, owner))
        return step_asked(engine, session, details)

    def _back(self, tx: Tx, owner: int, engine: Engine, session: Session) -> Results:
        if not engine.back(session):
            return [Refused(FIRST_QUESTION)]
        retired = self._retire(tx, owner, session.id, "back")
        sessions.save(tx, owner, session, lifetime=self.lifetime)
        return [*retired, self._ask(tx, owner, engine, session)]

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
        self,
        owner: int,
        arrived: int | None,
        sent_at: int | None,
        step: Callable[[Tx, Engine, Session], Results],
        to: Asked | None = None,
    ) -> Results:
        """:meth:`_on_active` for typed input: only when it answers the question delivered.

        Input is for the question on screen only if it arrived after that question was
        sent (by update id: the question was sent after it arrived) and was not sent by
        the user a whole second before it (by date: input that reached the bot late, e.g.
        typed while the bot was down and handled after the restart showed a new question).
        A date a day or more older is not trusted: input is not held that long, so it is a
        clock or a Bot API that does not date messages, and refusing would refuse everything.
        Input sent a day or more after the question came after it whatever its update id:
        after a week without updates the Bot API starts its ids anew, maybe lower.
        """

        def checked(tx: Tx, engine: Engine, session: Session) -> Results:
            if arrived is None:
                return step(tx, engine, session)
            shown = sessions.shown(tx, owner, session.id)
            if shown.step != session.step:
                return [Early(reshown=True), *self._reask(tx, owner, engine, session)]
            days_later = shown.at is not None and sent_at is not None and sent_at - shown.at >= DAY
            if shown.after is not None and arrived <= shown.after and not days_later:
                return [Early(reshown=False)]
            if shown.at is not None and sent_at is not None and 0 < shown.at - sent_at < DAY:
                return [Early(reshown=False)]
            return step(tx, engine, session)

        return self._on_active(owner, checked, to)

    def _unshown(self, tx: Tx, owner: int, session: Session, *, first: bool = False) -> Results:
        """The current question, to send again, when it was never delivered; else nothing.
        With ``first`` (a front end that says what it delivered: the bot's sweep), also a
        screening none of whose questions was delivered."""
        shown_step = sessions.shown(tx, owner, session.id).step
        if shown_step == session.step or (shown_step is None and not first):
            return []  # delivered (or never tracked: a front end that does not say)
        engine = self._engine_for(tx, owner, session)
        return [engine] if isinstance(engine, Refused) else self._reask(tx, owner, engine, session)

    def _reask(self, tx: Tx, owner: int, engine: Engine, session: Session) -> Results:
        return [
            *self._retire(tx, owner, session.id, "dropped"),
            self._ask(tx, owner, engine, session),
        ]

    def _on_active(
        self,
        owner: int,
        step: Callable[[Tx, Engine, Session], Results],
        to: Asked | None = None,
        *,
        say_held: bool = True,
    ) -> Results:
        """Run ``step`` on the owner's active screening, or on the screening of the question
        ``to`` while it is at that question, in one transaction. ``say_held``: with none
        active, say why the one used last is paused by its file (see :meth:`_held`)."""
        with self.db.transaction() as tx:
            if to is None:
                loaded = self._active(tx, owner, say_held=say_held)
            else:
                loaded = self._addressed(tx, owner, to.session_id, to.step)
            return [loaded] if isinstance(loaded, Refused) else step(tx, *loaded)

    def _active(
        self, tx: Tx, owner: int, *, say_held: bool = True
    ) -> tuple[Engine, Session] | Refused:
        """The owner's active screening and its engine, or why there is none."""
        session = sessions.active(tx, owner)
        if session is None:
            held = self._held(tx, owner) if say_held else None
            return held or Refused(NO_SCREENING)
        engine = self._engine_for(tx, owner, session)
        return engine if isinstance(engine, Refused) else (engine, session)

    def _addressed(
        self, tx: Tx, owner: int, session_id: str, step: int
    ) -> tuple[Engine, Session] | Refused:
        """The owner's open screening ``session_id`` and its engine while it is at ``step``
        (the step whose question was shown), active or not: a button's check (:meth:`press`)
        for a front end that addresses what it showed. Else why not: GONE, STALE (it moved
        on: an answer or back in another dialog)."""
        session = sessions.get(tx, owner, session_id)
        if session is None:
            return Refused(GONE)
        if session.step != step:
            return Refused(STALE)
        engine = self._engine_for(tx, owner, session)
        return engine if isinstance(engine, Refused) else (engine, session)

    def _engine_for(self, tx: Tx, owner: int, session: Session) -> Engine | Refused:
        """The session's engine; a session whose dialog file changed is removed. One whose
        file is broken (an edit not finished) or missing (an editor that saves by renaming
        the old file away first, a file moved out and back) is kept, paused, for when the
        file is back: only then can it be told whether the protocol changed."""
        engine = self._checked_engine(session)
        if engine is not None:
            return engine
        kept = self._kept(session)
        if kept is not None:
            sessions.pause(tx, owner, session.id)
            return kept
        sessions.delete(tx, owner, session.id)
        return Refused(PROTOCOL_CHANGED, label(session))  # which patient to start again

    def _checked_engine(self, session: Session) -> Engine | None:
        """The engine of ``session``'s protocol if its dialog file is there, valid and the one
        the screening began under; else None."""
        try:
            engine = self.catalog.engine(session.protocol_id)
            session.check_protocol(engine.protocol)
        except (ProtocolNotFound, ProtocolChanged, ProtocolSetError):
            return None
        return engine

    def _kept(self, session: Session) -> Refused | None:
        """Why ``session`` cannot go on while it is kept: a file of its protocols is broken,
        or one it began with is in no file now. None: they are all there (changed or not)."""
        why = self.catalog.why_broken(session.protocol_id)
        if why is not None:
            return Refused(PROTOCOL_BROKEN, label(session), why=why)
        # an ``all`` screening stored before its members were kept: a changed set ends it
        began = (
            session.protocol_members or []
            if session.protocol_id == ALL_PROTOCOLS
            else [session.protocol_id]
        )
        missing = [p for p in began if p not in self.catalog.protocols]
        if missing:
            return Refused(PROTOCOL_MISSING, label(session), why=", ".join(missing))
        return None

    def _held(self, tx: Tx, owner: int) -> Refused | None:
        """With no active screening: why the open one used last cannot go on, if its file is
        broken or missing (an answer or /status then says it is kept, not that there is none);
        None when it can, or there is none. Only that one: an older one is not what the user
        was at. Nothing changes: one of a changed file ends when used."""
        open_ = sessions.list_open(tx, owner)  # the one used last first
        session = sessions.get(tx, owner, open_[0].session_id) if open_ else None
        return None if session is None else self._on_hold(session)

    def _on_hold(self, session: Session) -> Refused | None:
        """Why ``session`` is paused by its file (broken or missing); None if it can go on
        or its file changed."""
        return None if self._checked_engine(session) is not None else self._kept(session)


def _named(tx: Tx, owner: int, wanted: str | None) -> OpenScreening | None:
    """The owner's open screening with this id, else with this referral, if any."""
    if not wanted:
        return None
    open_ = sessions.list_open(tx, owner)
    by_id = (o for o in open_ if o.session_id == wanted)
    return next(by_id, None) or next((o for o in open_ if o.referral == wanted), None)


def _taken(open_: list[OpenScreening], referral: str, other_than: str | None = None) -> bool:
    """Whether an open screening (but ``other_than``) is labelled ``referral`` already: its
    referral, or its id, which names one without a referral in /list and /resume."""
    return any(referral in (o.referral, o.session_id) for o in open_ if o.session_id != other_than)


def _touch(tx: Tx, owner: int, session: Session, lifetime: timedelta) -> None:
    """The screening is in use: its lifetime (the TTL expiry goes by) starts again."""
    session.updated_at = utc_now()
    sessions.save(tx, owner, session, lifetime=lifetime, activate=False)


def _waiting_value(session: Session, asked: Asked) -> Results:
    """The warning on the value ``asked`` waits to have confirmed (an unusual one typed, or
    pre-filled by a quick check), so that it is shown again with its question: the same
    value typed again confirms it, which must never happen unseen (after a /resume)."""
    pending = session.pending
    if pending is None or pending.variable != asked.question.variable:
        return []
    return [Unusual(unusual(asked.question, pending.value))]


def _refusal_note(session: Session) -> Results:
    """The line saying that a quick check's value was refused now (see ``Engine.fill``)."""
    refused = session.take_refusal()
    if refused is None:
        return []
    value = format_value(refused.value)
    return [
        Invalid(f"{refused.variable} {value} from the quick check is not used: {refused.reason}")
    ]


def _shows_open(tx: Tx, owner: int, message_id: int) -> bool:
    """Whether ``message_id`` shows the question of one of the owner's open screenings."""
    open_ = sessions.list_open(tx, owner)
    return any(sessions.message(tx, owner, o.session_id) == message_id for o in open_)
