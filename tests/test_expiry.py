"""Unfinished work expires wherever it was left, and what is deleted leaves the disk."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli_runner import invoke
from screen_bot.cli.outcome import write_trace
from screen_bot.engine import Engine
from screen_bot.protocol.catalog import Catalog
from screen_bot.service import DEFAULT_LIFETIME, ScreeningService
from screen_bot.session import utc_now
from screen_bot.storage import Database, Store, expiry, inbox, outbox, owners, sessions
from screen_bot.storage.inbox import Received
from stores import StoreUnderTest

TERMINAL = 0  # the owner of what the terminal keeps


# Each table's times of what is unfinished: when it was written, and when it expires.
TIMES = {
    "open_sessions": ("updated_at", "expires_at"),
    "owner_settings": ("checked_at", "check_expires_at"),
    "outbox": ("created_at", "expires_at"),
    "inbox": ("received_at", "expires_at"),
}


def backdate(db: Store, hours: float) -> None:
    """Move everything unfinished in ``db`` ``hours`` back, as if that long had passed."""
    by = timedelta(hours=hours)
    with db.transaction() as tx:
        for table, columns in TIMES.items():
            for column in columns:
                for (at,) in tx.all(f"SELECT DISTINCT {column} FROM {table} WHERE {column} > ''"):
                    earlier = (datetime.fromisoformat(at) - by).isoformat()
                    tx.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (earlier, at))


def test_what_the_terminal_left_expires_at_the_next_command(data_dir: Path, engine: Engine) -> None:
    assert invoke("check", "-p", "blina-dli", "age 40, male, qtc 480").returncode == 0
    with Database(data_dir / "screen-bot.sqlite3") as db:
        with db.transaction() as tx:
            # a chat killed mid-way
            sessions.save(tx, TERMINAL, engine.start("R-LEFT"), lifetime=DEFAULT_LIFETIME)
        assert owners.check(db.read(), TERMINAL) is not None
        backdate(db, 73)  # the default lifetime is 72 hours
    assert invoke("log", "stats").returncode == 0  # any command that opens the database
    with Database(data_dir / "screen-bot.sqlite3") as db:
        assert sessions.list_open(db.read(), TERMINAL) == []
        assert owners.check(db.read(), TERMINAL) is None


def test_a_verdict_never_delivered_expires(db: Database) -> None:
    with db.transaction() as tx:
        outbox.put(tx, 111, "Referral: R-0909 … age = 70", lifetime=timedelta(hours=1))
    expiry.expire(db, timedelta(hours=1))
    assert outbox.undelivered(db.read()) != []  # not old yet
    backdate(db, 2)
    expiry.expire(db, timedelta(hours=1))
    assert outbox.undelivered(db.read()) == []


def test_a_forgotten_screening_leaves_neither_the_file_nor_its_write_ahead_log(
    db: Database, engine: Engine
) -> None:
    with db.transaction() as tx:
        sessions.save(tx, 111, engine.start("R-FORGOTTEN"), lifetime=DEFAULT_LIFETIME)
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
        secret, recent_one = '{"text": "/screen R-SECRET-7"}', '{"text": "/screen R-RECENT-8"}'
        inbox.receive(tx, [Received(7, 111, secret)], now=old, lifetime=DEFAULT_LIFETIME)
        inbox.receive(tx, [Received(8, 111, recent_one)], now=recent, lifetime=DEFAULT_LIFETIME)
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


def test_trace_files_named_by_older_versions_expire_by_the_same_rule(data_dir: Path) -> None:
    """Versions of 2026-11-25/26 named a trace ``error-<stamp>.txt`` (no random part)."""
    assert invoke("migrate").returncode == 0
    old = data_dir / "error-20261101T000000Z.txt"
    recent = data_dir / "error-20261101T000001Z.txt"
    for path in (old, recent):
        path.write_text("Traceback … referral 'R-TRACED' refused")
    three_days_ago = time.time() - 73 * 3600
    os.utime(old, (three_days_ago, three_days_ago))
    assert invoke("log", "stats").returncode == 0
    assert not old.exists() and recent.exists()


# -- each row's own lifetime: the process that wrote it decides, not the one expiring it ---------

WEEK = timedelta(hours=168)  # the bot's SCREEN_BOT_SESSION_TTL_HOURS at this site
EVERYTHING = (["R-WEEK1"], [222], [333], [9])


def _commands_use(store: StoreUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands run in this test open ``store``, with the default lifetime (72 h):
    an administrator's shell without the bot's .env."""
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", str(store.data_dir))
    if store.url:
        monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", store.url)


def _left_by_the_bot(store: StoreUnderTest, catalog: Catalog) -> None:
    """What a bot set to keep things a week leaves: an open screening, a quick check, a
    verdict not delivered and an update not handled."""
    with store.open() as db:
        bot = ScreeningService(catalog, db, channel="telegram", outbox=True, lifetime=WEEK)
        bot.start(111, "blina-dli", "R-WEEK1")
        bot.check(222, "age 40, male", "blina-dli")
        with db.transaction() as tx:
            outbox.put(tx, 333, "NOT ELIGIBLE Referral: R-SENT-LATER", lifetime=WEEK)
            inbox.receive(tx, [Received(9, 444, '{"text": "/screen R-WAITING"}')], lifetime=WEEK)


def _left(store: StoreUnderTest) -> tuple[list[Any], ...]:
    """The referrals open, the owners with a quick check, the owners with a verdict to
    deliver, the updates waiting."""
    return (
        [referral for (referral,) in store.rows("SELECT referral FROM open_sessions")],
        [o for (o,) in store.rows("SELECT owner FROM owner_settings WHERE quick_check > ''")],
        [owner for (owner,) in store.rows("SELECT owner FROM outbox")],
        [update for (update,) in store.rows("SELECT update_id FROM inbox WHERE done = 0")],
    )


def _backdate(store: StoreUnderTest, hours: float) -> None:
    with store.open() as db:
        backdate(db, hours)


def test_a_command_with_a_shorter_lifetime_keeps_what_the_bot_keeps_longer(
    store: StoreUnderTest, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _commands_use(store, monkeypatch)
    _left_by_the_bot(store, catalog)
    _backdate(store, 100)  # last written 100 hours ago: past 72, within the bot's week
    assert invoke("log", "stats").returncode == 0  # any command that opens the database
    assert _left(store) == EVERYTHING
    _backdate(store, 69)  # 169 hours: the bot's week is over
    assert invoke("log", "stats").returncode == 0
    assert _left(store) == ([], [], [], [])


def _as_before_lifetimes_were_kept(store: StoreUnderTest) -> None:
    """The tables as a screen-bot before expiry times left them (their rows too), to be
    brought up to date by the next open."""
    with store.open() as db, db.transaction() as tx:
        tx.execute("DROP INDEX open_sessions_expires")
        for table, (_, expires) in TIMES.items():
            tx.execute(f"ALTER TABLE {table} DROP COLUMN {expires}")
        for table, version in BEFORE_LIFETIMES.items():
            tx.execute("UPDATE schema_version SET version = ? WHERE name = ?", (version, table))


BEFORE_LIFETIMES = {"open_sessions": 3, "owner_settings": 1, "outbox": 2, "inbox": 2}


def test_what_was_kept_before_lifetimes_were_stored_goes_by_the_old_rule(
    store: StoreUnderTest, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _commands_use(store, monkeypatch)
    _left_by_the_bot(store, catalog)
    _as_before_lifetimes_were_kept(store)
    with store.open() as db:  # upgraded: the rows have no expiry time
        assert set(db.applied) == set(BEFORE_LIFETIMES)
        for table, (_, expires) in TIMES.items():
            assert db.read().all(f"SELECT {expires} FROM {table}") == [(None,)], table
    _backdate(store, 71)
    assert invoke("log", "stats").returncode == 0
    assert _left(store) == EVERYTHING
    _backdate(store, 2)  # 73 hours: past the lifetime of the command expiring them
    assert invoke("log", "stats").returncode == 0
    assert _left(store) == ([], [], [], [])


def _lifetimes(db: Store) -> list[timedelta]:
    """How long each unfinished row was given (its expiry time less its time written)."""
    given = []
    for table, (written, expires) in TIMES.items():
        for at, until in db.read().all(f"SELECT {written}, {expires} FROM {table}"):
            if until is not None:
                given.append(datetime.fromisoformat(until) - datetime.fromisoformat(at))
    return given


async def test_the_bot_gives_what_it_writes_its_own_lifetime(
    tmp_path: Path, catalog: Catalog
) -> None:
    from screen_bot.adapters.telegram.intake import Intake
    from test_telegram_hardening import message
    from test_telegram_transcript import Harness

    harness = Harness(tmp_path, catalog, SCREEN_BOT_SESSION_TTL_HOURS="168")
    await harness.application.initialize()
    try:
        intake = Intake(harness.application, harness.bot, harness.db)
        await intake.accept([message(1, "/screen R-WEEK1")])
        assert await intake.queues.join(5)
        assert "R-WEEK1" in harness.chat().last_text()
        assert _lifetimes(harness.db) == [WEEK, WEEK]  # the screening, the update stored
    finally:
        await harness.application.shutdown()
        harness.db.close()


def test_a_command_gives_what_it_writes_its_own_lifetime(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCREEN_BOT_SESSION_TTL_HOURS", "168")
    assert invoke("check", "-p", "blina-dli", "age 40, male, qtc 480").returncode == 0
    with Database(data_dir / "screen-bot.sqlite3") as db:
        assert _lifetimes(db) == [WEEK]  # the quick check kept for --continue


# -- what a clock that was ahead stamped ----------------------------------------------------------


def test_what_a_clock_a_year_ahead_wrote_goes_one_lifetime_after_it_was_set_right(
    store: StoreUnderTest, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset clock a year ahead (then NTP): what was written meanwhile is re-dated to
    now at the next pass, keeping its lifetime, not kept until the clock catches up."""
    _commands_use(store, monkeypatch)
    _left_by_the_bot(store, catalog)
    _backdate(store, -365 * 24)  # written while the clock was a year ahead
    assert invoke("log", "stats").returncode == 0  # the clock is right again
    assert _left(store) == EVERYTHING
    with store.open() as db:
        assert _lifetimes(db) == [WEEK] * 4  # each keeps the lifetime it was given
    _backdate(store, 169)  # a week and an hour later
    assert invoke("log", "stats").returncode == 0
    assert _left(store) == ([], [], [], [])


def test_a_row_stamped_more_than_a_minute_ahead_is_redated_to_now(
    db: Database, engine: Engine
) -> None:
    now, day = datetime(2026, 11, 27, 5, 0, tzinfo=UTC), timedelta(hours=24)
    with db.transaction() as tx:
        for update_id, ahead in [(1, timedelta(days=365)), (2, timedelta(seconds=59))]:
            inbox.receive(tx, [Received(update_id, 111, "{}")], now + ahead, lifetime=day)
        session = engine.start("R-AHEAD")
        session.updated_at = now + timedelta(hours=2)
        sessions.save(tx, 111, session, lifetime=timedelta(hours=72))
    expiry.expire(db, day, now=now)
    stamps = db.read().all("SELECT received_at, expires_at FROM inbox ORDER BY update_id")
    assert stamps == [
        (now.isoformat(), (now + day).isoformat()),  # re-dated, its lifetime kept
        (
            (now + timedelta(seconds=59)).isoformat(),
            (now + timedelta(seconds=59) + day).isoformat(),
        ),
    ]
    assert db.read().all("SELECT updated_at, expires_at FROM open_sessions") == [
        (now.isoformat(), (now + timedelta(hours=72)).isoformat())
    ]
    expiry.expire(db, day, now=now + timedelta(hours=72, seconds=1))
    assert sessions.count(db.read()) == 0


def test_a_trace_written_while_the_clock_was_ahead_goes_one_lifetime_after_it_was_set_right(
    data_dir: Path,
) -> None:
    assert invoke("migrate").returncode == 0
    trace = Path(write_trace(ValueError("referral 'R-TRACED' refused")))
    a_year_ahead = time.time() + 365 * 24 * 3600
    os.utime(trace, (a_year_ahead, a_year_ahead))
    assert invoke("log", "stats").returncode == 0
    assert trace.exists() and trace.stat().st_mtime < time.time() + 60  # re-dated to now
    three_days_ago = time.time() - 73 * 3600
    os.utime(trace, (three_days_ago, three_days_ago))
    assert invoke("log", "stats").returncode == 0
    assert not trace.exists()
