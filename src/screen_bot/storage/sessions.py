"""Open screenings, so a chat resumes after a restart (even ``kill -9``).

One row per unfinished screening; at most one per owner is *active* (the one answers go
to), and each row remembers the message that shows its current question, which step that
message shows (``shown_step``: a step whose question was never delivered is not
answerable by typing) and the newest update of the chat received before it was shown
(``shown_after``: an answer that arrived earlier was not meant for it). ``step`` copies the
session's step, so a question never delivered (its send failed, or a stop cut it short)
is found without reading every session (:func:`unshown`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..session import Session
from .db import Tx, add_columns, schema, stamped_outside


def _create_sqlite(tx: Tx) -> None:
    tx.execute(
        """CREATE TABLE IF NOT EXISTS open_sessions (
    owner INTEGER NOT NULL,           -- the chat (private chat id = Telegram user id); 0: terminal
    session_id TEXT NOT NULL,
    protocol_id TEXT NOT NULL,
    referral TEXT,
    state TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,         -- ISO 8601 UTC, for expiry
    body TEXT NOT NULL,               -- the Session as JSON
    message_id INTEGER,               -- the message showing the current question
    PRIMARY KEY (owner, session_id)
)"""
    )
    tx.execute("CREATE INDEX IF NOT EXISTS open_sessions_updated ON open_sessions (updated_at)")
    # a database from before delivered-step tracking
    add_columns(tx, "open_sessions", {"shown_step": "INTEGER", "shown_after": "INTEGER"})


def _add_expires_at_sqlite(tx: Tx) -> None:
    add_columns(tx, "open_sessions", {"expires_at": "TEXT"})
    tx.execute("CREATE INDEX IF NOT EXISTS open_sessions_expires ON open_sessions (expires_at)")


schema(
    "open_sessions",
    sqlite=[
        _create_sqlite,
        lambda tx: add_columns(tx, "open_sessions", {"shown_at": "INTEGER"}),
        lambda tx: add_columns(tx, "open_sessions", {"step": "INTEGER"}),
        _add_expires_at_sqlite,
    ],
    postgres=[
        (
            """CREATE TABLE open_sessions (
    owner BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    protocol_id TEXT NOT NULL,
    referral TEXT,
    state TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    body TEXT NOT NULL,
    message_id BIGINT,
    shown_step INTEGER,
    shown_after BIGINT,
    PRIMARY KEY (owner, session_id)
)""",
            "CREATE INDEX open_sessions_updated ON open_sessions (updated_at)",
        ),
        # when the message showing the question was sent (unix seconds, the Bot API's clock)
        "ALTER TABLE open_sessions ADD COLUMN shown_at BIGINT",
        # the session's step, beside the step shown (a copy of the body's)
        "ALTER TABLE open_sessions ADD COLUMN step INTEGER",
        # 4: when it expires, by the lifetime of the process that last wrote it
        (
            "ALTER TABLE open_sessions ADD COLUMN expires_at TEXT",
            "CREATE INDEX open_sessions_expires ON open_sessions (expires_at)",
        ),
    ],
)


@dataclass(frozen=True)
class OpenScreening:
    session_id: str
    protocol_id: str
    referral: str | None
    state: str
    active: bool
    updated_at: datetime
    awaiting_referral: bool = False  # its referral code is asked (before question 1)


_INSERT = (
    "INSERT INTO open_sessions (owner, session_id, protocol_id, referral, state,"
    " active, updated_at, body, step, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _row(owner: int, session: Session, lifetime: timedelta, active: bool) -> tuple[Any, ...]:
    """The values of :data:`_INSERT`: it expires ``lifetime`` after its last change."""
    return (
        owner,
        session.id,
        session.protocol_id,
        session.referral,
        session.state,
        int(active),
        session.updated_at.isoformat(),
        session.model_dump_json(),
        session.step,
        (session.updated_at + lifetime).isoformat(),
    )


def save(
    tx: Tx, owner: int, session: Session, *, lifetime: timedelta, activate: bool = True
) -> None:
    """Insert or update the session; with ``activate`` it becomes the owner's active one.

    It expires ``lifetime`` after its last change (``updated_at``): the lifetime of the
    process writing it, whatever another process that runs the expiry pass is set to."""
    if activate:
        tx.execute("UPDATE open_sessions SET active = 0 WHERE owner = ?", (owner,))
    tx.execute(
        _INSERT + " ON CONFLICT (owner, session_id) DO UPDATE SET state = excluded.state,"
        " referral = excluded.referral, updated_at = excluded.updated_at,"
        " body = excluded.body, step = excluded.step, expires_at = excluded.expires_at,"
        " active = CASE WHEN excluded.active = 1 THEN 1 ELSE open_sessions.active END",
        _row(owner, session, lifetime, activate),
    )


def add(tx: Tx, owner: int, session: Session, *, lifetime: timedelta) -> bool:
    """Insert a new session as the owner's active one; False, changing nothing, when the
    owner has an open session with its id already (:func:`save` would overwrite that one)."""
    added = tx.execute(
        _INSERT + " ON CONFLICT (owner, session_id) DO NOTHING",
        _row(owner, session, lifetime, active=True),
    ).rowcount
    if added:
        tx.execute(
            "UPDATE open_sessions SET active = 0 WHERE owner = ? AND session_id <> ?",
            (owner, session.id),
        )
    return bool(added)


def active(tx: Tx, owner: int) -> Session | None:
    row = tx.one("SELECT body FROM open_sessions WHERE owner = ? AND active = 1", (owner,))
    return Session.model_validate_json(row[0]) if row else None


def get(tx: Tx, owner: int, session_id: str) -> Session | None:
    row = tx.one(
        "SELECT body FROM open_sessions WHERE owner = ? AND session_id = ?", (owner, session_id)
    )
    return Session.model_validate_json(row[0]) if row else None


def activate(tx: Tx, owner: int, session_id: str) -> bool:
    """Make this session the owner's active one; False when there is no such session."""
    if tx.one(
        "SELECT 1 FROM open_sessions WHERE owner = ? AND session_id = ?", (owner, session_id)
    ):
        tx.execute(
            "UPDATE open_sessions SET active = CASE WHEN session_id = ? THEN 1 ELSE 0 END"
            " WHERE owner = ?",
            (session_id, owner),
        )
        return True
    return False


def pause(tx: Tx, owner: int, session_id: str) -> None:
    """This session is no longer the owner's active one (it stays open, to be resumed)."""
    tx.execute(
        "UPDATE open_sessions SET active = 0 WHERE owner = ? AND session_id = ?",
        (owner, session_id),
    )


def list_open(tx: Tx, owner: int) -> list[OpenScreening]:
    rows = tx.all(
        "SELECT session_id, protocol_id, referral, state, active, updated_at, body"
        " FROM open_sessions WHERE owner = ? ORDER BY updated_at DESC",
        (owner,),
    )
    return [
        OpenScreening(
            sid,
            pid,
            ref,
            state,
            bool(is_active),
            datetime.fromisoformat(updated),
            bool(json.loads(body).get("awaiting_referral")),
        )
        for sid, pid, ref, state, is_active, updated, body in rows
    ]


def set_message(tx: Tx, owner: int, session_id: str, message_id: int | None) -> None:
    tx.execute(
        "UPDATE open_sessions SET message_id = ? WHERE owner = ? AND session_id = ?",
        (message_id, owner, session_id),
    )


@dataclass(frozen=True)
class Shown:
    """The question delivered: its step, the newest update received before it was sent,
    and when it was sent (unix seconds, on the clock of the updates' own dates)."""

    step: int | None = None
    after: int | None = None
    at: int | None = None


def set_shown(tx: Tx, owner: int, session_id: str, message_id: int, shown: Shown) -> None:
    """``message_id`` shows the question of ``shown.step``. A step shown again (``/status``)
    keeps its first delivery's ``after`` and ``at``: input typed since then was typed
    with the question on screen."""
    tx.execute(
        "UPDATE open_sessions SET message_id = ?,"
        " shown_after = CASE WHEN shown_step = ? THEN shown_after ELSE ? END,"
        " shown_at = CASE WHEN shown_step = ? THEN shown_at ELSE ? END,"
        " shown_step = ? WHERE owner = ? AND session_id = ?",
        (message_id, shown.step, shown.after, shown.step, shown.at, shown.step, owner, session_id),
    )


def shown(tx: Tx, owner: int, session_id: str) -> Shown:
    row = tx.one(
        "SELECT shown_step, shown_after, shown_at FROM open_sessions"
        " WHERE owner = ? AND session_id = ?",
        (owner, session_id),
    )
    return Shown(*row) if row else Shown()


def unshown(tx: Tx, before: datetime, ahead: datetime | None = None) -> list[int]:
    """The owners whose active screening moved on, before ``before``, to a question that was
    never delivered (its first one too; the terminal, ``owner`` 0, does not say what it
    delivered and is never listed). With ``ahead``, those that moved on after it (stamped
    by a clock that was ahead) are listed too."""
    stamped, times = stamped_outside("updated_at", before, ahead)
    rows = tx.all(
        f"SELECT owner FROM open_sessions WHERE active = 1 AND {stamped}"
        " AND (shown_step <> step OR (shown_step IS NULL AND owner <> 0)) ORDER BY owner",
        times,
    )
    return [owner for (owner,) in rows]


def forget_update_marks(tx: Tx) -> None:
    """Forget, in every open session, the newest update before its question was shown and
    the message showing it: both belong to another bot (``running.py``), whose update ids
    and chat's message ids say nothing of this bot's."""
    tx.execute("UPDATE open_sessions SET shown_after = NULL, message_id = NULL")


def message(tx: Tx, owner: int, session_id: str) -> int | None:
    row = tx.one(
        "SELECT message_id FROM open_sessions WHERE owner = ? AND session_id = ?",
        (owner, session_id),
    )
    return row[0] if row else None


def delete(tx: Tx, owner: int, session_id: str) -> None:
    tx.execute("DELETE FROM open_sessions WHERE owner = ? AND session_id = ?", (owner, session_id))


def forget(tx: Tx, owner: int) -> int:
    """Delete every unfinished screening of this owner; return how many."""
    return tx.execute("DELETE FROM open_sessions WHERE owner = ?", (owner,)).rowcount


def expire(tx: Tx, now: datetime, before: datetime) -> int:
    """Delete the unfinished screenings whose lifetime ended by ``now``, and those saved
    by a screen-bot before lifetimes were kept (no ``expires_at``) last changed before
    ``before``; return how many."""
    return tx.execute(
        "DELETE FROM open_sessions WHERE expires_at < ? OR (expires_at IS NULL AND updated_at < ?)",
        (now.isoformat(), before.isoformat()),
    ).rowcount


def count(tx: Tx) -> int:
    return int(tx.one("SELECT COUNT(*) FROM open_sessions")[0])
