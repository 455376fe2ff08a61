"""Persistence: a store per dialect (SQLite file, PostgreSQL server) and a repository per table.

Importing the package registers every repository's schema, so a store opened anywhere
has all its tables (see :mod:`.db` for the migrations).
"""

from __future__ import annotations

from pathlib import Path

from . import expiry, grants, inbox, ledger, outbox, owners, running, scores, sessions
from .db import Database, Store, Tx

__all__ = [
    "Database",
    "Store",
    "Tx",
    "expiry",
    "grants",
    "inbox",
    "ledger",
    "open_checked",
    "open_store",
    "outbox",
    "owners",
    "running",
    "scores",
    "sessions",
]


def open_store(path: Path, url: str | None = None, *, existing: bool = False) -> Store:
    """The PostgreSQL database at ``url`` when one is given, else the SQLite file ``path``.

    With ``existing``, a store that has no tables yet is refused (NoDatabase): commands
    that only read never create an empty one.
    """
    if url:
        from .postgres import PostgresDatabase

        return PostgresDatabase(url, create=not existing)
    return Database.existing(path) if existing else Database(path)


def open_checked(path: Path, url: str | None = None) -> Store:
    """``open_store``'s store, opened (created the first time) and checked, on PostgreSQL
    the role's privileges too; the caller closes it. The bot opens it on a thread while it
    starts (``cli/serve.py``)."""
    db = open_store(path, url)
    try:
        db.check()
        grants.refuse_missing(db)
    except BaseException:
        db.close()
        raise
    return db
