"""Per-coordinator state (table ``owner_settings``): the ``/details`` setting, and the
latest quick check, kept so that "continue the screening" can start from it.

The quick check is JSON (the values read, the protocol, the referral); one per owner, the
newest replacing the one before; it expires like an unfinished screening. A protocol offer
of a screening about to start (its choices and referral) is kept in the same place, so
that one pick of it starts one screening.
"""

from __future__ import annotations

from datetime import datetime

from .db import Tx, schema

schema(
    "owner_settings",
    sqlite=[
        """CREATE TABLE IF NOT EXISTS owner_settings (
    owner INTEGER PRIMARY KEY,        -- the chat (private chat id = Telegram user id); 0: terminal
    details INTEGER,                  -- 1: criterion ids and variable names beside questions
    quick_check TEXT,                 -- the latest quick check, as JSON
    checked_at TEXT                   -- ISO 8601 UTC, for expiry
)"""
    ],
    postgres=[
        """CREATE TABLE owner_settings (
    owner BIGINT PRIMARY KEY,
    details INTEGER,
    quick_check TEXT,
    checked_at TEXT
)"""
    ],
)


def details(tx: Tx, owner: int) -> bool | None:
    """The owner's /details setting; None when never set."""
    row = tx.one("SELECT details FROM owner_settings WHERE owner = ?", (owner,))
    return None if row is None or row[0] is None else bool(row[0])


def set_details(tx: Tx, owner: int, on: bool) -> None:
    tx.execute(
        "INSERT INTO owner_settings (owner, details) VALUES (?, ?)"
        " ON CONFLICT (owner) DO UPDATE SET details = excluded.details",
        (owner, int(on)),
    )


def keep_check(tx: Tx, owner: int, body: str, at: datetime) -> None:
    """Keep ``body`` as the owner's latest quick check (replacing the one before)."""
    tx.execute(
        "INSERT INTO owner_settings (owner, quick_check, checked_at) VALUES (?, ?, ?)"
        " ON CONFLICT (owner) DO UPDATE SET quick_check = excluded.quick_check,"
        " checked_at = excluded.checked_at",
        (owner, body, at.isoformat()),
    )


def check(tx: Tx, owner: int) -> str | None:
    row = tx.one("SELECT quick_check FROM owner_settings WHERE owner = ?", (owner,))
    return row[0] if row else None


def drop_check(tx: Tx, owner: int) -> None:
    tx.execute(
        "UPDATE owner_settings SET quick_check = NULL, checked_at = NULL WHERE owner = ?",
        (owner,),
    )


def expire_checks(tx: Tx, before: datetime) -> int:
    """Forget quick checks made before ``before``; return how many."""
    return tx.execute(
        "UPDATE owner_settings SET quick_check = NULL, checked_at = NULL WHERE checked_at < ?",
        (before.isoformat(),),
    ).rowcount
