"""The errors a user can act on: one base with the message and the exit code.

``cli.app.main`` maps every :class:`ScreenBotError` to ``error: <message>`` on stderr and
its exit code, in one place; anything else is unexpected and gets one line and a trace file.
"""

from __future__ import annotations


class ScreenBotError(Exception):
    """An error with a message for the user and the exit code a command ends with."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class BadReferral(ScreenBotError):
    """A referral that is not a short code (it may be a name)."""


class NoDatabase(ScreenBotError):
    """A command that reads the database found none (it never creates an empty one)."""


class DatabaseBroken(ScreenBotError):
    """The database file cannot be opened or read as a database."""


class StorageFailed(ScreenBotError):
    """A write to the database failed (full disk, read-only file, a lost server): nothing of
    it was saved; or a read failed (PostgreSQL: a server that cannot be reached; on either
    store, the separate reader /stats reads the log with)."""


class LogCorrupt(ScreenBotError):
    """The screening log cannot be read or written as it is; ``log verify`` says why."""


class BadInput(ScreenBotError):
    """A file or option the command cannot use."""
