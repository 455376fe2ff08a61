"""Unfinished work expires wherever it was left, and what is deleted leaves the disk."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from cli_runner import invoke
from screen_bot.cli.outcome import write_trace
from screen_bot.engine import Engine
from screen_bot.session import utc_now
from screen_bot.storage import Database, expiry, inbox, outbox, owners, sessions
from screen_bot.storage.inbox import Received

TERMINAL = 0  # the owner of what the terminal keeps


def backdate(db: Database, hours: float) -> None:
    """Make everything unfinished in ``db`` look ``hours`` old."""
    then = (utc_now() - timedelta(hours=hours)).isoformat()
    with db.transaction() as tx:
        tx.execute("UPDATE open_sessions SET updated_at = ?", (then,))
        tx.execute("UPDATE owner_settings SET checked_at = ? WHERE checked_at IS NOT NULL", (then,))
        tx.execute("UPDATE outbox SET created_at = ?", (then,))


def test_what_the_terminal_left_expires_at_the_next_command(data_dir: Path, engine: Engine) -> None:
    assert invoke("check", "-p", "blina-dli", "age 40, male, qtc 480").returncode == 0
    with Database(data_dir / "screen-bot.sqlite3") as db:
        with db.transaction() as tx:
            sessions.save(tx, TERMINAL, engine.start("R-LEFT"))  # a chat killed mid-way
        assert owners.check(db.read(), TERMINAL) is not None
        backdate(db, 73)  # the default lifetime is 72 hours
    assert invoke("log", "stats").returncode == 0  # any command that opens the database
    with Database(data_dir / "screen-bot.sqlite3") as db:
        assert sessions.list_open(db.read(), TERMINAL) == []
        assert owners.check(db.read(), TERMINAL) is None


def test_a_verdict_never_delivered_expires(db: Database) -> None:
    with db.transaction() as tx:
        outbox.put(tx, 111, "Referral: R-0909 … age = 70")
    expiry.expire(db, timedelta(hours=1))
    assert outbox.undelivered(db.read()) != []  # not old yet
    backdate(db, 2)
    expiry.expire(db, timedelta(hours=1))
    assert outbox.undelivered(db.read()) == []


def test_a_forgotten_screening_leaves_neither_the_file_nor_its_write_ahead_log(
    db: Database, engine: Engine
) -> None:
    with db.transaction() as tx:
        sessions.save(tx, 111, engine.start("R-FORGOTTEN"))
    backdate(db, 100)
    expiry.expire(db, timedelta(hours=72))
    for path in (db.path, Path(f"{db.path}-wal")):
        assert not path.exists() or b"R-FORGOTTEN" not in path.read_bytes(), path


def test_an_update_stored_but_never_handled_loses_its_text_with_the_sessions(
    data_dir: Path,
) -> None:
    path = data_dir / "screen-bot.sqlite3"
    old, recent = utc_now() - timedelta(hours=73), utc_now() - timedelta(hours=1)
    with Database(path) as db, db.transaction() as tx:  # as the poller stores them
        inbox.receive(tx, [Received(7, 111, '{"text": "/screen R-SECRET-7"}')], now=old)
        inbox.receive(tx, [Received(8, 111, '{"text": "/screen R-RECENT-8"}')], now=recent)
    assert invoke("log", "stats").returncode == 0  # any command that opens the database
    with Database(path) as db:
        assert [update.update_id for update in inbox.pending(db.read())] == [8]
        assert inbox.newest(db.read(), 111) == 8  # the old id is kept, as a handled one's
    for file in (path, Path(f"{path}-wal")):
        assert not file.exists() or b"R-SECRET-7" not in file.read_bytes(), file


def test_trace_files_of_unexpected_errors_expire_with_the_sessions(data_dir: Path) -> None:
    assert invoke("migrate").returncode == 0
    old = Path(write_trace(ValueError("referral 'R-TRACED' refused")))
    recent = Path(write_trace(ValueError("a recent one")))
    other = data_dir / "error-notes.txt"  # not a trace file of screen-bot's
    other.write_text("kept")
    three_days_ago = time.time() - 73 * 3600
    for path in (old, other):
        os.utime(path, (three_days_ago, three_days_ago))
    assert invoke("log", "stats").returncode == 0  # any command that opens the database
    assert not old.exists() and recent.exists() and other.exists()
