"""Unfinished work expires: open screenings, quick checks, undelivered verdicts and
updates received but never handled that nobody touched for the sessions' lifetime
(SCREEN_BOT_SESSION_TTL_HOURS).

Each row carries when it expires, set from the lifetime of the process that last wrote
it: a command run with another setting (an administrator's ``log stats`` without the
bot's .env) neither shortens nor lengthens what the bot keeps. Rows written by a
screen-bot before that have no such time, and go by the lifetime given here, as before."""

from __future__ import annotations

from datetime import timedelta

from ..session import utc_now
from .db import Store
from .inbox import expire as expire_unhandled
from .outbox import expire as expire_undelivered
from .owners import expire_checks
from .sessions import expire as expire_sessions


def expire(store: Store, older_than: timedelta) -> int:
    """Delete what is unfinished and past its lifetime (a row from before lifetimes were
    kept: older than ``older_than``), then let it leave the disk; return how many open
    screenings went."""
    now = utc_now()
    before = now - older_than
    with store.transaction() as tx:
        expire_checks(tx, now, before)
        expire_undelivered(tx, now, before)
        expire_unhandled(tx, now, before)
        removed = expire_sessions(tx, now, before)
    store.forget_deleted()
    return removed
