"""Which bot runs on a store, so that two never share one by mistake.

One ``screen-bot run`` per SQLite file: it holds an exclusive ``flock`` on a lock file
beside the database while it runs (the OS releases it when the process ends, ``kill -9``
included), and a second one is refused at start (:func:`sole_run`). Several instances of
one bot need PostgreSQL.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ScreenBotError
from .db import OWNER_ONLY_FILE, Database, Store

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
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ScreenBotError(
                    f"the lock file {path} cannot be locked ({err.strerror or err})"
                ) from None
            raise ScreenBotError(_second_run(db.path, os.pread(descriptor, 32, 0))) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        _held.append(descriptor)
        yield
    finally:
        if descriptor in _held:
            _held.remove(descriptor)
        os.close(descriptor)


def _second_run(database: Path, pid: bytes) -> str:
    running = pid.decode(errors="replace").strip()
    which = f" (process {running})" if running.isdigit() else ""
    return (
        f"another 'screen-bot run'{which} is running on the database {database}: stop it "
        "first, or give this one its own SCREEN_BOT_DATA_DIR (several instances of one bot "
        "need PostgreSQL: SCREEN_BOT_DATABASE_URL)"
    )
