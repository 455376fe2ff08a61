"""Which bot runs on a store, so that two never share one by mistake.

- One ``screen-bot run`` per SQLite file: it holds an exclusive ``flock`` on a lock file
  beside the database while it runs (the OS releases it when the process ends, ``kill -9``
  included), and a second one is refused at start (:func:`sole_run`). Several instances of
  one bot need PostgreSQL.
- One bot per PostgreSQL database: each instance holds a session-level advisory lock
  naming its bot id (from getMe) while it runs, and an instance of another bot is refused
  at start (:func:`claim`).
- The store records the bot id of the last ``run`` (table ``last_bot``). A store another
  bot used before is taken over: Telegram numbers each bot's updates on its own, so the
  old bot's update ids in the inbox, and the newest update each shown question came
  after, would make the new bot's updates look already handled, or its answers typed
  before the question. Both are forgotten; the open screenings go on with the new bot.

The token is never stored or logged here: only the bot id (the number before its ``:``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ScreenBotError
from ..session import utc_now
from .db import OWNER_ONLY_FILE, Database, Store, Tx, schema
from .inbox import forget_all as forget_updates
from .sessions import forget_update_marks

logger = logging.getLogger(__name__)

schema(
    "last_bot",
    sqlite=[
        """CREATE TABLE IF NOT EXISTS last_bot (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    bot_id INTEGER NOT NULL,          -- the id getMe gave the last `screen-bot run`
    started_at TEXT NOT NULL          -- ISO 8601 UTC
)"""
    ],
    postgres=[
        """CREATE TABLE last_bot (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    bot_id BIGINT NOT NULL,
    started_at TEXT NOT NULL
)"""
    ],
)

# Seconds a new run waits for the lock of one still stopping: a stopping run lets the
# handlers in progress finish for up to 10 s (DRAIN_SECONDS in adapters/telegram/app.py).
STOPPING_GRACE = 15.0

# This process's lock files (see sole_run): a child forked without exec would share each
# one's lock, and keep it after this process ended.
_held: list[int] = []


def _drop_in_child() -> None:
    for descriptor in _held:
        with contextlib.suppress(OSError):
            os.close(descriptor)  # the child's copy only: the parent keeps its lock
    _held.clear()


os.register_at_fork(after_in_child=_drop_in_child)


def lock_file(database: Path) -> Path:
    return database.with_name(f"{database.name}-run.lock")


@contextmanager
def sole_run(db: Store) -> Iterator[None]:
    """On the SQLite file: while inside, this process is the one ``screen-bot run`` on it; a
    second is refused (exit 2) naming the first's process id. Nothing on PostgreSQL."""
    if not isinstance(db, Database):
        yield
        return
    path = lock_file(db.path)
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, OWNER_ONLY_FILE)
    except OSError as err:
        raise ScreenBotError(
            f"the lock file {path} cannot be opened ({err.strerror or err}): make the data "
            "directory writable"
        ) from None
    try:
        locked = _locked(descriptor, path)
        if locked is None:  # a filesystem that does not lock files: run as before the lock
            yield
            return
        if not locked:
            raise ScreenBotError(_second_run(db.path, os.pread(descriptor, 32, 0)))
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        _held.append(descriptor)
        yield
    finally:
        if descriptor in _held:
            _held.remove(descriptor)
        os.close(descriptor)


def _locked(descriptor: int, path: Path) -> bool | None:
    """Take the lock, waiting up to STOPPING_GRACE for a run that is still stopping (a
    restart begun before the old process ended); False when another run keeps it, None
    when the filesystem cannot lock files (some network shares): SQLite works there all
    the same, so the bot runs, only a second run would not be refused."""
    deadline = time.monotonic() + STOPPING_GRACE
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                logger.warning(
                    "the lock file %s cannot be locked (%s): a second 'screen-bot run' on "
                    "this database would not be refused",
                    path,
                    err.strerror or type(err).__name__,
                )
                return None
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _second_run(database: Path, pid: bytes) -> str:
    running = pid.decode(errors="replace").strip()
    which = f" (process {running})" if running.isdigit() else ""
    return (
        f"another 'screen-bot run'{which} is running on the database {database}: stop it "
        "first, or give this one its own SCREEN_BOT_DATA_DIR (several instances of one bot "
        "need PostgreSQL: SCREEN_BOT_DATABASE_URL)"
    )


def _lock_name(bot_id: int) -> str:
    return f"screen-bot/bot/{bot_id}"


def last(tx: Tx) -> int | None:
    """The bot id of the last ``run`` on this store (None: none recorded yet)."""
    row = tx.one("SELECT bot_id FROM last_bot WHERE one = 1")
    return int(row[0]) if row else None


def claim(db: Store, bot_id: int) -> None:
    """Make this store bot ``bot_id``'s for this run. On PostgreSQL the bot's lock is held
    from here to the end of the process, and an instance of another bot running on the
    store is refused (exit 2). A store another bot used before is taken over (see the
    module doc), with one warning."""
    with db.transaction() as tx:  # one start at a time, across processes (the write lock)
        previous = last(tx)
        if previous not in (None, bot_id) and db.held(_lock_name(previous)):
            raise ScreenBotError(
                f"bot {previous} is running on the database {db.where} (this is bot "
                f"{bot_id}): stop it first, or give this bot its own database"
            )
        db.hold(_lock_name(bot_id))
        if previous == bot_id:
            return
        tx.execute(
            "INSERT INTO last_bot (one, bot_id, started_at) VALUES (1, ?, ?) ON CONFLICT (one)"
            " DO UPDATE SET bot_id = excluded.bot_id, started_at = excluded.started_at",
            (bot_id, utc_now().isoformat()),
        )
        if previous is None:
            return  # a new store, or one from before bots were recorded
        unhandled = forget_updates(tx)
        forget_update_marks(tx)
    logger.warning(
        "this database was last used by bot %d; bot %d takes it over: the open screenings "
        "go on with this bot%s",
        previous,
        bot_id,
        f", and the {unhandled} update(s) bot {previous} received but never handled are dropped"
        if unhandled
        else "",
    )
