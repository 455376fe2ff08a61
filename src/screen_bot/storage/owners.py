"""Per-coordinator state (table ``owner_settings``): the ``/details`` setting, and the
latest quick check, kept so that "continue the screening" can start from it.

The quick check is JSON (the values read, the protocol, the referral); one per owner, the
newest replacing the one before; it expires like an unfinished screening. A protocol offer
of a screening about to start (its choices and referral) is kept in the same place, so
that one pick of it starts one screening.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .db import Tx, add_columns, schema

schema(
    "owner_settings",
    sqlite=[
        """CREATE TABLE IF NOT EXISTS owner_settings (
    owner INTEGER PRIMARY KEY,        -- the chat (private chat id = Telegram user id); 0: terminal
    details INTEGER,                  -- 1: criterion ids and variable names beside questions
    quick_check TEXT,                 -- the latest quick check, as JSON
    checked_at TEXT                   -- ISO 8601 UTC, for expiry
)""",
        # 2: when the quick check expires, by the lifetime of the process that kept it
        lambda tx: add_columns(tx, "owner_settings", {"check_expires_at": "TEXT"}),
    ],
    postgres=[
        """CREATE TABLE owner_settings (
    owner BIGINT PRIMARY KEY,
    details INTEGER,
    quick_check TEXT,
    checked_at TEXT
)""",
        "ALTER TABLE owner_settings ADD COLUMN check_expires_at TEXT",
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


def keep_check(tx: Tx, owner: int, body: str, at: datetime, *, lifetime: timedelta) -> None:
    """Keep ``body`` as the owner's latest quick check (replacing the one before), until
    ``lifetime`` after ``at``."""
    tx.execute(
        "INSERT INTO owner_settings (owner, quick_check, checked_at, check_expires_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (owner) DO UPDATE SET"
        " quick_check = excluded.quick_check, checked_at = excluded.checked_at,"
        " check_expires_at = excluded.check_expires_at",
        (owner, body, at.isoformat(), (at + lifetime).isoformat()),
    )


def check(tx: Tx, owner: int) -> str | None:
    row = tx.one("SELECT quick_check FROM owner_settings WHERE owner = ?", (owner,))
    return row[0] if row else None


_FORGET = "UPDATE owner_settings SET quick_check = NULL, checked_at = NULL, check_expires_at = NULL"


def drop_check(tx: Tx, owner: int) -> None:
    tx.execute(f"{_FORGET} WHERE owner = ?", (owner,))


def expire_checks(tx: Tx, now: datetime, before: datetime) -> int:
    """Forget the quick checks whose lifetime ended by ``now``, and those kept by a
    screen-bot before lifetimes were kept (no ``check_expires_at``) made before
    ``before``; return how many."""
    return tx.execute(
        f"{_FORGET} WHERE check_expires_at < ? OR (check_expires_at IS NULL AND checked_at < ?)",
        (now.isoformat(), before.isoformat()),
    ).rowcount
