"""Unfinished work expires: open screenings, quick checks, undelivered verdicts and
updates received but never handled that nobody touched for the sessions' lifetime
(SCREEN_BOT_SESSION_TTL_HOURS).

Each row carries when it expires, set from the lifetime of the process that last wrote
it: a command run with another setting (an administrator's ``log stats`` without the
bot's .env) neither shortens nor lengthens what the bot keeps. Rows written by a
screen-bot before that have no such time, and go by the lifetime given here, as before.

A row written while the server's clock was ahead (then set right, e.g. by NTP) is
re-dated to now, keeping the lifetime it was given: it is kept one lifetime from then,
not until the clock catches up with it (a clock a year ahead: a year longer)."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..clock import CLOCK_AHEAD
from ..session import utc_now
from .db import Store, Tx
from .inbox import expire as expire_unhandled
from .outbox import expire as expire_undelivered
from .owners import expire_checks
from .sessions import expire as expire_sessions

# Each table's key, and its times of what is unfinished: when it was written, when it expires.
TIMES = {
    "open_sessions": (("owner", "session_id"), "updated_at", "expires_at"),
    "owner_settings": (("owner",), "checked_at", "check_expires_at"),
    "outbox": (("id",), "created_at", "expires_at"),
    "inbox": (("update_id",), "received_at", "expires_at"),
}


def redate(tx: Tx, now: datetime) -> None:
    """Re-date to ``now`` the rows written more than CLOCK_AHEAD after ``now`` (by a clock
    that was ahead), each keeping its lifetime (``expires_at`` less its time written). One
    scan a table, then each row by its key (a clock a day ahead may have stamped every row
    of a busy inbox)."""
    ahead = (now + CLOCK_AHEAD).isoformat()
    for table, (key, written, expires) in TIMES.items():
        rows = tx.all(
            f"SELECT {', '.join(key)}, {written}, {expires} FROM {table} WHERE {written} > ?",
            (ahead,),
        )
        where = " AND ".join(f"{column} = ?" for column in key)
        for *ids, at, until in rows:
            if until is not None:  # None: kept by a screen-bot before lifetimes were stored
                lifetime = datetime.fromisoformat(until) - datetime.fromisoformat(at)
                until = (now + lifetime).isoformat()
            tx.execute(
                f"UPDATE {table} SET {written} = ?, {expires} = ? WHERE {where}",
                (now.isoformat(), until, *ids),
            )


def expire(store: Store, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete what is unfinished and past its lifetime (a row from before lifetimes were
    kept: older than ``older_than``), then let it leave the disk; return how many open
    screenings went. What a clock that was ahead stamped is re-dated first (:func:`redate`)."""
    now = now or utc_now()
    before = now - older_than
    with store.transaction() as tx:
        redate(tx, now)
        expire_checks(tx, now, before)
        expire_undelivered(tx, now, before)
        expire_unhandled(tx, now, before)
        removed = expire_sessions(tx, now, before)
    store.forget_deleted()
    return removed
