"""Updates received from the Bot API, kept until handled, so ``kill -9`` loses none.

The poller (or the webhook) writes each update here in one transaction *before* it
confirms it to the Bot API (the next ``getUpdates`` offset), so an update is either here
or still on Telegram's side. A handled update is marked done in the same transaction as
the change it caused: while an update is being handled (:func:`handling`), every
transaction marks it done before it commits (a :func:`~.db.rider`), and :func:`finish`
marks it after a handler that wrote nothing. So after a crash an update is handled again
only if nothing of it was saved, and never applied twice.

A done row keeps its id (no text) for two days: Telegram keeps an unconfirmed update for
at most 24 hours, so an update delivered again after a crash is recognised and skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..session import utc_now
from .db import Tx, add_columns, rider, schema, stamped_outside

KEEP_DONE = timedelta(days=2)


class Handling:
    """The update being handled; ``done`` once a committed transaction marked it."""

    def __init__(self, update_id: int) -> None:
        self.update_id, self.done = update_id, False

    def marked(self) -> None:
        self.done = True


_handling: ContextVar[Handling | None] = ContextVar("inbox_update", default=None)


schema(
    "inbox",
    sqlite=[
        (
            """CREATE TABLE IF NOT EXISTS inbox (
    update_id INTEGER PRIMARY KEY,    -- Telegram's update id
    chat_id INTEGER NOT NULL,
    body TEXT,                        -- the update as JSON; NULL once handled
    received_at TEXT NOT NULL,        -- ISO 8601 UTC
    done INTEGER NOT NULL DEFAULT 0
)""",
            "CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (done, update_id)",
        ),
        # 2: a chat's waiting updates, for the bot processes sharing a database
        "CREATE INDEX IF NOT EXISTS inbox_chat ON inbox (chat_id, done, update_id)",
        # 3: when an update never handled is given up, by the lifetime of the process
        # that stored it
        lambda tx: add_columns(tx, "inbox", {"expires_at": "TEXT"}),
    ],
    postgres=[
        (
            """CREATE TABLE inbox (
    update_id BIGINT PRIMARY KEY,
    chat_id BIGINT NOT NULL,
    body TEXT,
    received_at TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
)""",
            "CREATE INDEX inbox_pending ON inbox (done, update_id)",
        ),
        "CREATE INDEX inbox_chat ON inbox (chat_id, done, update_id)",
        "ALTER TABLE inbox ADD COLUMN expires_at TEXT",
    ],
)


@dataclass(frozen=True)
class Received:
    update_id: int
    chat_id: int
    body: str  # the update's JSON


def receive(
    tx: Tx, updates: Sequence[Received], now: datetime | None = None, *, lifetime: timedelta
) -> list[Received]:
    """Store the updates not seen before; return those (the ones to handle). One never
    handled is given up ``lifetime`` after it was received (:func:`expire`)."""
    at = now or utc_now()
    fresh = []
    for update in updates:
        cursor = tx.execute(
            "INSERT INTO inbox (update_id, chat_id, body, received_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (update_id) DO NOTHING",
            (
                update.update_id,
                update.chat_id,
                update.body,
                at.isoformat(),
                (at + lifetime).isoformat(),
            ),
        )
        if cursor.rowcount:
            fresh.append(update)
    return fresh


def pending(tx: Tx) -> list[Received]:
    """Updates received but not handled yet, oldest first."""
    rows = tx.all("SELECT update_id, chat_id, body FROM inbox WHERE done = 0 ORDER BY update_id")
    return [Received(uid, chat, body or "{}") for uid, chat, body in rows]


def chats_waiting(
    tx: Tx, before: datetime | None = None, ahead: datetime | None = None
) -> list[int]:
    """The chats with updates not handled yet (received before ``before``, if given, or
    after ``ahead``, if given: stamped by a clock that was ahead)."""
    if before is None:
        rows = tx.all("SELECT DISTINCT chat_id FROM inbox WHERE done = 0")
    else:
        stamped, times = stamped_outside("received_at", before, ahead)
        rows = tx.all(f"SELECT DISTINCT chat_id FROM inbox WHERE done = 0 AND {stamped}", times)
    return sorted(chat for (chat,) in rows)


def pending_in(tx: Tx, chat_id: int, after: int = -1) -> list[Received]:
    """The chat's updates not handled yet with ids above ``after``, oldest first."""
    rows = tx.all(
        "SELECT update_id, body FROM inbox WHERE chat_id = ? AND done = 0 AND update_id > ?"
        " ORDER BY update_id",
        (chat_id, after),
    )
    return [Received(uid, chat_id, body or "{}") for uid, body in rows]


def newest(tx: Tx, chat_id: int) -> int | None:
    """The id of the newest update received from the chat (handled or not)."""
    row = tx.one("SELECT max(update_id) FROM inbox WHERE chat_id = ?", (chat_id,))
    return row[0] if row else None


def finish(tx: Tx, update_id: int) -> None:
    """Mark the update handled and drop its text (a no-op when already done)."""
    tx.execute(
        "UPDATE inbox SET done = 1, body = NULL WHERE update_id = ? AND done = 0", (update_id,)
    )


def expire(tx: Tx, now: datetime, before: datetime) -> int:
    """Give up updates never handled (stored, then the bot was killed and not restarted for
    the sessions' lifetime) whose lifetime ended by ``now``, and those stored by a
    screen-bot before lifetimes were kept (no ``expires_at``) received before ``before``:
    their text goes, their id stays as a handled one's does; return how many."""
    return tx.execute(
        "UPDATE inbox SET done = 1, body = NULL WHERE done = 0"
        " AND (expires_at < ? OR (expires_at IS NULL AND received_at < ?))",
        (now.isoformat(), before.isoformat()),
    ).rowcount


def prune(tx: Tx, now: datetime | None = None) -> int:
    """Forget handled updates older than two days; return how many."""
    before = ((now or utc_now()) - KEEP_DONE).isoformat()
    return tx.execute("DELETE FROM inbox WHERE done = 1 AND received_at < ?", (before,)).rowcount


def forget_all(tx: Tx) -> int:
    """Forget every update, handled or not: they are another bot's (``running.py``), whose
    ids say nothing of this bot's. One never handled is dropped too: it was sent to that
    bot, may press its buttons, and its id could pass for one of this bot's. Returns how
    many were never handled."""
    unhandled = int(tx.one("SELECT COUNT(*) FROM inbox WHERE done = 0")[0])
    tx.execute("DELETE FROM inbox")
    return unhandled


@contextmanager
def handling(update_id: int) -> Iterator[Handling]:
    """While inside, every transaction also marks ``update_id`` done, until one that did
    committed (see the module doc); ``done`` on what it yields tells whether one did."""
    state = Handling(update_id)
    token = _handling.set(state)
    try:
        yield state
    finally:
        _handling.reset(token)


@rider
def _mark_handled(tx: Tx) -> None:
    state = _handling.get()
    if state is not None and not state.done:
        finish(tx, state.update_id)
        tx.on_commit(state.marked)
