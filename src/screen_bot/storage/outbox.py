"""Replies decided but not yet delivered: a finished screening's verdict.

The verdict is written here in the same transaction that logs the screening and removes
its open session; the front end deletes the row once the verdict was sent. After a crash
in between, the rows left are sent on start-up, so no verdict is decided and never shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..session import utc_now
from .db import Tx, schema


@schema
def create(tx: Tx) -> None:
    tx.execute(
        """CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    owner INTEGER NOT NULL,           -- the chat to send it to
    text TEXT NOT NULL,
    created_at TEXT NOT NULL          -- ISO 8601 UTC
)"""
    )


@dataclass(frozen=True)
class Undelivered:
    id: int
    owner: int
    text: str


def put(tx: Tx, owner: int, text: str) -> int:
    """Keep ``text`` for ``owner`` until :func:`delivered`; return its id."""
    cursor = tx.execute(
        "INSERT INTO outbox (owner, text, created_at) VALUES (?, ?, ?)",
        (owner, text, utc_now().isoformat()),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def delivered(tx: Tx, delivery: int) -> None:
    tx.execute("DELETE FROM outbox WHERE id = ?", (delivery,))


def undelivered(tx: Tx) -> list[Undelivered]:
    rows = tx.all("SELECT id, owner, text FROM outbox ORDER BY id")
    return [Undelivered(i, owner, text) for i, owner, text in rows]
