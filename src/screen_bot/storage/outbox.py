"""Replies decided but not yet delivered: a finished screening's verdict.

The verdict is written here in the same transaction that logs the screening and removes
its open session; the front end deletes the row once the verdict was sent. After a crash
in between, the rows left are sent on start-up, so no verdict is decided and never shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..session import utc_now
from .db import Tx, schema

schema(
    "outbox",
    sqlite=[
        """CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    owner INTEGER NOT NULL,           -- the chat to send it to
    text TEXT NOT NULL,
    created_at TEXT NOT NULL          -- ISO 8601 UTC
)"""
    ],
    postgres=[
        """CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    owner BIGINT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
)"""
    ],
)


@dataclass(frozen=True)
class Undelivered:
    id: int
    owner: int
    text: str


def put(tx: Tx, owner: int, text: str) -> int:
    """Keep ``text`` for ``owner`` until :func:`delivered`; return its id."""
    [(delivery,)] = tx.all(
        "INSERT INTO outbox (owner, text, created_at) VALUES (?, ?, ?) RETURNING id",
        (owner, text, utc_now().isoformat()),
    )
    return int(delivery)


def delivered(tx: Tx, delivery: int) -> None:
    tx.execute("DELETE FROM outbox WHERE id = ?", (delivery,))


def undelivered(tx: Tx, before: datetime | None = None) -> list[Undelivered]:
    """Replies not sent yet, oldest first (only those put before ``before``, if given)."""
    if before is None:
        rows = tx.all("SELECT id, owner, text FROM outbox ORDER BY id")
    else:
        rows = tx.all(
            "SELECT id, owner, text FROM outbox WHERE created_at < ? ORDER BY id",
            (before.isoformat(),),
        )
    return [Undelivered(i, owner, text) for i, owner, text in rows]


def undelivered_to(tx: Tx, owner: int) -> list[Undelivered]:
    """The replies to ``owner`` not sent yet, oldest first."""
    rows = tx.all("SELECT id, owner, text FROM outbox WHERE owner = ? ORDER BY id", (owner,))
    return [Undelivered(i, owner, text) for i, owner, text in rows]


def waiting(tx: Tx, delivery: int) -> bool:
    """Whether the reply is still to be sent (another process may have sent it)."""
    return tx.one("SELECT 1 FROM outbox WHERE id = ?", (delivery,)) is not None


def expire(tx: Tx, before: datetime) -> int:
    """Forget replies put before ``before`` and never delivered (e.g. the user blocked the
    bot): a verdict is health data, and it is in the screening log; return how many."""
    return tx.execute("DELETE FROM outbox WHERE created_at < ?", (before.isoformat(),)).rowcount
