"""The one way to the database: a :class:`Store` per dialect, transactions, migrations.

:class:`Database` is the embedded SQLite file (the default: WAL, ``synchronous=FULL``,
owner-only files, a busy timeout); :class:`~.postgres.PostgresDatabase` is a PostgreSQL
server (``SCREEN_BOT_DATABASE_URL``). Repositories (:mod:`.sessions`, :mod:`.ledger`, …)
write their queries once, with ``?`` placeholders (a store translates them), take a
:class:`Tx`, and keep what differs per dialect (DDL, triggers) in their migrations. So
several writes compose into one transaction, on either store::

    with database.transaction() as tx:
        ledger.append(tx, ...)
        sessions.delete(tx, ...)

Write transactions run one at a time (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a
transaction-scoped advisory lock), across processes too. A failed write (a full disk, a
read-only file, a lost server) rolls the whole transaction back and is raised as
:class:`StorageFailed`, so a front end can tell the user that nothing was saved.

Each repository registers its schema as numbered versions per dialect (:func:`schema`);
opening a store applies the versions it lacks, in one transaction, and records them in
``schema_version`` (so two processes starting together migrate once).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import shutil
import sqlite3
import stat
import tempfile
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ..errors import DatabaseBroken, NoDatabase, StorageFailed

Params = Sequence[Any]
logger = logging.getLogger(__name__)
OWNER_ONLY_FILE, OWNER_ONLY_DIR = 0o600, 0o700
BUSY_MS = 5000  # how long a write waits for another process's
# SQLite's primary result codes (an error's sqlite_errorcode & 0xFF)
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY = 3, 5, 6, 8
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 10, 11, 13, 14, 26
# an extended code: a file SQLite must create is refused for want of write permission on
# its directory (chattr +i, a read-only mount: SQLITE_CANTOPEN instead)
SQLITE_READONLY_DIRECTORY = SQLITE_READONLY | 6 << 8
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every database file
_DAMAGED_FIX = (
    ". Stop every screen-bot process, keep a copy of the file, then restore the latest "
    "backup (or salvage it: sqlite3 DAMAGED .recover | sqlite3 NEW, and move NEW in its place)"
)


class Cursor(Protocol):
    """What a statement returns, on either store."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Tx:
    """A unit of work on one connection: inside ``transaction()`` or a plain read.

    ``dialect`` names the store ("sqlite" or "postgres"); ``for_update`` is the suffix that
    locks the rows a SELECT reads until the transaction ends (nothing on SQLite, where a
    write transaction already excludes every other writer).
    """

    dialect = "sqlite"
    for_update = ""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._on_commit: list[Callable[[], None]] = []

    def on_commit(self, work: Callable[[], None]) -> None:
        """Run ``work()`` once this transaction has committed (never if it did not)."""
        self._on_commit.append(work)

    def committed(self) -> None:
        """Called by the store after COMMIT."""
        for work in self._on_commit:
            work()

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        cursor: Cursor = self._connection.execute(sql, params)
        return cursor

    def has_table(self, name: str) -> bool:
        return (
            self.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
            is not None
        )

    def one(self, sql: str, params: Params = ()) -> Any:
        """The first row, or None."""
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Params = ()) -> list[Any]:
        return self.execute(sql, params).fetchall()


# -- schemas and migrations ---------------------------------------------------------------------

# A version of a schema: SQL statements, or a function for what SQL alone cannot say.
Step = str | tuple[str, ...] | Callable[[Tx], None]
DIALECTS = ("sqlite", "postgres")


@dataclass(frozen=True)
class Schema:
    """A repository's tables: version n is ``versions[dialect][n - 1]``."""

    name: str
    versions: dict[str, tuple[Step, ...]]


_SCHEMAS: list[Schema] = []


@dataclass(frozen=True)
class OpenWork:
    """Idempotent work done at an open, after the migrations (the ledger's head row), when
    ``needed`` (a read) says so: an up-to-date database is opened without a write."""

    work: Callable[[Tx], None]
    needed: Callable[[Tx], bool]


_ON_OPEN: list[OpenWork] = []


def schema(name: str, *, sqlite: Sequence[Step], postgres: Sequence[Step]) -> None:
    """Register a repository's schema versions, one list per dialect (the same length:
    version n means the same change on both)."""
    if len(sqlite) != len(postgres):
        raise ValueError(f"schema {name}: one step per version and dialect")
    _SCHEMAS.append(Schema(name, {"sqlite": tuple(sqlite), "postgres": tuple(postgres)}))


def on_open(
    needed: Callable[[Tx], bool],
) -> Callable[[Callable[[Tx], None]], Callable[[Tx], None]]:
    """Register ``work(tx)`` (idempotent), run at an open after the migrations whenever
    ``needed(tx)`` (which only reads) is true."""

    def register(work: Callable[[Tx], None]) -> Callable[[Tx], None]:
        _ON_OPEN.append(OpenWork(work, needed))
        return work

    return register


def _apply(tx: Tx, step: Step) -> None:
    if isinstance(step, str):
        tx.execute(step)
    elif isinstance(step, tuple):
        for statement in step:
            tx.execute(statement)
    else:
        step(tx)


def outdated(tx: Tx, where: str) -> bool:
    """Whether opening the database must write (a schema version it lacks, or an open's
    work to do), found by reads only; a newer schema or an unknown table group is refused
    (DatabaseBroken)."""
    if not tx.has_table("schema_version"):
        return True
    found = versions(tx)
    _refuse_unknown(where, found)
    for registered in _SCHEMAS:
        have, newest = found.get(registered.name, 0), len(registered.versions[tx.dialect])
        _refuse_newer(where, registered.name, have, newest)
        if have < newest:
            return True
    return any(work.needed(tx) for work in _ON_OPEN)


NEWER = "a newer screen-bot wrote it; upgrade every instance together"


def _refuse_newer(where: str, name: str, have: int, newest: int) -> None:
    if have > newest:
        raise DatabaseBroken(
            f"the database {where} has version {have} of the {name} tables, newer than this "
            f"screen-bot knows ({newest}): {NEWER}"
        )


def _refuse_unknown(where: str, found: dict[str, int]) -> None:
    """A table group this program does not know is a newer screen-bot's (one that added
    it): used here, its tables would be neither kept up nor expired."""
    known = {registered.name for registered in _SCHEMAS}
    for name, version in sorted(found.items()):
        if name not in known:
            raise DatabaseBroken(
                f"the database {where} has version {version} of the {name} tables, which "
                f"this screen-bot does not know: {NEWER}"
            )


def migrate(tx: Tx, where: str) -> dict[str, int]:
    """Bring every registered schema to its newest version; return the versions applied.

    A schema newer than this program knows, or a table group it does not know (a
    database written by a later screen-bot), is refused rather than used half-understood,
    naming the database (``where``). A
    database already at the newest versions gets no DDL at all, so the bot may run as a
    role that may not create tables.
    """
    if not tx.has_table("schema_version"):
        tx.execute("CREATE TABLE schema_version (name TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    found = versions(tx)
    _refuse_unknown(where, found)
    applied: dict[str, int] = {}
    for registered in _SCHEMAS:
        steps = registered.versions[tx.dialect]
        have = found.get(registered.name, 0)
        _refuse_newer(where, registered.name, have, len(steps))
        for step in steps[have:]:
            _apply(tx, step)
        if have < len(steps):
            tx.execute(
                "INSERT INTO schema_version (name, version) VALUES (?, ?) ON CONFLICT (name)"
                " DO UPDATE SET version = excluded.version",
                (registered.name, len(steps)),
            )
            applied[registered.name] = len(steps)
    for open_work in _ON_OPEN:
        if open_work.needed(tx):
            open_work.work(tx)
    return applied


# The screening log's tables, with columns every screen-bot release gave them: a file
# without schema_version that holds them is one of screen-bot's from before versions.
_LOG_COLUMNS = {
    "screening_log": frozenset({"number", "at", "protocol_id", "verdict", "prev_hash", "hash"}),
    "screening_log_head": frozenset({"id", "head_number", "head_hash", "base_number", "base_hash"}),
}


@functools.cache
def our_tables() -> frozenset[str]:
    """The tables screen-bot's SQLite schema has (made in memory, once)."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(Tx(connection), ":memory:")
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return frozenset(row[0] for row in rows)
    finally:
        connection.close()


def versions(tx: Tx) -> dict[str, int]:
    """The schema versions recorded in the database."""
    return {name: version for name, version in tx.all("SELECT name, version FROM schema_version")}


# Work every transaction carries just before it commits (the inbox marks the update being
# handled as done in the same transaction as the change it caused).
_RIDERS: list[Callable[[Tx], None]] = []


def rider(work: Callable[[Tx], None]) -> Callable[[Tx], None]:
    """Register ``work(tx)``, run inside every write transaction before its COMMIT."""
    _RIDERS.append(work)
    return work


def run_riders(tx: Tx) -> None:
    for work in _RIDERS:
        work(tx)


def stamped_outside(
    column: str, before: datetime, ahead: datetime | None
) -> tuple[str, tuple[str, ...]]:
    """The condition "``column`` before ``before`` (or, with ``ahead``, after it)" and its
    values: what has waited, and what a clock that was ahead stamped in the future."""
    if ahead is None:
        return f"{column} < ?", (before.isoformat(),)
    return f"({column} < ? OR {column} > ?)", (before.isoformat(), ahead.isoformat())


def add_columns(tx: Tx, table: str, columns: dict[str, str]) -> None:
    """Add the columns a table of an older SQLite database lacks (name -> SQL type)."""
    present = {row[1] for row in tx.all(f"PRAGMA table_info({table})")}
    for name, sql_type in columns.items():
        if name not in present:
            tx.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")


# -- the store interface --------------------------------------------------------------------------


class Store(ABC):
    """What the service, the reports and the bot need of a database, on any dialect."""

    dialect: str
    # Several processes may share this store (and so need :meth:`try_lock` between them).
    shared: bool = False
    # The schema versions this open applied (name -> version); empty when up to date.
    applied: dict[str, int] = {}

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the data is, for messages (never a password)."""

    @abstractmethod
    def transaction(
        self, *, durable: bool = True, long: bool = False
    ) -> AbstractContextManager[Tx]:
        """One write transaction: all of it, or none (StorageFailed when a write fails).

        ``durable=False`` is for bookkeeping that is safe to lose in a power cut (which
        message shows a question; that a verdict was sent): committed, and kept across a
        crash of the process, but not forced to disk before the call returns. The next
        durable commit forces it too, so nothing committed later survives without it.

        ``long`` is for work that may take longer than a store lets a statement take (a
        migration, a purge of a big log): PostgreSQL's timeouts do not apply to it.
        """

    @abstractmethod
    def read(self) -> Tx:
        """For reads outside a transaction (each statement sees committed data)."""

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[Tx]:
        """For reads that must agree with each other while others write (the log's head,
        its checkpoint and its records): every statement sees the data as it was at the
        first, however long they take."""

    @abstractmethod
    def separate_reader(self) -> AbstractContextManager[Tx]:
        """Reads as :meth:`read`'s, on a connection of their own, opened here and closed at
        the end: for a long read on another thread (the bot's /stats reading a year of log)
        while this store's connection serves the event loop. Opened, used and closed on
        that one thread; it never sees a transaction of the store's connection."""

    @abstractmethod
    def check(self) -> None:
        """Refuse a damaged or unreachable database (DatabaseBroken), naming the fix."""

    @abstractmethod
    def close(self) -> None: ...

    def try_lock(self, name: str) -> bool:
        """Take the lock ``name`` shared with every other process on this store, if free.

        Held until :meth:`unlock` (or until this process ends, even by ``kill -9``). An
        embedded store has one process, so its locks are always free.
        """
        return True

    def unlock(self, name: str) -> None:  # noqa: B027 - nothing to release on one process
        """Release a lock taken with :meth:`try_lock`."""

    def hold(self, name: str) -> None:  # noqa: B027 - one process: nobody to tell
        """Hold the lock ``name``, shared with the other processes holding it, until this
        store is closed or this process ends (even by ``kill -9``)."""

    def held(self, name: str) -> bool:
        """Whether another process holds the lock ``name`` (:meth:`hold`, :meth:`try_lock`)."""
        return False

    def forget_deleted(self) -> None:  # noqa: B027 - by default there is nothing cheap to do
        """Let what was deleted leave the disk too, as far as the store allows at once.

        PostgreSQL keeps deleted rows in the table's files until their space is reused;
        only VACUUM FULL, which locks the table, rewrites it without them: too heavy for
        each /forget, so README names it for the site's administrator."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- SQLite -------------------------------------------------------------------------------------


def _create_database(path: Path) -> None:
    """A new SQLite file, owner-only and in WAL mode, made under another name and linked
    into place: ``path`` is never an empty file, which every command refuses as a restore
    that failed (a kill or a full disk mid-creation, or a second command starting in that
    moment); a file another process linked there first is kept."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    os.close(handle)
    try:
        connection = sqlite3.connect(temporary)
        try:
            connection.execute("PRAGMA journal_mode=WAL")  # writes the file's first page
        finally:
            connection.close()
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links (FAT, some network shares)
            if not path.exists():
                os.replace(temporary, path)
    finally:
        for leftover in (temporary, *_companions(Path(temporary))):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _companions(path: Path) -> tuple[Path, Path]:
    return Path(f"{path}-wal"), Path(f"{path}-shm")


def _empty(path: Path) -> bool:
    """A 0-byte file where the database should be, with no -wal (whose pages it may all be
    in): a copy or a restore that failed."""
    return path.is_file() and path.stat().st_size == 0 and not _companions(path)[0].exists()


def _tighten(path: Path) -> None:
    """An existing file (and its -wal, -shm) that others may read becomes owner-only."""
    for file in (path, *_companions(path)):
        if file.exists() and stat.S_IMODE(file.stat().st_mode) & 0o077:
            file.chmod(OWNER_ONLY_FILE)


def _restore_companions(path: Path) -> None:
    """SQLite creates the -wal and -shm with the database file's mode, so those a read of
    a read-only file left stay read-only once the file is writable again, and every write
    would fail: ours get the owner's write permission back."""
    for file in _companions(path):
        with contextlib.suppress(OSError):
            info = file.stat()
            if info.st_uid == os.geteuid() and not info.st_mode & stat.S_IWUSR:
                file.chmod(OWNER_ONLY_FILE)


def _make_directory(directory: Path) -> None:
    if not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(OWNER_ONLY_DIR)  # mkdir's mode is cut by the umask


_CANNOT_WRITE = {
    errno.EROFS: "its filesystem is mounted read-only: remount it read-write",
    errno.EACCES: "no write permission: make it writable for the user running screen-bot "
    "(chmod u+w, or chown)",
    errno.EPERM: "writing it is not permitted (an immutable file? lsattr, chattr -i)",
    errno.EISDIR: "it is a directory, not a database file: move it away, or set "
    "SCREEN_BOT_DATA_DIR to screen-bot's data directory",
}


def _why_unwritable(path: Path) -> str | None:
    """Why SQLite cannot write the database at ``path``, and what to do; None when it can
    (or when there is no file yet)."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK))
    except FileNotFoundError:
        return None
    except OSError as err:
        return _CANNOT_WRITE.get(err.errno or 0, err.strerror or str(err))
    companions = _companions(path)
    for companion in companions:
        if companion.exists() and not os.access(companion, os.W_OK):
            return f"{companion} is read-only: make it writable (chmod u+w, or chown)"
    if all(companion.exists() for companion in companions):
        return None
    directory = path.parent
    if os.access(directory, os.W_OK | os.X_OK):
        return None
    if os.statvfs(directory).f_flag & os.ST_RDONLY:
        return _CANNOT_WRITE[errno.EROFS]
    return (
        f"its directory {directory} is not writable, and SQLite keeps {path.name}-wal and "
        f"{path.name}-shm beside the file: make the directory writable (chmod u+w, chattr -i)"
    )


def _disk_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < 1 << 20
    except OSError:
        return False


def _sqlite_header(path: Path) -> bool:
    """Whether the file starts as every SQLite database does (one that does not is another
    program's file, e.g. a CSV given for the database: salvage advice would overwrite it)."""
    try:
        with path.open("rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return True  # unknown: the caller's other reasons apply


def _failure(path: Path, err: BaseException | None, ours: bool = False) -> str:
    """The one line for an open that failed: the file, the cause, and its fix (the advice
    to restore a backup only for a file SQLite finds damaged, or for one of screen-bot's
    own, ``ours``, that fails for no reason named here: a table of it dropped)."""
    code = getattr(err, "sqlite_errorcode", 0) & 0xFF
    if code == SQLITE_NOTADB and not _sqlite_header(path):
        return (
            f"the file {path} is not a screen-bot database (not an SQLite file): left "
            "unchanged; check the path (SCREEN_BOT_DATA_DIR, --database)"
        )
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return f"the database {path} is damaged ({err}){_DAMAGED_FIX}"
    if code == SQLITE_FULL or (code == SQLITE_IOERR and _disk_full(path)):
        return f"the disk holding the database {path} is full ({err}): free some space"
    if code in (SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_IOERR):
        why = _why_unwritable(path)
        if why is not None:
            return f"the database {path} cannot be written ({err}): {why}"
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return f"the database {path} is busy ({err}): another process holds it; try again"
    if code in (SQLITE_IOERR, SQLITE_CANTOPEN):
        return f"the database {path} cannot be read or written ({err}): check its disk"
    if ours:
        return f"the database {path} is damaged ({err}){_DAMAGED_FIX}"
    return (
        f"the database {path} cannot be used by this screen-bot ({err}): is it another "
        "program's file?"
    )


def _write_hint(path: Path, err: sqlite3.Error) -> str:
    """What to do about a write that failed, when the cause is clear."""
    code = getattr(err, "sqlite_errorcode", 0) & 0xFF
    if code == SQLITE_FULL or (code == SQLITE_IOERR and _disk_full(path)):
        return ": free some space"
    if code == SQLITE_READONLY:
        why = _why_unwritable(path)
        return f": {why}" if why else ""
    return ""


class Database(Store):
    """The SQLite file (the embedded default), with every repository's tables in it.

    Opened only to read (``existing``), a file that cannot be written is opened read-only:
    it can still be read, and a write fails as StorageFailed. In a read-only directory or
    filesystem, where SQLite cannot create the -shm it reads a WAL file with, it is refused
    with the fix (see :meth:`_connect_read_only`).
    """

    dialect = "sqlite"
    read_only = False

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = Path(path)
        try:
            self._open(create)
        except BaseException:
            if hasattr(self, "_connection"):
                self._connection.close()
            raise

    def _open(self, create: bool) -> None:
        path, ours = self.path, False
        try:
            if create:
                _make_directory(path.parent)
            elif path.parent.exists() and not path.parent.is_dir():
                raise NoDatabase(
                    f"the data directory {path.parent} is a file, not a directory: there is "
                    "no database there (SCREEN_BOT_DATA_DIR sets the data directory)"
                )
            elif not path.exists():
                raise NoDatabase(
                    f"no database yet at {path}: nothing has been logged here "
                    "('screen-bot where' shows the data directory; SCREEN_BOT_DATA_DIR sets it)"
                )
            if _empty(path):
                # Refused by the commands that create the database too: made into a new
                # one, a failed restore would start a new log on top of it, unreported.
                raise DatabaseBroken(
                    f"the database {path} is an empty file (0 bytes): nothing screen-bot "
                    "logged is in it (a copy or a restore that failed?); left unchanged"
                )
            if os.access(path, os.W_OK):
                _restore_companions(path)
            why_not = _why_unwritable(path)
            if why_not is not None and (create or not path.is_file()):
                raise DatabaseBroken(f"the database {path} cannot be written: {why_not}")
            if not path.exists():
                _create_database(path)
            self.read_only = why_not is not None
            if why_not is not None:
                self._connection = self._connect_read_only(why_not)
            else:
                self._connection = self._connect()
            ours = self._refuse_foreign(existing=not create)
            if not self.read_only:
                _tighten(path)
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute("PRAGMA synchronous=FULL")
                # Deleted rows are overwritten with zeros, not left in free pages: a
                # forgotten screening must not stay readable in the file (SQLite's default
                # is off).
                self._connection.execute("PRAGMA secure_delete=ON")
            self._connection.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            # Only reads unless the tables need a newer version: a read-only file is read.
            if outdated(self.read(), str(path)):
                if why_not is not None:
                    raise DatabaseBroken(
                        f"the database {path} needs its tables brought to this screen-bot's "
                        f"version, and cannot be written: {why_not}"
                    )
                with self.transaction() as tx:
                    self.applied = migrate(tx, str(path))
        except sqlite3.DatabaseError as err:
            raise DatabaseBroken(_failure(path, err, ours)) from None
        except StorageFailed as err:
            raise DatabaseBroken(_failure(path, err.__cause__, ours)) from None
        except OSError as err:
            raise DatabaseBroken(
                f"the database {path}: {err.strerror or err}"
                + (f": {_CANNOT_WRITE[err.errno]}" if err.errno in _CANNOT_WRITE else "")
            ) from None

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def _read_only_uri(self) -> str:
        return f"file:{urllib.parse.quote(str(self.path.absolute()))}?mode=ro"

    def _connect_read_only(self, why_not: str) -> sqlite3.Connection:
        """A read-only connection (``mode=ro``). Where SQLite cannot create the -shm file a
        WAL database needs, the file is refused: reading it as ``immutable`` could give a
        torn read if it is written meanwhile (a read-only mount of a directory a bot
        writes), and nothing here can tell."""
        connection = sqlite3.connect(
            self._read_only_uri(), uri=True, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as err:
            connection.close()
            code = err.sqlite_errorcode
            if code & 0xFF != SQLITE_CANTOPEN and code != SQLITE_READONLY_DIRECTORY:
                raise
            raise DatabaseBroken(
                f"the database {self.path} cannot be read where it is: SQLite needs to "
                f"create {self.path.name}-shm beside it, and {why_not}; or copy the file to "
                "a writable directory and point SCREEN_BOT_DATA_DIR there"
            ) from None
        return connection

    def _refuse_foreign(self, *, existing: bool) -> bool:
        """Refuse (never change) a file that is not screen-bot's: tables of another program
        and no ``schema_version``. Commands that only read also refuse a file without
        ``schema_version`` unless it holds screen-bot's log (one from before versions,
        migrated then as by every command): an empty database, or one with only a table
        of one of screen-bot's names, is left unchanged. True when the file has
        ``schema_version``: screen-bot's own."""
        tables = {
            row[0]
            for row in self.read().all(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if "schema_version" in tables:
            return True
        foreign = sorted(tables - our_tables())
        if foreign:
            raise DatabaseBroken(
                f"the file {self.path} is not a screen-bot database (it has tables "
                f"{', '.join(foreign[:5])}{', …' if len(foreign) > 5 else ''}, and no "
                "schema_version): left unchanged; point SCREEN_BOT_DATA_DIR at screen-bot's "
                "data directory"
            )
        if existing and not self._holds_our_log(tables):
            raise DatabaseBroken(
                f"the file {self.path} is not a screen-bot database (no schema_version "
                "and no screening log): left unchanged; point SCREEN_BOT_DATA_DIR at "
                "screen-bot's data directory"
            )
        return False

    def _holds_our_log(self, tables: set[str]) -> bool:
        """Whether the file has screen-bot's log tables, by their names and columns (another
        program's tables of those names are not migrated)."""
        read = self.read()
        return all(
            table in tables
            and columns <= {row[1] for row in read.all(f"PRAGMA table_info({table})")}
            for table, columns in _LOG_COLUMNS.items()
        )

    @classmethod
    def existing(cls, path: Path) -> Database:
        """Open a database that must exist already (commands that only read)."""
        return cls(path, create=False)

    @property
    def where(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._connection.close()

    def forget_deleted(self) -> None:
        """Empty the write-ahead log into the file and truncate it: the log still holds the
        pages as they were before a deletion (an update's raw text, a forgotten screening)
        until it wraps. Skipped at once, not waited for, while another connection writes."""
        self._connection.execute("PRAGMA busy_timeout=0")
        try:
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as err:
            logger.info("write-ahead log not emptied now: %s", type(err).__name__)
        finally:
            self._connection.execute(f"PRAGMA busy_timeout={BUSY_MS}")

    def __enter__(self) -> Database:
        return self

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
    def transaction(self, *, durable: bool = True, long: bool = False) -> Iterator[Tx]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error: all of it, or none.

        Not ``durable``: the commit is appended to the WAL without waiting for the disk
        (``synchronous=NORMAL``; the WAL keeps commits in order, so a later FULL commit's
        sync covers it).

        A database error (full disk, read-only file, I/O error) is raised as StorageFailed,
        also when it happens at COMMIT, and the connection is left ready for the next one.
        ``long`` changes nothing here: SQLite times no statement.
        """
        try:
            if not durable:
                self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute("BEGIN IMMEDIATE")
            tx = Tx(self._connection)
            try:
                yield tx
                run_riders(tx)
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
                + _write_hint(self.path, err)
            ) from err
        finally:
            if not durable:
                with contextlib.suppress(sqlite3.Error):  # a broken connection fails anyway
                    self._connection.execute("PRAGMA synchronous=FULL")
        tx.committed()

    def read(self) -> Tx:
        return Tx(self._connection)

    @contextmanager
    def separate_reader(self) -> Iterator[Tx]:
        """Read-only (``mode=ro``: a file gone meanwhile is an error, not a new empty one);
        bound to the thread that opens it (sqlite3's own check), unlike the store's
        connection. A failure to open or read is StorageFailed, as on PostgreSQL."""
        unread = f"the database {self.path} could not be read"
        try:
            connection = sqlite3.connect(self._read_only_uri(), uri=True, isolation_level=None)
        except sqlite3.DatabaseError as err:
            raise StorageFailed(f"{unread} ({err})") from err
        try:
            connection.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            yield Tx(connection)
        except sqlite3.ProgrammingError:
            raise
        except sqlite3.DatabaseError as err:
            raise StorageFailed(f"{unread} ({err})") from err
        finally:
            connection.close()

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        """A read transaction: WAL mode keeps its view from the first read to the end."""
        self._connection.execute("BEGIN")
        try:
            yield Tx(self._connection)
        finally:
            with contextlib.suppress(sqlite3.Error):  # closed meanwhile (an export cut short)
                if self._connection.in_transaction:
                    self._connection.execute("COMMIT")
