"""From raw Bot API updates to handled ones: parse, keep strangers out, store, then handle.

Used by the poller and by the webhook alike. Each update is parsed on its own: a
malformed one is skipped (logged by its id only) and still confirmed, so it can neither
stop nor spin the poller. Updates from strangers go to the :class:`~.gate.StrangerGate`
and are never stored. The rest are written to the inbox (:mod:`screen_bot.storage.inbox`),
without the names Telegram sends with them (:func:`stored_form`), in one transaction,
and only then does the caller confirm them to the Bot API. When the inbox cannot be
written (a full disk), the updates are handled at once instead, before they are
confirmed, so the user still hears that nothing was saved.

Stored updates are handled from the inbox, a chat at a time: a chat's job takes the
chat's lock on the store (:meth:`~screen_bot.storage.db.Store.try_lock`), handles every
update of the chat still waiting, oldest first, each marked done in the transaction of the
change it caused, and lets the lock go. With PostgreSQL several bot processes share the
inbox: whichever holds a chat's lock handles its updates, in update-id order, and the
other one waits until they are done (an update it stored is then handled already). A
process that dies loses its locks with its connection; what it left waiting is handled
by the next update of that chat, or within seconds by the :meth:`Intake.sweep` of any
process still running.

A verdict whose send failed (an outage, a user who blocked the bot, a crash) stays in the
outbox: the chat's next update first delivers it, then is handled, and the sweep tries it
again meanwhile, less often each time (:class:`Retries`). A question whose send failed
after its answer was saved is sent again by the sweep the same way, and at restart.
Neither goes to a chat no longer served (:func:`~.gate.served`: its user was removed from
the allowed list since): it is never queued nor tried, and expires unsent.

After a restart in polling mode, stored updates wait until the first ``getUpdates`` has
brought in what Telegram kept meanwhile (:attr:`Intake.caught_up`): an answer typed while
the bot was down then counts as received before the questions the restart goes on to
show, so it is never taken for one of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from telegram import Update

from ...clock import CLOCK_AHEAD
from ...errors import StorageFailed
from ...session import utc_now
from ...storage import Store, inbox, outbox, sessions
from ...storage.inbox import Received
from ...storage.outbox import Undelivered
from .bot import ScreeningBot
from .gate import plain_stranger, refusal, telegram_id
from .ordering import ChatQueues, Work
from .turn import App

logger = logging.getLogger(__name__)
MAX_UPDATE_ID = 2**53  # update ids are 32-bit today; anything past this is not one
PRUNE_EVERY = 3600.0  # seconds between forgetting handled updates older than two days
SWEEP_EVERY = 2.0  # seconds between looks for work another process left (or could not do)
LEFT_FOR = timedelta(seconds=2)  # an update waiting this long is anyone's to handle
LOCK_WAIT_FIRST, LOCK_WAIT_MAX = 0.02, 0.5  # seconds between tries of a busy chat's lock
RETRY_FIRST, RETRY_MAX = 4.0, 600.0  # seconds before the sweep sends a failed send again
SKEW_LIMIT = timedelta(minutes=5)  # Telegram's date of a message against the server's clock
SKEW_WARN_EVERY = 3600.0  # seconds between warnings that the server's clock is off


# What Telegram sends with each user, chat or forward and no handler reads: names, the
# username, the language; a shared contact's number, a file's name. Replaced, not dropped: some are
# required (User.first_name), and the update must read back as it came. A forward's origin
# comes in ``forward_origin`` since Bot API 7.0, and in fields of its own from an older
# server (a self-hosted one, a relay): ``forward_from`` (a user) and ``forward_from_chat``
# (a chat) are stripped as users and chats are, the two names here.
PERSONAL = frozenset(
    {"first_name", "last_name", "username", "title", "sender_user_name", "author_signature"}
    | {"forward_sender_name", "forward_signature"}
    | {"language_code", "phone_number", "vcard", "file_name"}
)
PLACEHOLDER = "-"
NOT_STORED = frozenset({"quote", "external_reply", "caption", "caption_entities"})
REPLY_KEPT = ("message_id", "date", "chat", "from")  # of a message replied to: what is read


def stored_form(item: Any) -> Any:
    """The update as the inbox keeps it: what the handlers read, without the names in it
    or the text of the message it replies to (a reply is told by its id and sender)."""
    if isinstance(item, list):
        return [stored_form(value) for value in item]
    if not isinstance(item, dict):
        return item
    kept = {}
    for key, value in item.items():
        if key in NOT_STORED:
            continue
        if key in PERSONAL and isinstance(value, str):
            kept[key] = PLACEHOLDER
        elif key == "reply_to_message" and isinstance(value, dict):
            kept[key] = stored_form({k: value[k] for k in REPLY_KEPT if k in value})
        else:
            kept[key] = stored_form(value)
    return kept


# A command as Telegram marks one (tdlib's match_bot_commands): "/" and up to 64 letters,
# digits or "_", maybe "@" and a bot's username, then no word character, "/", "<" or ">"
COMMAND = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>@])")


def with_command_entity(item: Any) -> Any:
    """The update with a message's leading command marked as Telegram marks it (a
    ``bot_command`` entity), when the message came with no entities at all: a Bot API that
    leaves them out (a test server, a relay) would otherwise have every command read as an
    answer. Entities that were sent are kept as they are."""
    message = item.get("message") if isinstance(item, dict) else None
    if not isinstance(message, dict) or "entities" in message:
        return item
    text = message.get("text")
    found = COMMAND.match(text) if isinstance(text, str) else None
    if found is None:
        return item
    entity = {"type": "bot_command", "offset": 0, "length": found.end()}
    return {**item, "message": {**message, "entities": [entity]}}


def update_id_of(item: object) -> int | None:
    uid = item.get("update_id") if isinstance(item, dict) else None
    if isinstance(uid, int) and not isinstance(uid, bool) and 0 <= uid < MAX_UPDATE_ID:
        return uid
    return None


def check_ids(update: Update) -> None:
    """Raise ValueError unless the user and the chat of ``update`` have ids as Telegram
    sends them: python-telegram-bot takes any JSON value for one, and the gate, the inbox
    and the handlers key on them (a list was unhashable: the poller died on it, unconfirmed,
    at every restart)."""
    for who in (update.effective_user, update.effective_chat):
        if who is not None and not telegram_id(who.id):
            raise ValueError("not a Telegram user or chat id")


def chat_lock(chat_id: int) -> str:
    return f"screen-bot/chat/{chat_id}"


class ClockSkew:
    """Warns, at most once an hour, when Telegram's date of a newly received message and
    the server's clock differ by more than SKEW_LIMIT: "today" (each screening's date)
    and every date window come from the server's clock, so a clock a day off screens every
    patient on the wrong day, and nothing else would show it."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._warned: float | None = None

    def see(self, sent: datetime, now: datetime) -> None:
        ahead = now - sent  # the server's clock ahead of Telegram's date (negative: behind)
        if abs(ahead) <= SKEW_LIMIT:
            return
        if self._warned is not None and self._clock() - self._warned < SKEW_WARN_EVERY:
            return
        self._warned = self._clock()
        minutes = round(abs(ahead).total_seconds() / 60)
        logger.warning(
            "the server's clock is %d h %02d min %s Telegram's date of the newest message "
            "received%s: 'today' (each screening's date) and every date window are taken "
            "from the server's clock, so screenings may be dated wrong; set the clock "
            "right (NTP, e.g. timedatectl set-ntp true)",
            minutes // 60,
            minutes % 60,
            "ahead of" if ahead > timedelta(0) else "behind",
            " (unless the message waited that long at Telegram, the bot down or offline)"
            if ahead > timedelta(0)
            else "",
        )


class Retries:
    """When the sweep may send something again: at once the first time, then after
    ``RETRY_FIRST`` seconds, twice as long each time after, at most ``RETRY_MAX`` (a user who
    blocked the bot gets a try every few minutes, not one every sweep)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._next: dict[Hashable, tuple[float, float]] = {}  # key -> (from when, then wait)

    def due(self, key: Hashable) -> bool:
        """Whether ``key`` may be tried now; if so, this try is counted."""
        now = self.clock()
        when, wait = self._next.get(key, (now, RETRY_FIRST))
        if now < when:
            return False
        self._next[key] = (now + wait, min(wait * 2, RETRY_MAX))
        return True

    def keep(self, keys: Iterable[Hashable]) -> None:
        """Forget every key but these (the rest were sent, or are gone)."""
        kept = set(keys)
        self._next = {key: due for key, due in self._next.items() if key in kept}


class Intake:
    def __init__(
        self,
        application: App,
        screening_bot: ScreeningBot,
        db: Store,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.application, self.screening_bot, self.db = application, screening_bot, db
        # what is stored and never handled is given up this long after (the service's)
        self.lifetime = screening_bot.service.lifetime
        self.queues = ChatQueues()
        self._unfinished: set[int] = set()  # handled, but the inbox could not be told
        self.retries = Retries(clock)  # the sweep's sends of verdicts and questions left
        self.skew = ClockSkew(clock)
        self._sending: set[Hashable] = set()  # those queued now
        self._pruned = -PRUNE_EVERY  # the first batch prunes: the inbox may be a week old
        screening_bot.received = self.newest
        # Cleared by the poller's owner until the first poll is in: stored updates wait.
        self.caught_up = asyncio.Event()
        self.caught_up.set()

    async def accept(self, raw: Sequence[Any]) -> int | None:
        """Take a batch of raw updates; return the offset that confirms them (or None)."""
        ids: list[int] = []
        keep: list[tuple[Received, Update]] = []
        allowed, gate = self.screening_bot.settings.allowed_users, self.screening_bot.gate
        username = self.application.bot.username
        for item in raw:
            uid = update_id_of(item)
            if uid is None:
                logger.warning("an update without a valid update_id was skipped")
                continue
            ids.append(uid)
            item = with_command_entity(item)
            plain = plain_stranger(item, allowed, username)
            if plain is not None:
                gate.refuse(plain)
                continue
            try:
                update = Update.de_json(item, self.application.bot)
                check_ids(update)
                body = json.dumps(stored_form(item))
                why = refusal(update, allowed, username)
            except Exception as err:  # noqa: BLE001 - any shape a crafted update takes
                logger.warning("update %d skipped: malformed (%s)", uid, type(err).__name__)
                continue
            if why is not None:
                gate.refuse(why)
                continue
            assert update.effective_chat is not None
            keep.append((Received(uid, update.effective_chat.id, body), update))
        sent = [u.message.date for _, u in keep if u.message is not None]
        if sent:  # a button's message is as old as the question it shows: not a clock's
            self.skew.see(max(sent), utc_now())
        if keep:
            await self._store_and_submit(keep)
        return max(ids) + 1 if ids else None

    async def _store_and_submit(self, keep: list[tuple[Received, Update]]) -> None:
        try:
            with self.db.transaction() as tx:
                # Pruned first: after a week without updates the Bot API may start its ids
                # anew, and one equal to an old handled update must not pass for it.
                if time.monotonic() - self._pruned > PRUNE_EVERY:
                    inbox.prune(tx)
                    self._pruned = time.monotonic()
                fresh = inbox.receive(tx, [r for r, _ in keep], lifetime=self.lifetime)
        except StorageFailed as err:
            logger.error("updates handled without the inbox: %s", err)
            await asyncio.gather(*(self._submit_unstored(u) for _, u in keep))
            return
        newest: dict[int, int] = {}
        for received in fresh:
            newest[received.chat_id] = max(received.update_id, newest.get(received.chat_id, 0))
        for chat_id, update_id in newest.items():
            self._drain_later(chat_id, update_id)

    def newest(self, chat_id: int) -> int | None:
        """The newest update received from the chat, by this process or another."""
        queued = self.queues.received(chat_id)
        try:
            stored = inbox.newest(self.db.read(), chat_id)
        except Exception as err:  # noqa: BLE001 - a read that fails only makes this coarser
            logger.warning("the inbox could not be read: %s", type(err).__name__)
            stored = None
        known = [n for n in (queued, stored) if n is not None]
        return max(known) if known else None

    def recover(self) -> int:
        """Queue what a crash or a stop left: updates stored but not handled, verdicts not
        sent, questions not sent after their answer was saved."""
        read = self.db.read()
        left = inbox.pending(read)
        for chat_id in dict.fromkeys(row.chat_id for row in left):
            self._drain_later(chat_id)
        verdicts = self.screening_bot.service.undelivered()
        now = utc_now()
        owners = sessions.unshown(read, now, ahead=now + CLOCK_AHEAD)
        for verdict in verdicts:
            self._send_again(("verdict", verdict.id), verdict.owner, self._delivery(verdict))
        for owner in owners:
            self._send_again(("question", owner), owner, self._reshow(owner))
        if left:
            logger.info("%d update(s) left by the last run are handled now", len(left))
        withheld = [
            o for o in [v.owner for v in verdicts] + owners if not self.screening_bot.serves(o)
        ]
        if withheld:
            logger.info(
                "%d verdict(s) or question(s) kept for users no longer authorised are not "
                "sent; they expire unsent",
                len(withheld),
            )
        return len(left)

    def sweep(self) -> int:
        """Queue the chats whose updates have waited a while and are not queued here (a
        process that died left them); send verdicts and questions left unsent again, when
        :class:`Retries` says it is time. Return how many chats."""
        now, read = utc_now(), self.db.read()
        # what a clock that was ahead stamped in the future is not left until it catches up
        before, ahead = now - LEFT_FOR, now + CLOCK_AHEAD
        chats = [
            chat_id
            for chat_id in inbox.chats_waiting(read, before, ahead)
            if self.queues.received(chat_id) is None
        ]
        for chat_id in chats:
            self._drain_later(chat_id)
        verdicts = outbox.undelivered(read, before, ahead)
        owners = sessions.unshown(read, before, ahead)
        self.retries.keep([("verdict", v.id) for v in verdicts] + [("question", o) for o in owners])
        for verdict in verdicts:
            self._send_again(("verdict", verdict.id), verdict.owner, self._delivery(verdict))
        for owner in owners:
            self._send_again(("question", owner), owner, self._reshow(owner))
        return len(chats)

    async def watch(self) -> None:
        """Sweep every SWEEP_EVERY seconds until cancelled (a failed read is tried again)."""
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            try:
                self.sweep()
            except Exception as err:  # noqa: BLE001 - the next sweep tries again
                logger.warning("the inbox sweep failed: %s", type(err).__name__)

    # -- a chat's work, under its lock ---------------------------------------------------------

    def _drain_later(self, chat_id: int, update_id: int | None = None) -> asyncio.Future[None]:
        return self.queues.submit(
            chat_id, lambda: self._locked(chat_id, lambda: self._drain(chat_id)), update_id
        )

    def _send_again(self, key: Hashable, chat_id: int, work: Work) -> None:
        """Queue ``work`` (a send left undone) unless the chat is no longer served (nothing
        is sent there, ever: not tried, not counted), busy, it is queued already, or
        :class:`Retries` says it is too soon."""
        if not self.screening_bot.serves(chat_id):
            return
        idle = self.queues.received(chat_id) is None
        if idle and key not in self._sending and self.retries.due(key):
            self._sending.add(key)
            done = self.queues.submit(chat_id, lambda: self._locked(chat_id, work))
            done.add_done_callback(lambda _: self._sending.discard(key))

    async def _locked(self, chat_id: int, work: Work) -> None:
        """Run ``work`` holding the chat's lock; while another process holds it, wait, or
        stop waiting once the chat has nothing left to handle (the other one did it)."""
        delay = LOCK_WAIT_FIRST
        while not self.db.try_lock(chat_lock(chat_id)):
            if not self._waiting(chat_id):
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, LOCK_WAIT_MAX)
        try:
            await work()
        finally:
            self.db.unlock(chat_lock(chat_id))

    def _waiting(self, chat_id: int) -> bool:
        """Whether the chat has updates or verdicts this process could still handle."""
        read = self.db.read()
        left = self._unfinished
        updates = [r for r in inbox.pending_in(read, chat_id) if r.update_id not in left]
        return bool(updates) or any(v.owner == chat_id for v in outbox.undelivered(read))

    async def _drain(self, chat_id: int) -> None:
        """Handle the chat's waiting updates, oldest first, until none is left."""
        await self.caught_up.wait()
        after = -1
        while True:
            rows = [
                r
                for r in inbox.pending_in(self.db.read(), chat_id, after)
                if r.update_id not in self._unfinished
            ]
            if not rows:
                return
            for row in rows:
                await self._deliver_left(chat_id)
                await self._handle_row(row)
                after = row.update_id

    async def _deliver_left(self, chat_id: int) -> None:
        """Send the chat's verdicts that a failed send left, oldest first: the user who
        comes back (unblocks the bot, writes after an outage) gets them before the reply."""
        try:
            for verdict in outbox.undelivered_to(self.db.read(), chat_id):
                if not await self._send_left(verdict):
                    return  # still failing: the sweep tries again, the older one first
        except Exception as err:  # noqa: BLE001 - still failing: the sweep tries again
            logger.warning("a verdict left could not be sent: %s", type(err).__name__)

    def _reshow(self, chat_id: int) -> Work:
        async def reshow() -> None:
            # after the first poll: input typed while the bot was down came before it
            await self.caught_up.wait()
            await self.screening_bot.reshow(chat_id, self.application.bot)

        return reshow

    async def _handle_row(self, row: Received) -> None:
        try:
            update = Update.de_json(json.loads(row.body), self.application.bot)
        except Exception as err:  # noqa: BLE001 - stored by an older version, or damaged
            logger.warning("update %d skipped: malformed (%s)", row.update_id, type(err).__name__)
            self._finish(row.update_id)
            return
        self._retry_unfinished()
        with inbox.handling(row.update_id) as handled:
            await self.application.process_update(update)
        if not handled.done:  # the handler wrote nothing (or its write failed)
            self._finish(row.update_id)

    def _delivery(self, verdict: Undelivered) -> Work:
        async def deliver() -> None:
            await self._send_left(verdict)

        return deliver

    async def _send_left(self, verdict: Undelivered) -> bool:
        """Send a verdict left unsent; whether it is sent now (a failed send is logged)."""
        left = outbox.waiting(self.db.read(), verdict.id)
        if left is None:
            return True  # sent by another process meanwhile
        bot = self.application.bot
        return await self.screening_bot.deliver(left.owner, left.id, left.text, left.sent, bot)

    def _submit_unstored(self, update: Update) -> asyncio.Future[None]:
        assert update.effective_chat is not None
        return self.queues.submit(
            update.effective_chat.id,
            lambda: self.application.process_update(update),
            update.update_id,
        )

    def _finish(self, update_id: int) -> None:
        try:
            with self.db.transaction() as tx:
                inbox.finish(tx, update_id)
        except StorageFailed as err:
            logger.error("update %d: could not be marked handled: %s", update_id, err)
            self._unfinished.add(update_id)

    def _retry_unfinished(self) -> None:
        """Mark updates handled while the database could not be written, once it can."""
        if not self._unfinished:
            return
        try:
            with self.db.transaction() as tx:
                for update_id in self._unfinished:
                    inbox.finish(tx, update_id)
        except StorageFailed:
            return
        self._unfinished.clear()
