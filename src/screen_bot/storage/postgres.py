"""The store on a PostgreSQL server (``SCREEN_BOT_DATABASE_URL=postgresql://…``).

Same tables, same queries and the same guarantees as the SQLite file, so several bot
processes can share one database:

- write transactions run one at a time, like SQLite's ``BEGIN IMMEDIATE``: each takes a
  transaction-scoped advisory lock first (READ COMMITTED then sees every commit before
  it), so a load-change-save of the service is never interleaved with another's;
- :meth:`PostgresDatabase.try_lock` is a session-level advisory lock on a second
  connection: the bot holds one per chat while it handles that chat's updates, and the
  server releases it when the process ends, ``kill -9`` included (TCP keepalives set
  below make a vanished machine's locks go within about half a minute);
- a lost connection fails the transaction in progress (StorageFailed: nothing saved) and
  the next one connects again; a read, or taking a lock, on a connection the server has
  ended (a restart, ``idle_session_timeout``, a pooler closing idle clients) is run once
  more on a new connection;
- statements are timed (see :func:`session_options`), and so is a COMMIT (see
  :class:`CommitWatch`), so a server that takes a statement and does not answer fails it
  instead of holding the bot. A server that answers nothing at all (its processes stopped)
  cannot be bounded from here: psycopg has no client-side timeout for a statement.

Queries are written with ``?`` placeholders; they become ``%s`` here (and a literal
``%`` becomes ``%%``), outside quoted strings only. psycopg 3 is imported only when a
PostgreSQL URL is used (``pip install 'screen-bot[postgres]'``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..dburl import hidden
from ..errors import DatabaseBroken, NoDatabase, ScreenBotError, StorageFailed
from .db import Cursor, Params, Store, Tx, migrate, outdated, run_riders

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)
WRITE_LOCK = "screen-bot/write"


def lock_key_of(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` (the server's bigint)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


LOCK_TIMEOUT_MS = 5000  # as SQLite's busy timeout: a writer waits this long, then fails
# No statement of the bot's takes a second; 30 s is far from anything legitimate. Work that
# may take longer (a migration, a purge, reading the whole log) lifts both: see _UNHURRIED.
STATEMENT_TIMEOUT_MS = 30_000
IDLE_IN_TRANSACTION_MS = 60_000
# After a COMMIT was stopped waiting for a synchronous standby, commits do not wait for one
# (committed here, as that one was) for this long; then the next one tries again.
STANDBY_SKIPPED_S = 300
NO_TRANSACTION = "25P01"  # the warning of a ROLLBACK after a COMMIT that failed


def session_options() -> str:
    """Settings for each session, sent at connect: a lock waited for too long fails; a
    statement the server has not finished in 30 s is cancelled, and a session idle in a
    transaction for a minute is ended (a client stopped with the write lock held), each
    failing its transaction; a vanished client's session (and its locks) ends after ~10 s
    idle + 3 probes 5 s apart. (Read at each connect, so a test can lower a timeout.)"""
    return (
        f"-c lock_timeout={LOCK_TIMEOUT_MS} -c statement_timeout={STATEMENT_TIMEOUT_MS} "
        f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS} "
        "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 "
        "-c application_name=screen-bot"
    )


# The client's side of the same: a server cut off by the network fails the statement within
# about half a minute instead of hanging the bot (tcp_user_timeout: data not acknowledged).
# None of it fires while the server's machine acknowledges but its server does not answer.
CLIENT = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms
}
# The transaction and its write lock (a number of ours, so a literal: one simple query).
_BEGIN = f"BEGIN; SELECT pg_advisory_xact_lock({lock_key_of(WRITE_LOCK)})"
_BEGIN_RELAXED = f"{_BEGIN}; SET LOCAL synchronous_commit = off"
_BEGIN_LOCAL = f"{_BEGIN}; SET LOCAL synchronous_commit = local"  # flushed here, no standby
# For work that may take long: no statement or idle timeout until its transaction ends.
_UNHURRIED = "SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0"
# Reads that must agree with each other (the log's head and its records).
_SNAPSHOT = f"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {_UNHURRIED}"
_QUOTED = re.compile(r"('(?:[^']|'')*')")


@lru_cache(maxsize=512)
def placeholders(sql: str) -> str:
    """``?`` -> ``%s`` and ``%`` -> ``%%`` outside quoted strings (psycopg's format)."""
    parts = _QUOTED.split(sql)
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        parts[i] = parts[i].replace("%", "%%").replace("?", "%s")
    return "".join(parts)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ScreenBotError(
            "SCREEN_BOT_DATABASE_URL names a PostgreSQL database, but psycopg is not "
            "installed: pip install 'screen-bot[postgres]'"
        ) from None
    return psycopg


def _is_bug(err: Exception) -> bool:
    """An error in our SQL (raised, not reported as a failed write)."""
    sqlstate = getattr(err, "sqlstate", None)
    if sqlstate is None:  # raised by psycopg itself: wrong parameters
        return type(err).__name__ == "ProgrammingError"
    return sqlstate.startswith("42") and sqlstate != "42501"  # not 'insufficient privilege'


def _ended(connection: psycopg.Connection[Any]) -> bool:
    """Whether the session is over (the server ended it, or the network lost it)."""
    return connection.closed or connection.broken


class PgTx(Tx):
    dialect = "postgres"
    for_update = " FOR UPDATE"

    def has_table(self, name: str) -> bool:
        # Through pg_class, not to_regclass alone: a session that looked the name up before
        # caches "no such table", and waiting for the write lock does not clear that, so an
        # open that found no tables, then waited while another process created them, would
        # create them again ("already exists"). The lock a read of pg_class takes makes the
        # session take in the catalog's changes first.
        query = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = to_regclass(?))"
        return bool(self.one(query, (name,))[0])

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        if not params:
            cursor: Cursor = self._connection.execute(sql)
        else:
            cursor = self._connection.execute(placeholders(sql), params)
        return cursor


class PgRead(PgTx):
    """Reads outside a transaction: each statement on its own (see ``PostgresDatabase._read``)."""

    def __init__(self, store: PostgresDatabase) -> None:
        super().__init__(None)
        self._store = store

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        return self._store._read(sql, params)


class CommitWatch:
    """Asks the server to stop a COMMIT that has not returned after the statement timeout.

    PostgreSQL times each statement but not the commit it ends with, and a COMMIT waits for
    ever for a synchronous standby that is gone (``synchronous_standby_names`` naming a
    replica that died); the bot's thread, its other chats and its signal handling wait with
    it. A thread of this store sends a cancel request then. Cancelled in that wait, the
    COMMIT succeeds: the transaction is committed on this server, which warns that the
    standby may not have it (logged); cancelled before, it fails and nothing is saved. A
    COMMIT is watched, and unwatched as soon as it returns, under one lock, so a cancel
    never reaches the statement after it (one that arrives while the session is idle is
    ignored by the server).

    Waiting 30 s at every commit would then make each answer take a minute or more while
    the standby is down, for nothing: a commit that waited is kept only here too. So for
    the next ``STANDBY_SKIPPED_S`` commits do not wait for a standby (``standby_skipped``).
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self._lock = threading.Lock()
        self._watched: psycopg.Connection[Any] | None = None
        self._deadline = 0.0
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._skip_standby_until = 0.0

    def standby_skipped(self) -> bool:
        """Whether commits are, for now, not to wait for a synchronous standby."""
        return time.monotonic() < self._skip_standby_until

    @contextmanager
    def commit(self, connection: psycopg.Connection[Any]) -> Iterator[None]:
        with self._lock:
            self._watched = connection
            self._deadline = time.monotonic() + STATEMENT_TIMEOUT_MS / 1000
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="screen-bot commit watch", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._watched = None

    def _watch(self) -> None:
        while not self._stopped.wait(min(1.0, STATEMENT_TIMEOUT_MS / 1000)):
            with self._lock:
                connection = self._watched
                if connection is None or time.monotonic() < self._deadline:
                    continue
                self._watched = None
                self._skip_standby_until = time.monotonic() + STANDBY_SKIPPED_S
                logger.warning(
                    "PostgreSQL at %s: a COMMIT has waited %.0f s (for a synchronous standby "
                    "that does not answer?): asking the server to stop waiting; for %.0f "
                    "minutes commits do not wait for a standby",
                    self.where,
                    STATEMENT_TIMEOUT_MS / 1000,
                    STANDBY_SKIPPED_S / 60,
                )
                try:
                    connection.cancel_safe(timeout=5)
                except Exception as err:  # noqa: BLE001 - the server may not answer at all
                    logger.warning("the COMMIT could not be cancelled: %s", _first_line(err))

    def stop(self) -> None:
        self._stopped.set()


class PostgresDatabase(Store):
    """A PostgreSQL database shared by any number of screen-bot processes."""

    dialect = "postgres"
    shared = True

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self._pg = _psycopg()
        self._connection: psycopg.Connection[Any] | None = None
        self._locks: psycopg.Connection[Any] | None = None
        self._holding: psycopg.Connection[Any] | None = None  # hold()'s own session
        self._commits = CommitWatch(self.where)
        connection = self._connected()
        if not create and not PgTx(connection).has_table("schema_version"):
            self.close()
            raise NoDatabase(
                f"no screen-bot tables yet in {self.where}: nothing has been logged there"
            )
        doing = "reading the tables' versions"
        try:
            # Read first: a database already current is opened without the write lock, so
            # a command that only reads (log verify) is not failed by a writer holding it.
            if outdated(self.read(), self.where):
                doing = "creating the tables"
                with self.transaction(long=True) as tx:  # a migration may rewrite a big table
                    self.applied = migrate(tx, self.where)
        except StorageFailed as err:
            self.close()
            raise DatabaseBroken(f"{err.message} (while {doing})") from None
        except self._pg.Error as err:  # our SQL refused: tables of another program's
            self.close()
            raise DatabaseBroken(
                f"the database {self.where} is not a screen-bot database, or holds another "
                f"program's tables under screen-bot's names ({_first_line(err)}): left "
                "unchanged; point SCREEN_BOT_DATABASE_URL at screen-bot's own database"
            ) from None
        except BaseException:
            self.close()
            raise

    @property
    def where(self) -> str:
        return hidden(self.url)  # the URL without its password

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            connection: psycopg.Connection[Any] = self._pg.connect(
                self.url, autocommit=True, options=session_options(), **CLIENT
            )
        except self._pg.Error as err:
            raise DatabaseBroken(
                f"cannot connect to PostgreSQL at {self.where}: {_first_line(err)}"
            ) from None
        connection.add_notice_handler(self._warned)
        return connection

    def _warned(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        """Log the server's warnings: above all, a COMMIT that stopped waiting for a
        synchronous standby ("committed locally, but might not have been replicated")."""
        if diagnostic.severity_nonlocalized == "WARNING" and diagnostic.sqlstate != NO_TRANSACTION:
            detail = f" ({diagnostic.message_detail})" if diagnostic.message_detail else ""
            logger.warning("PostgreSQL at %s: %s%s", self.where, diagnostic.message_primary, detail)

    def _connected(self) -> psycopg.Connection[Any]:
        """The connection for transactions and reads, connected again if it was lost."""
        if self._connection is None or _ended(self._connection):
            self._connection = self._connect()
        return self._connection

    def close(self) -> None:
        self._commits.stop()
        for connection in (self._connection, self._locks, self._holding):
            if connection is not None:
                connection.close()
        self._connection = self._locks = self._holding = None

    def check(self) -> None:
        """The server answers, and the tables are there (created at open)."""
        try:
            self._connected().execute("SELECT 1 FROM schema_version LIMIT 1")
        except self._pg.Error as err:
            raise DatabaseBroken(f"PostgreSQL at {self.where}: {_first_line(err)}") from None

    @contextmanager
    def transaction(self, *, durable: bool = True, long: bool = False) -> Iterator[Tx]:
        """BEGIN; the write lock; the work; COMMIT. Rolled back on any error.

        Not ``durable``: ``synchronous_commit`` off for this transaction only (the server
        acknowledges before its WAL is flushed; a crash of the server, not of the bot, can
        lose it, and WAL order means nothing committed later survives without it).
        ``long``: no statement or idle timeout for this one (its COMMIT is watched as any:
        stopped, it only stops waiting for a standby)."""
        try:
            connection = self._connected()
        except DatabaseBroken as err:
            raise StorageFailed(f"{err.message}; nothing was saved") from None
        begin = _BEGIN if durable else _BEGIN_RELAXED
        if durable and self._commits.standby_skipped():
            begin = _BEGIN_LOCAL
        if long:
            begin = f"{begin}; {_UNHURRIED}"
        try:
            connection = self._begun(connection, begin)
            tx = PgTx(connection)
            try:
                yield tx
                run_riders(tx)
                with self._commits.commit(connection):
                    connection.execute("COMMIT")
            except BaseException:
                self._rolled_back(connection)
                raise
        except self._pg.Error as err:
            if _is_bug(err):
                raise
            raise StorageFailed(
                f"the database at {self.where} could not be written ({_first_line(err)}); "
                "nothing was saved"
            ) from err
        tx.committed()

    def _begun(self, connection: psycopg.Connection[Any], begin: str) -> psycopg.Connection[Any]:
        """``connection`` (or a new one) with a transaction begun (one round trip). A
        session the server ended while it was idle (a restart, ``idle_session_timeout``: a
        coordinator thinking at ``chat``'s prompt) fails at this first statement, when
        nothing of the transaction has run yet: it begins on a new connection instead.

        Any other failure of ``begin`` is rolled back before it is raised: its BEGIN opens
        the transaction block before the write lock is waited for, so a wait over the lock
        timeout leaves that block open and aborted, and every later BEGIN on this
        connection (the bot's only one) would fail too."""
        try:
            connection.execute(begin)
            return connection
        except BaseException as err:
            if not (isinstance(err, self._pg.Error) and _ended(connection)):
                self._rolled_back(connection)
                raise
        try:
            connection = self._connected()
        except DatabaseBroken as err:
            raise StorageFailed(f"{err.message}; nothing was saved") from None
        try:
            connection.execute(begin)
        except BaseException:
            self._rolled_back(connection)
            raise
        return connection

    def _rolled_back(self, connection: psycopg.Connection[Any]) -> None:
        """``connection`` out of any transaction a failure left it in, ready for the next
        one; one that cannot even roll back is closed (the next use connects again)."""
        idle = self._pg.pq.TransactionStatus.IDLE
        if _ended(connection) or connection.info.transaction_status == idle:
            return
        try:
            connection.execute("ROLLBACK")
        except self._pg.Error:
            connection.close()

    def read(self) -> Tx:
        return PgRead(self)

    def _read(self, sql: str, params: Params, *, again: bool = True) -> Cursor:
        """One statement outside a transaction. On a session the server has ended (a
        restart, ``idle_session_timeout``, a pooler or firewall closing idle clients) it
        runs once more on a new connection, as a read may; any other failure, and a
        server that cannot be reached, is StorageFailed."""
        try:
            connection = self._connected()
        except DatabaseBroken as err:
            raise StorageFailed(err.message) from None
        try:
            return PgTx(connection).execute(sql, params)
        except self._pg.Error as err:
            if _is_bug(err):
                raise
            if again and _ended(connection):
                return self._read(sql, params, again=False)
            raise self._unreadable(err) from err

    def _unreadable(self, err: Exception) -> StorageFailed:
        return StorageFailed(f"the database at {self.where} could not be read ({_first_line(err)})")

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A server's error in a read as StorageFailed; one of our own SQL stays itself."""
        try:
            yield
        except self._pg.Error as err:
            if _is_bug(err):
                raise
            raise self._unreadable(err) from err

    @contextmanager
    def separate_reader(self) -> Iterator[Tx]:
        """A new session (its statements timed as the store's reads are), closed at the end.
        A failure is StorageFailed, as a read of the store's own connection."""
        try:
            connection = self._connect()
        except DatabaseBroken as err:
            raise StorageFailed(err.message) from None
        try:
            with self._reading():
                yield PgTx(connection)
        finally:
            connection.close()

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        """A REPEATABLE READ READ ONLY transaction, without the timeouts (reading all of a
        big log may take long); rolled back at the end (it changes nothing)."""
        try:
            self._read(_SNAPSHOT, ())  # on a new connection if the server ended this one
            with self._reading():
                yield PgTx(self._connected())
        finally:
            if self._connection is not None:  # also when the BEGIN's second statement failed
                self._rolled_back(self._connection)

    def try_lock(self, name: str) -> bool:
        return self._try_lock(name, again=True)

    def _try_lock(self, name: str, *, again: bool) -> bool:
        try:
            if self._locks is None or _ended(self._locks):
                self._locks = self._connect()
            cursor = self._locks.execute("SELECT pg_try_advisory_lock(%s)", (lock_key_of(name),))
            row = cursor.fetchone()
            return row is not None and bool(row[0])
        except self._pg.Error as err:
            if again and self._locks is not None and _ended(self._locks):
                # The server ended the session while it was idle (and its locks with it).
                return self._try_lock(name, again=False)
            raise StorageFailed(f"the lock {name!r} could not be taken: {err}") from None
        except DatabaseBroken as err:
            raise StorageFailed(f"the lock {name!r} could not be taken: {err}") from None

    def unlock(self, name: str) -> None:
        if self._locks is None or _ended(self._locks):
            return  # the server ended that session, and its locks with it
        with contextlib.suppress(self._pg.Error):  # a broken session: its locks went with it
            self._locks.execute("SELECT pg_advisory_unlock(%s)", (lock_key_of(name),))

    def hold(self, name: str) -> None:
        """A shared session-level lock on a session of its own, which nothing else uses, so
        that it is never reconnected (and its locks silently gone) as the chat locks' is."""
        try:
            self._held_session().execute("SELECT pg_advisory_lock_shared(%s)", (lock_key_of(name),))
        except (self._pg.Error, DatabaseBroken) as err:
            raise StorageFailed(f"the lock {name!r} could not be taken: {err}") from None

    def _held_session(self) -> psycopg.Connection[Any]:
        if self._holding is None:
            self._holding = self._connect()
        return self._holding

    def held(self, name: str) -> bool:
        """Taken at once and released when nobody holds it; else another session does."""
        key = lock_key_of(name)
        try:
            session = self._held_session()
            row = session.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row is not None and row[0]:
                session.execute("SELECT pg_advisory_unlock(%s)", (key,))
                return False
            return True
        except (self._pg.Error, DatabaseBroken) as err:
            raise StorageFailed(f"the lock {name!r} could not be read: {err}") from None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
