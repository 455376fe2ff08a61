"""Persistence: one connection helper and a repository per table.

Importing the package registers every repository's schema, so a :class:`Database`
opened anywhere has all its tables.
"""

from . import inbox, ledger, outbox, owners, scores, sessions
from .db import Database, Tx

__all__ = ["Database", "Tx", "inbox", "ledger", "outbox", "owners", "scores", "sessions"]
