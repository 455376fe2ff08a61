"""Unfinished work expires: open screenings, quick checks, undelivered verdicts and
updates received but never handled that nobody touched for the sessions' lifetime
(SCREEN_BOT_SESSION_TTL_HOURS)."""

from __future__ import annotations

from datetime import timedelta

from ..session import utc_now
from .db import Store
from .inbox import expire as expire_unhandled
from .outbox import expire as expire_undelivered
from .owners import expire_checks
from .sessions import expire as expire_sessions


def expire(store: Store, older_than: timedelta) -> int:
    """Delete what is unfinished and older than ``older_than``, then let it leave the disk;
    return how many open screenings went."""
    before = utc_now() - older_than
    with store.transaction() as tx:
        expire_checks(tx, before)
        expire_undelivered(tx, before)
        expire_unhandled(tx, before)
        removed = expire_sessions(tx, before)
    store.forget_deleted()
    return removed
