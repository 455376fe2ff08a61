"""Replies decided but not yet delivered: a finished screening's verdict.

The verdict is written here in the same transaction that logs the screening and removes
its open session; the front end deletes the row once the verdict was sent. After a crash
in between, the rows left are sent on start-up, so no verdict is decided and never shown.
A verdict sent in several messages counts those sent (``sent``), so a send that failed
midway goes on at the first message not sent instead of sending them all again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..session import utc_now
from .db import Tx, add_columns, schema, stamped_outside

schema(
    "outbox",
    sqlite=[
        """CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    owner INTEGER NOT NULL,           -- the chat to send it to
    text TEXT NOT NULL,
    created_at TEXT NOT NULL          -- ISO 8601 UTC
)""",
        # how many of its messages (the front end's parts of ``text``) were sent
        lambda tx: add_columns(tx, "outbox", {"sent": "INTEGER NOT NULL DEFAULT 0"}),
        # 3: when it expires unsent, by the lifetime of the process that put it
        lambda tx: add_columns(tx, "outbox", {"expires_at": "TEXT"}),
    ],
    postgres=[
        """CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    owner BIGINT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
)""",
        "ALTER TABLE outbox ADD COLUMN sent INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE outbox ADD COLUMN expires_at TEXT",
    ],
)


@dataclass(frozen=True)
class Undelivered:
    id: int
    owner: int
    text: str
    sent: int = 0  # how many of its messages were sent already


def put(tx: Tx, owner: int, text: str, *, lifetime: timedelta) -> int:
    """Keep ``text`` for ``owner`` until :func:`delivered`, or ``lifetime`` from now;
    return its id."""
    now = utc_now()
    [(delivery,)] = tx.all(
        "INSERT INTO outbox (owner, text, created_at, expires_at) VALUES (?, ?, ?, ?) RETURNING id",
        (owner, text, now.isoformat(), (now + lifetime).isoformat()),
    )
    return int(delivery)


def sent(tx: Tx, delivery: int, messages: int) -> None:
    """The first ``messages`` of the reply's messages were sent."""
    tx.execute("UPDATE outbox SET sent = ? WHERE id = ?", (messages, delivery))


def delivered(tx: Tx, delivery: int) -> None:
    tx.execute("DELETE FROM outbox WHERE id = ?", (delivery,))


def undelivered(
    tx: Tx, before: datetime | None = None, ahead: datetime | None = None
) -> list[Undelivered]:
    """Replies not sent yet, oldest first (only those put before ``before``, if given, or
    after ``ahead``, if given: stamped by a clock that was ahead)."""
    if before is None:
        rows = tx.all("SELECT id, owner, text, sent FROM outbox ORDER BY id")
    else:
        stamped, times = stamped_outside("created_at", before, ahead)
        rows = tx.all(
            f"SELECT id, owner, text, sent FROM outbox WHERE {stamped} ORDER BY id", times
        )
    return [Undelivered(*row) for row in rows]


def undelivered_to(tx: Tx, owner: int) -> list[Undelivered]:
    """The replies to ``owner`` not sent yet, oldest first."""
    rows = tx.all("SELECT id, owner, text, sent FROM outbox WHERE owner = ? ORDER BY id", (owner,))
    return [Undelivered(*row) for row in rows]


def waiting(tx: Tx, delivery: int) -> Undelivered | None:
    """The reply as it stands now, if it is still to be sent (None: another process may
    have sent it)."""
    row = tx.one("SELECT id, owner, text, sent FROM outbox WHERE id = ?", (delivery,))
    return None if row is None else Undelivered(*row)


def expire(tx: Tx, now: datetime, before: datetime) -> int:
    """Forget replies never delivered (e.g. the user blocked the bot) whose lifetime ended
    by ``now``, and those put by a screen-bot before lifetimes were kept (no
    ``expires_at``) before ``before``: a verdict is health data, and it is in the
    screening log; return how many."""
    return tx.execute(
        "DELETE FROM outbox WHERE expires_at < ? OR (expires_at IS NULL AND created_at < ?)",
        (now.isoformat(), before.isoformat()),
    ).rowcount
