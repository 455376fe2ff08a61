"""The one way to the database: connect, create owner-only files, run transactions.

SQLite today (WAL, ``synchronous=FULL``, a busy timeout); every SQLite-only statement is
here. Repositories (:mod:`.sessions`, :mod:`.ledger`, :mod:`.scores`) hold their own
table's SQL with ``?`` placeholders and take a :class:`Tx`, so several writes compose into
one transaction::

    with database.transaction() as tx:
        ledger.append(tx, ...)
        sessions.delete(tx, ...)
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import DatabaseBroken, NoDatabase

Params = Sequence[Any] | dict[str, Any]
OWNER_ONLY_FILE, OWNER_ONLY_DIR = 0o600, 0o700


class Tx:
    """A unit of work on one connection: inside ``transaction()`` or a plain read."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        return self._connection.execute(sql, params)

    def one(self, sql: str, params: Params = ()) -> Any:
        """The first row, or None."""
        return self._connection.execute(sql, params).fetchone()

    def all(self, sql: str, params: Params = ()) -> list[Any]:
        return self._connection.execute(sql, params).fetchall()


# Each repository registers its schema; a database creates them all when it opens.
_SCHEMAS: list[Callable[[Tx], None]] = []


def schema(create: Callable[[Tx], None]) -> Callable[[Tx], None]:
    """Register a repository's ``create(tx)`` (idempotent DDL)."""
    _SCHEMAS.append(create)
    return create


def _owner_only(path: Path) -> None:
    """Create the file readable by its owner only, or tighten an existing one."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, OWNER_ONLY_FILE))
    elif stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(OWNER_ONLY_FILE)
    for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if extra.exists() and stat.S_IMODE(extra.stat().st_mode) & 0o077:
            extra.chmod(OWNER_ONLY_FILE)


def _make_directory(directory: Path) -> None:
    if not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(OWNER_ONLY_DIR)  # mkdir's mode is cut by the umask


class Database:
    """One connection to the database file, with every repository's tables in it."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise NoDatabase(
                f"no database yet at {self.path}: nothing has been logged here "
                "('screen-bot where' shows the data directory; SCREEN_BOT_DATA_DIR sets it)"
            )
        try:
            _make_directory(self.path.parent)
            _owner_only(self.path)
            self._connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
            self._connection.execute("PRAGMA busy_timeout=5000")
            with self.transaction() as tx:
                for create_tables in _SCHEMAS:
                    create_tables(tx)
        except sqlite3.DatabaseError as err:
            raise DatabaseBroken(f"database {self.path}: {err}") from None
        except OSError as err:
            raise DatabaseBroken(f"database {self.path}: {err.strerror or err}") from None

    @classmethod
    def existing(cls, path: Path) -> Database:
        """Open a database that must exist already (commands that only read)."""
        return cls(path, create=False)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error: all of it, or none."""
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield Tx(self._connection)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def read(self) -> Tx:
        """For reads outside a transaction (each statement sees committed data)."""
        return Tx(self._connection)
