"""Storage under failure: a full disk or read-only file is a StorageFailed with nothing
half-written and the connection still usable; a damaged file is refused at start-up; the
inbox marks an update done in the transaction of its change, and only then."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot_process import SCREEN_BOT
from conftest import DIALOGS
from screen_bot.adapters import terminal
from screen_bot.errors import DatabaseBroken, StorageFailed
from screen_bot.protocol.catalog import Catalog
from screen_bot.service import DEFAULT_LIFETIME, TERMINAL, ScreeningService
from screen_bot.storage import Database, inbox, sessions
from screen_bot.storage.inbox import Received


def fill(db: Database, rows: int = 200) -> None:
    with db.transaction() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS filler (a TEXT)")
        for _ in range(rows):
            tx.execute("INSERT INTO filler VALUES (?)", ("x" * 500,))


def damaged(path: Path) -> Path:
    """A database at ``path`` with one page in the middle overwritten, as by a failing disk."""
    with Database(path) as db:
        fill(db)
        db.read().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    for offset in range(4096 * 3, 4096 * 4, 7):
        data[offset] = 0x55
    path.write_bytes(bytes(data))
    return path


def test_a_full_disk_fails_the_whole_transaction_and_the_next_one_works(db: Database) -> None:
    fill(db)
    pages = db.read().one("PRAGMA page_count")[0]
    db.read().execute(f"PRAGMA max_page_count = {pages}")  # the disk is full now
    with pytest.raises(StorageFailed, match="could not be written .*full"), db.transaction() as tx:
        inbox.receive(tx, [Received(1, 5, "{}")], lifetime=DEFAULT_LIFETIME)
        tx.execute("INSERT INTO filler VALUES (?)", ("y" * 100_000,))
    assert inbox.pending(db.read()) == []  # nothing of it was kept
    db.read().execute(f"PRAGMA max_page_count = {pages * 10}")  # space again
    with db.transaction() as tx:
        inbox.receive(tx, [Received(1, 5, "{}")], lifetime=DEFAULT_LIFETIME)
    assert [r.update_id for r in inbox.pending(db.read())] == [1]


def test_a_read_only_database_is_a_storage_failure(db: Database) -> None:
    db.read().execute("PRAGMA query_only = ON")
    with pytest.raises(StorageFailed, match="nothing was saved"), db.transaction() as tx:
        sessions.forget(tx, 5)
    db.read().execute("PRAGMA query_only = OFF")
    with db.transaction() as tx:
        sessions.forget(tx, 5)


def test_a_damaged_database_is_refused_with_its_path_and_the_fix(tmp_path: Path) -> None:
    path = damaged(tmp_path / "screen-bot.sqlite3")
    with Database(path) as db, pytest.raises(DatabaseBroken) as refused:
        db.check()
    assert str(path) in refused.value.message and "backup" in refused.value.message


def test_the_bot_refuses_to_start_on_a_damaged_database(data_dir: Path) -> None:
    path = damaged(data_dir / "screen-bot.sqlite3")
    env = {
        "PATH": "/usr/bin:/bin",
        "SCREEN_BOT_DATA_DIR": str(data_dir),
        "SCREEN_BOT_CACHE_DIR": os.environ["SCREEN_BOT_CACHE_DIR"],  # the test's (conftest)
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token_abcdefghijklmnopqrstuvwxyz",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot",  # never reached
    }
    done = subprocess.run(
        [str(SCREEN_BOT), "run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert f"the database {path} is damaged" in done.stderr and "backup" in done.stderr


def test_an_update_is_marked_done_by_the_transaction_of_its_change(db: Database) -> None:
    with db.transaction() as tx:
        inbox.receive(
            tx, [Received(10, 5, '{"a": 1}'), Received(11, 5, "{}")], lifetime=DEFAULT_LIFETIME
        )
    with inbox.handling(10):
        with pytest.raises(RuntimeError), db.transaction() as tx:
            sessions.forget(tx, 5)
            raise RuntimeError("the change failed")
        assert [r.update_id for r in inbox.pending(db.read())] == [10, 11]  # rolled back too
        with db.transaction() as tx:
            sessions.forget(tx, 5)
    assert [r.update_id for r in inbox.pending(db.read())] == [11]
    assert db.read().one("SELECT body FROM inbox WHERE update_id = 10")[0] is None  # no text
    with db.transaction() as tx:
        assert inbox.receive(
            tx, [Received(10, 5, "{}"), Received(12, 5, "{}")], lifetime=DEFAULT_LIFETIME
        ) == [Received(12, 5, "{}")]  # delivered again after a crash: recognised


def test_a_write_failing_in_the_middle_of_a_chat_keeps_the_answers_before_it(
    db: Database,
) -> None:
    service = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    typed = iter(["40", "0"])  # age, then the second question's answer fails to be saved

    def read(prompt: str) -> str:
        answer = next(typed)
        if answer == "0":
            db.read().execute("PRAGMA query_only = ON")  # as a full disk would
        return answer

    with pytest.raises(StorageFailed) as failed:
        terminal.chat(service, "blina-dli", "R-MID1", read=read, write=lambda _: None)
    assert failed.value.message.endswith(
        "(that input only: the screening is kept as it was before it; "
        "'screen-bot chat --resume R-MID1' goes on with it)"
    )
    db.read().execute("PRAGMA query_only = OFF")
    kept = sessions.active(db.read(), TERMINAL)
    assert kept is not None and kept.referral == "R-MID1"
    assert {name: answer.value for name, answer in kept.answers.items()} == {"age": 40}
