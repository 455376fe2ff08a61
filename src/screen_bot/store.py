"""SQLite store of open screenings, so a chat resumes after a restart (even ``kill -9``).

One row per unfinished screening; at most one per chat is *active* (the one answers go to).
Every write is committed before it returns: callers save before they reply.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .session import Session

SCHEMA = """
CREATE TABLE IF NOT EXISTS open_sessions (
    owner INTEGER NOT NULL,           -- the chat (private chat id = Telegram user id)
    session_id TEXT NOT NULL,
    protocol_id TEXT NOT NULL,
    referral TEXT,
    state TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,         -- ISO 8601 UTC, for expiry
    body TEXT NOT NULL,               -- the Session as JSON
    message_id INTEGER,               -- the chat message showing the current question
    PRIMARY KEY (owner, session_id)
);
CREATE INDEX IF NOT EXISTS open_sessions_updated ON open_sessions (updated_at);
"""


@dataclass(frozen=True)
class OpenScreening:
    session_id: str
    protocol_id: str
    referral: str | None
    state: str
    active: bool
    updated_at: datetime


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating, readable by its owner only) the database in WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error (connections are autocommit)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.db)

    def save(self, owner: int, session: Session, *, activate: bool = True) -> None:
        """Insert or replace the session; with ``activate`` it becomes the chat's active one."""
        with self.transaction() as db:
            if activate:
                db.execute("UPDATE open_sessions SET active = 0 WHERE owner = ?", (owner,))
            db.execute(
                "INSERT INTO open_sessions (owner, session_id, protocol_id, referral, state,"
                " active, updated_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (owner, session_id) DO UPDATE SET state = excluded.state,"
                " referral = excluded.referral, updated_at = excluded.updated_at,"
                " body = excluded.body, active = MAX(active, excluded.active)",
                (
                    owner,
                    session.id,
                    session.protocol_id,
                    session.referral,
                    session.state,
                    int(activate),
                    session.updated_at.isoformat(),
                    session.model_dump_json(),
                ),
            )

    def active(self, owner: int) -> Session | None:
        row = self.db.execute(
            "SELECT body FROM open_sessions WHERE owner = ? AND active = 1", (owner,)
        ).fetchone()
        return Session.model_validate_json(row[0]) if row else None

    def get(self, owner: int, session_id: str) -> Session | None:
        row = self.db.execute(
            "SELECT body FROM open_sessions WHERE owner = ? AND session_id = ?", (owner, session_id)
        ).fetchone()
        return Session.model_validate_json(row[0]) if row else None

    def activate(self, owner: int, session_id: str) -> bool:
        with self.transaction() as db:
            found = db.execute(
                "SELECT 1 FROM open_sessions WHERE owner = ? AND session_id = ?",
                (owner, session_id),
            ).fetchone()
            if found:
                db.execute(
                    "UPDATE open_sessions SET active = (session_id = ?) WHERE owner = ?",
                    (session_id, owner),
                )
        return found is not None

    def list(self, owner: int) -> list[OpenScreening]:
        rows = self.db.execute(
            "SELECT session_id, protocol_id, referral, state, active, updated_at"
            " FROM open_sessions WHERE owner = ? ORDER BY updated_at DESC",
            (owner,),
        ).fetchall()
        return [
            OpenScreening(sid, pid, ref, state, bool(active), datetime.fromisoformat(updated))
            for sid, pid, ref, state, active, updated in rows
        ]

    def set_message(self, owner: int, session_id: str, message_id: int | None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE open_sessions SET message_id = ? WHERE owner = ? AND session_id = ?",
                (message_id, owner, session_id),
            )

    def message(self, owner: int, session_id: str) -> int | None:
        row = self.db.execute(
            "SELECT message_id FROM open_sessions WHERE owner = ? AND session_id = ?",
            (owner, session_id),
        ).fetchone()
        return row[0] if row else None

    def delete(self, owner: int, session_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM open_sessions WHERE owner = ? AND session_id = ?", (owner, session_id)
            )

    def forget(self, owner: int) -> int:
        """Delete every unfinished screening of this chat; return how many."""
        with self.transaction() as db:
            return db.execute("DELETE FROM open_sessions WHERE owner = ?", (owner,)).rowcount

    def expire(self, before: datetime) -> int:
        """Delete unfinished screenings last changed before ``before``; return how many."""
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM open_sessions WHERE updated_at < ?", (before.isoformat(),)
            ).rowcount
