"""The one way to the database: connect, create owner-only files, run transactions.

SQLite today (WAL, ``synchronous=FULL``, a busy timeout); every SQLite-only statement is
here. Repositories (:mod:`.sessions`, :mod:`.ledger`, :mod:`.scores`) hold their own
table's SQL with ``?`` placeholders and take a :class:`Tx`, so several writes compose into
one transaction::

    with database.transaction() as tx:
        ledger.append(tx, ...)
        sessions.delete(tx, ...)

A failed write (a full disk, a read-only file) rolls the whole transaction back and is
raised as :class:`StorageFailed`, so a front end can tell the user that nothing was saved.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import DatabaseBroken, NoDatabase, StorageFailed

Params = Sequence[Any] | dict[str, Any]
OWNER_ONLY_FILE, OWNER_ONLY_DIR = 0o600, 0o700
_DAMAGED_FIX = (
    ". Stop every screen-bot process, keep a copy of the file, then restore the latest "
    "backup (or salvage it: sqlite3 DAMAGED .recover | sqlite3 NEW, and move NEW in its place)"
)


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


# Work every transaction carries just before it commits (the inbox marks the update being
# handled as done in the same transaction as the change it caused).
_RIDERS: list[Callable[[Tx], None]] = []


def rider(work: Callable[[Tx], None]) -> Callable[[Tx], None]:
    """Register ``work(tx)``, run inside every write transaction before its COMMIT."""
    _RIDERS.append(work)
    return work


def add_columns(tx: Tx, table: str, columns: dict[str, str]) -> None:
    """Add the columns a table of an older database lacks (name -> SQL type)."""
    present = {row[1] for row in tx.all(f"PRAGMA table_info({table})")}
    for name, sql_type in columns.items():
        if name not in present:
            tx.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")


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
            raise DatabaseBroken(f"database {self.path}: {err}{_DAMAGED_FIX}") from None
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

    def check(self) -> None:
        """Refuse a damaged database (``PRAGMA quick_check``), naming the file and the fix."""
        try:
            problems = [row[0] for row in self._connection.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as err:
            problems = [str(err)]
        if problems != ["ok"]:
            raise DatabaseBroken(
                f"the database {self.path} is damaged ({'; '.join(problems)[:300]})" + _DAMAGED_FIX
            )

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error: all of it, or none.

        A database error (full disk, read-only file, I/O error) is raised as StorageFailed,
        also when it happens at COMMIT, and the connection is left ready for the next one.
        """
        try:
            self._connection.execute("BEGIN IMMEDIATE")
            tx = Tx(self._connection)
            try:
                yield tx
                for work in _RIDERS:
                    work(tx)
                self._connection.execute("COMMIT")
            except BaseException:
                if self._connection.in_transaction:  # SQLite may have rolled back already
                    self._connection.execute("ROLLBACK")
                raise
        except sqlite3.ProgrammingError:
            raise
        except sqlite3.DatabaseError as err:
            raise StorageFailed(
                f"the database {self.path} could not be written ({err}); nothing was saved"
            ) from err

    def read(self) -> Tx:
        """For reads outside a transaction (each statement sees committed data)."""
        return Tx(self._connection)
